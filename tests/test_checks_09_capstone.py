"""The checks of 09_capstone: real mistakes are caught with the right
diagnosis, and correct answers written another way are accepted."""


import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import confusion_matrix as sklearn_confusion_matrix
from torch import nn

from autograder.data import load_digits
from support import assert_accepted, assert_caught, solution_namespace

NB = "09_capstone"


def ns(**replacements):
    return solution_namespace(NB, **replacements)


def test_the_solutions_pass_with_default_and_fresh_inputs():
    namespace = ns()
    for exercise in ("DigitsCNN", "train_digits", "confusion_matrix"):
        assert_accepted(exercise, namespace)
    assert_accepted("DigitsCNN", namespace, num_samples=9, seed=4)
    assert_accepted("train_digits", namespace, seed=1)
    assert_accepted("confusion_matrix", namespace, num_samples=37, num_classes=4, seed=5)


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


class EndsWithSoftmax(FunctionalCNN):
    def forward(self, x):
        return torch.softmax(super().forward(x), dim=1)


@pytest.mark.parametrize("variant", [FunctionalCNN, BatchNormCNN])
def test_DigitsCNN_written_differently_is_accepted(variant):
    assert_accepted("DigitsCNN", ns(DigitsCNN=variant))
    assert_accepted("DigitsCNN", ns(DigitsCNN=variant), num_samples=9, seed=4)


@pytest.mark.parametrize("wrong, code", [
    (MLPOnly, "missing_conv2d"),
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


def digits_trainer(reshape=lambda X: X.reshape(-1, 1, 8, 8), make_optimizer=None, fixed_epochs=None):
    """A train_digits that uses the notebook's own helpers, with one piece swapped."""
    namespace = ns()

    def train_digits(epochs=20, seed=0):
        torch.manual_seed(seed)
        X, y = load_digits()
        train_loader, val_loader = namespace["make_loaders"](reshape(X), y, batch_size=128, seed=seed)
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


@pytest.mark.parametrize("namespace, code", [
    (lambda: digits_trainer(reshape=lambda X: X), "wrong_input_shape"),
    (lambda: digits_trainer(reshape=lambda X: X.reshape(-1, 8, 8)), "wrong_input_shape"),
    (lambda: digits_trainer(reshape=lambda X: X.reshape(-1, 1, 8, 8).transpose(2, 3)), "wrong_reshape"),
    (lambda: digits_trainer(fixed_epochs=3), "wrong_history"),
    (lambda: digits_trainer(make_optimizer=lambda params: torch.optim.SGD(params, lr=1e-4)), "low_accuracy"),
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
    assert_accepted("confusion_matrix", ns(confusion_matrix=variant), num_samples=37, num_classes=4, seed=5)


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
