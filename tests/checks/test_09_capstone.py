"""The checks of 09_capstone: real mistakes are caught with the right
diagnosis, and correct answers written another way are accepted."""


import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import confusion_matrix as sklearn_confusion_matrix
from torch import nn

from torch.utils.data import DataLoader, TensorDataset

from autograder.data import load_digits
from support import assert_accepted, assert_caught, solution_namespace

NB = "09_capstone"


def ns(**replacements):
    return solution_namespace(NB, **replacements)


def test_the_solutions_pass_with_default_and_fresh_inputs():
    namespace = ns()
    for exercise in ("DigitsCNN", "train_digits", "confusion_matrix", "train_small_cnn"):
        assert_accepted(exercise, namespace)
    # as the hidden test cells call them (fresh inputs run the instructor's checks too)
    assert_accepted("DigitsCNN", namespace, num_samples=9, seed=4, instructor=True)
    assert_accepted("DigitsCNN", namespace, num_samples=1, seed=11, instructor=True)
    assert_accepted("train_digits", namespace, seed=1, instructor=True)
    assert_accepted("confusion_matrix", namespace, num_samples=37, num_classes=4, batch_size=5, seed=5, instructor=True)
    assert_accepted("confusion_matrix", namespace, num_samples=1, num_classes=3, batch_size=4, seed=9, instructor=True)
    assert_accepted("train_small_cnn", namespace, instructor=True)


def test_the_public_module_holds_no_reference_answer():
    import importlib
    import inspect

    source = inspect.getsource(importlib.import_module("autograder.checks.09_capstone"))
    assert "_reference" not in source and "right[t, p] += 1" not in source


# --- DigitsCNN ---


class FunctionalCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.fc = nn.Linear(16 * 2 * 2, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(x.flatten(1))


class BatchNormCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, 12, 3), nn.BatchNorm2d(12), nn.ReLU(), nn.Flatten(),
                                 nn.Linear(12 * 6 * 6, 10))

    def forward(self, x):
        return self.net(x)


class MLPOnly(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x)


class HugeCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, 64, 3, padding=1), nn.ReLU(), nn.Flatten(),
                                 nn.Linear(64 * 8 * 8, 128), nn.ReLU(), nn.Linear(128, 10))

    def forward(self, x):
        return self.net(x)


class ViewMixesSamples(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 32, 3, padding=1)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv(x)), 4)   # (N, 32, 2, 2): 128 numbers per sample
        return self.fc(x.view(-1, 64))


class ExpectsFlatPixels(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(64, 64)
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 8 * 8, 10)

    def forward(self, x):
        x = self.embed(x).reshape(-1, 1, 8, 8)
        return self.fc(F.relu(self.conv(x)).flatten(1))


class MLPPlusIdleConv(nn.Module):
    """An MLP with a convolution that only has to exist: its output is multiplied by zero."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x) + 0 * self.conv(x).mean()


class EndsWithSoftmax(FunctionalCNN):
    def forward(self, x):
        return torch.softmax(super().forward(x), dim=1)


@pytest.mark.parametrize("variant", [FunctionalCNN, BatchNormCNN])
def test_DigitsCNN_written_differently_is_accepted(variant):
    assert_accepted("DigitsCNN", ns(DigitsCNN=variant))
    assert_accepted("DigitsCNN", ns(DigitsCNN=variant), num_samples=9, seed=4)


@pytest.mark.parametrize("wrong, code", [
    (MLPOnly, "missing_conv2d"),
    (MLPPlusIdleConv, "conv_not_used"),
    (HugeCNN, "too_many_parameters"),
    (ViewMixesSamples, "wrong_flatten"),
    (ExpectsFlatPixels, "wrong_input_shape"),
    (EndsWithSoftmax, "softmax_in_model"),
])
def test_DigitsCNN_mistakes_are_diagnosed(wrong, code):
    assert_caught("DigitsCNN", ns(DigitsCNN=wrong), code)


def test_the_parameter_message_points_at_the_big_layer():
    result = assert_caught("DigitsCNN", ns(DigitsCNN=HugeCNN), "too_many_parameters")
    assert "50,000" in result.message and "Linear(4096, 128)" in result.message


# --- train_digits ---


def digits_trainer(reshape=lambda X: X.reshape(-1, 1, 8, 8), make_optimizer=None, fixed_epochs=None, seeded=True,
                   split_seed=None, on_all_data=False, cnn=None):
    """A train_digits that uses the notebook's own helpers, with one piece swapped."""
    namespace = ns(**({"DigitsCNN": cnn} if cnn else {}))

    def train_digits(epochs=20, seed=0):
        if seeded:
            torch.manual_seed(seed if split_seed is None else split_seed)
        X, y = load_digits()
        train_loader, val_loader = namespace["make_loaders"](reshape(X), y, batch_size=128,
                                                             seed=seed if split_seed is None else split_seed)
        if on_all_data:
            train_loader = DataLoader(TensorDataset(reshape(X), y), batch_size=128, shuffle=True)
        model = namespace["DigitsCNN"]()
        optimizer = (make_optimizer or (lambda params: torch.optim.Adam(params, lr=0.01)))(model.parameters())
        history = namespace["fit"](model, train_loader, val_loader, nn.CrossEntropyLoss(), optimizer,
                                   fixed_epochs or epochs)
        return model, history

    namespace["train_digits"] = train_digits
    return namespace


def test_train_digits_with_sgd_momentum_and_view_is_accepted():
    assert_accepted("train_digits", digits_trainer(
        reshape=lambda X: X.view(X.shape[0], 1, 8, 8),
        make_optimizer=lambda params: torch.optim.SGD(params, lr=0.05, momentum=0.9)))


def test_train_digits_that_uses_the_notebook_data_and_its_own_loop_is_accepted():
    """No load_digits() call: the notebook's X and y, split by make_loaders, and a loop of its own."""
    namespace = ns()
    exec("""
def train_digits(epochs=20, seed=0):
    torch.manual_seed(seed)
    train_loader, val_loader = make_loaders(X.view(-1, 1, 8, 8), y, batch_size=64, seed=seed)
    model = DigitsCNN()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    history = {"train_loss": [], "val_loss": [], "val_acc": []}
    for _ in range(epochs):
        history["train_loss"].append(train_one_epoch(model, train_loader, nn.functional.cross_entropy, optimizer))
        loss, accuracy = evaluate(model, val_loader, nn.functional.cross_entropy)
        history["val_loss"].append(loss)
        history["val_acc"].append(accuracy)
    return model, history
""", namespace)
    assert_accepted("train_digits", namespace)


def test_a_broken_DigitsCNN_is_named_when_train_digits_fails():
    result = assert_caught("train_digits", digits_trainer(cnn=ViewMixesSamples), "DigitsCNN_broken")
    assert "DigitsCNN" in result.message and "flatten" in result.message


@pytest.mark.parametrize("namespace, code", [
    (lambda: digits_trainer(reshape=lambda X: X), "wrong_input_shape"),
    (lambda: digits_trainer(reshape=lambda X: X.reshape(-1, 8, 8)), "wrong_input_shape"),
    (lambda: digits_trainer(reshape=lambda X: X.reshape(-1, 1, 8, 8).transpose(2, 3)), "wrong_reshape"),
    (lambda: digits_trainer(fixed_epochs=3), "wrong_history"),
    (lambda: digits_trainer(make_optimizer=lambda params: torch.optim.SGD(params, lr=1e-4)), "low_accuracy"),
    (lambda: digits_trainer(seeded=False), "not_seeded"),
    (lambda: digits_trainer(split_seed=0), "seed_ignored"),
    (lambda: digits_trainer(on_all_data=True), "trains_on_validation"),
    (lambda: digits_trainer(cnn=ViewMixesSamples), "DigitsCNN_broken"),
])
def test_train_digits_mistakes_are_diagnosed(namespace, code):
    assert_caught("train_digits", namespace(), code)


# --- confusion_matrix ---


def confusion_by_loop(model, loader, num_classes=10):
    model.eval()
    matrix = torch.zeros((num_classes, num_classes), dtype=torch.int64)
    with torch.no_grad():
        for xb, yb in loader:
            for true, predicted in zip(yb, model(xb).argmax(1)):
                matrix[true, predicted] += 1
    return matrix


def confusion_by_index_put(model, loader, num_classes=10):
    model.eval()
    matrix = torch.zeros(num_classes, num_classes, dtype=torch.long)
    with torch.inference_mode():
        for xb, yb in loader:
            preds = model(xb).argmax(dim=-1)
            matrix.index_put_((yb, preds), torch.ones_like(yb), accumulate=True)
    return matrix


def targets_and_predictions(model, loader):
    model.eval()
    targets, predictions = [], []
    with torch.no_grad():
        for xb, yb in loader:
            targets += yb.tolist()
            predictions += model(xb).argmax(1).tolist()
    return targets, predictions


def confusion_by_sklearn(model, loader, num_classes=10):
    return torch.tensor(sklearn_confusion_matrix(*targets_and_predictions(model, loader),
                                                 labels=list(range(num_classes))))


def confusion_transposed(model, loader, num_classes=10):
    return confusion_by_loop(model, loader, num_classes).T


def confusion_in_train_mode(model, loader, num_classes=10):
    matrix = torch.zeros(num_classes, num_classes, dtype=torch.long)
    with torch.no_grad():
        for xb, yb in loader:
            for t, p in zip(yb.tolist(), model(xb).argmax(1).tolist()):
                matrix[t, p] += 1
    return matrix


def confusion_with_fancy_indexing(model, loader, num_classes=10):
    model.eval()
    matrix = torch.zeros(num_classes, num_classes, dtype=torch.long)
    with torch.no_grad():
        for xb, yb in loader:
            matrix[yb, model(xb).argmax(1)] += 1
    return matrix


def confusion_rebuilt_every_batch(model, loader, num_classes=10):
    model.eval()
    with torch.no_grad():
        for xb, yb in loader:
            matrix = torch.zeros(num_classes, num_classes, dtype=torch.long)
            for t, p in zip(yb.tolist(), model(xb).argmax(1).tolist()):
                matrix[t, p] += 1
    return matrix


def confusion_of_the_classes_seen(model, loader, num_classes=10):
    return torch.tensor(sklearn_confusion_matrix(*targets_and_predictions(model, loader)))


def confusion_as_floats(model, loader, num_classes=10):
    return confusion_by_loop(model, loader, num_classes).float()


def confusion_with_a_graph(model, loader, num_classes=10):
    model.eval()
    matrix = torch.zeros(num_classes, num_classes, dtype=torch.long)
    for xb, yb in loader:
        for t, p in zip(yb.tolist(), model(xb).detach().argmax(1).tolist()):
            matrix[t, p] += 1
    return matrix


@pytest.mark.parametrize("variant", [confusion_by_loop, confusion_by_index_put, confusion_by_sklearn])
def test_confusion_matrix_written_differently_is_accepted(variant):
    assert_accepted("confusion_matrix", ns(confusion_matrix=variant))
    assert_accepted("confusion_matrix", ns(confusion_matrix=variant), num_samples=37, num_classes=4, batch_size=5,
                    seed=5, instructor=True)


@pytest.mark.parametrize("wrong, code", [
    (confusion_transposed, "transposed"),
    (confusion_in_train_mode, "missing_eval"),
    (confusion_with_fancy_indexing, "duplicates_not_accumulated"),
    (confusion_rebuilt_every_batch, "wrong_total"),
    (confusion_of_the_classes_seen, "wrong_shape"),
    (confusion_as_floats, "wrong_dtype"),
    (confusion_with_a_graph, "missing_no_grad"),
])
def test_confusion_matrix_mistakes_are_diagnosed(wrong, code):
    assert_caught("confusion_matrix", ns(confusion_matrix=wrong), code)


def confusion_by_argmin(model, loader, num_classes=10):
    model.eval()
    matrix = torch.zeros(num_classes, num_classes, dtype=torch.long)
    with torch.no_grad():
        for xb, yb in loader:
            for t, p in zip(yb.tolist(), model(xb).argmin(1).tolist()):
                matrix[t, p] += 1
    return matrix


def test_the_instructor_check_compares_with_a_trained_model():
    assert_caught("confusion_matrix", ns(confusion_matrix=confusion_by_argmin), "wrong_counts", instructor=True)


# --- challenge: train_small_cnn ---


def small_cnn_trainer(build, epochs=15, lr=0.01, batch_size=64, load_itself=False, optimizer="adam"):
    namespace = ns()

    def train_small_cnn(images, labels):
        torch.manual_seed(1)
        if load_itself:
            X, y = load_digits()
            images, labels = X.reshape(-1, 1, 8, 8), y
        model = build()
        loader = DataLoader(TensorDataset(images, labels), batch_size=batch_size, shuffle=True)
        opt = (torch.optim.Adam(model.parameters(), lr=lr) if optimizer == "adam"
               else torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9))
        for _ in range(epochs):
            for xb, yb in loader:
                opt.zero_grad()
                F.cross_entropy(model(xb), yb).backward()
                opt.step()
        return model

    namespace["train_small_cnn"] = train_small_cnn
    return namespace


class SmallMLPPlusIdleConv(MLPPlusIdleConv):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))


class SmallBatchNormCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 3, padding=1)
        self.norm = nn.BatchNorm2d(6)
        self.conv2 = nn.Conv2d(6, 12, 3, padding=1)
        self.fc = nn.Linear(12 * 2 * 2, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.norm(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(x.flatten(1))


def test_another_small_design_is_accepted():
    assert_accepted("train_small_cnn", small_cnn_trainer(SmallBatchNormCNN, epochs=20, lr=0.05, batch_size=32,
                                                         optimizer="sgd"), instructor=True)


@pytest.mark.parametrize("namespace, code", [
    (lambda: small_cnn_trainer(lambda: nn.Sequential(nn.Flatten(), nn.Linear(64, 24), nn.ReLU(), nn.Linear(24, 10))),
     "missing_conv2d"),
    (lambda: small_cnn_trainer(ns()["DigitsCNN"]), "too_many_parameters"),
    (lambda: small_cnn_trainer(SmallMLPPlusIdleConv, epochs=2), "conv_not_used"),
    (lambda: small_cnn_trainer(SmallBatchNormCNN, epochs=1, lr=1e-3), "below_target"),
    (lambda: small_cnn_trainer(SmallBatchNormCNN, load_itself=True), "loads_other_data"),
])
def test_train_small_cnn_mistakes_are_diagnosed(namespace, code):
    assert_caught("train_small_cnn", namespace(), code)


def test_the_challenge_measures_cpu_time(monkeypatch):
    import importlib

    monkeypatch.setattr(importlib.import_module("autograder.checks.09_capstone"), "CHALLENGE_CPU_SECONDS", 0.01)
    assert_caught("train_small_cnn", ns(), "over_time_budget")


def test_the_hidden_challenge_uses_a_split_of_its_own():
    """A design that has memorised the visible split's held-out digits passes the visible test only."""
    namespace = ns()
    X, y = load_digits()
    train_loader, val_loader = namespace["make_loaders"](X.reshape(-1, 1, 8, 8), y, seed=0)
    images, labels = map(torch.cat, zip(*val_loader))

    class Lookup(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 1, bias=False)
            nn.init.ones_(self.conv.weight)

        def forward(self, x):
            x = self.conv(x)
            match = ((x.flatten(1)[:, None, :] - images.flatten(1)[None]).abs().sum(-1) < 1e-4).float()
            found = match @ F.one_hot(labels, 10).float()
            return found * 10 + x.flatten(1)[:, :10] * 1e-3

    namespace["train_small_cnn"] = lambda images_, labels_: Lookup()
    assert_accepted("train_small_cnn", namespace)
    assert_caught("train_small_cnn", namespace, "below_target", instructor=True)
