"""The checks of 08_regularization: real mistakes are caught with the right
diagnosis, and correct answers written another way are accepted."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from autograder.data import load_digits
from support import assert_accepted, assert_caught, solution_namespace

NB = "08_regularization"


def ns(**replacements):
    return solution_namespace(NB, **replacements)


def test_the_solutions_pass_with_default_and_fresh_inputs():
    namespace = ns()
    for exercise in ("inverted_dropout", "RegularizedMLP", "predict", "train_despite_noise"):
        assert_accepted(exercise, namespace)
    # as the hidden test cells call them (fresh inputs run the instructor's checks too)
    assert_accepted("inverted_dropout", namespace, num_rows=300, num_cols=700, p=0.6, seed=11, instructor=True)
    assert_accepted("inverted_dropout", namespace, num_rows=1000, num_cols=90, p=0.05, seed=4, instructor=True)
    assert_accepted("RegularizedMLP", namespace, num_features=20, hidden_units=6, num_classes=4, p_drop=0.35, seed=3,
                    instructor=True)
    assert_accepted("predict", namespace, num_samples=40, num_features=9, num_classes=5, seed=8, instructor=True)
    assert_accepted("predict", namespace, num_samples=1, num_features=3, num_classes=2, seed=2, instructor=True)
    assert_accepted("train_despite_noise", namespace, instructor=True)


def test_the_public_module_holds_no_reference_answer():
    import importlib
    import inspect

    source = inspect.getsource(importlib.import_module("autograder.checks.08_regularization"))
    assert "def _eval_reference" not in source and "def _train_reference" not in source
    assert "_expected_classes" not in source


# --- inverted_dropout: correct answers written differently ---


def dropout_with_bernoulli(x, p, training, generator=None):
    if p < 0 or p > 1:
        raise ValueError("p must lie in [0, 1]")
    if not training:
        return x.clone()
    if p == 1:
        return x * 0
    mask = torch.bernoulli(torch.full_like(x, 1 - p), generator=generator)
    return mask * x / (1 - p)


def dropout_with_where(x, p, training, generator=None):
    if not (0.0 <= p <= 1.0):
        raise ValueError(p)
    if training and p > 0:
        keep = torch.rand(x.shape, generator=generator) >= p
        return torch.where(keep, x / (1 - p) if p < 1 else torch.zeros_like(x), torch.zeros_like(x))
    return x


@pytest.mark.parametrize("variant", [dropout_with_bernoulli, dropout_with_where])
def test_inverted_dropout_written_differently_is_accepted(variant):
    assert_accepted("inverted_dropout", ns(inverted_dropout=variant))
    assert_accepted("inverted_dropout", ns(inverted_dropout=variant), num_rows=300, num_cols=700, p=0.6, seed=11)


# --- inverted_dropout: mistakes ---


def _validated(body):
    def dropout(x, p, training, generator=None):
        if not 0 <= p <= 1:
            raise ValueError(p)
        return body(x, p, training, generator)
    return dropout


@_validated
def dropout_without_scale(x, p, training, generator):
    if not training or p == 0:
        return x
    return x * (torch.rand(x.shape, generator=generator) < 1 - p)


@_validated
def dropout_ignoring_training(x, p, training, generator):
    if p == 1:
        return torch.zeros_like(x)
    return x * (torch.rand(x.shape, generator=generator) < 1 - p) / (1 - p)


def dropout_without_validation(x, p, training, generator=None):
    if not training or p <= 0:
        return x
    if p >= 1:
        return torch.zeros_like(x)
    return x * (torch.rand(x.shape, generator=generator) < 1 - p) / (1 - p)


def dropout_validating_only_in_training(x, p, training, generator=None):
    if not training:
        return x
    if not 0 <= p <= 1:
        raise ValueError(p)
    if p == 1:
        return torch.zeros_like(x)
    return x * (torch.rand(x.shape, generator=generator) < 1 - p) / (1 - p)


@_validated
def dropout_ignoring_generator(x, p, training, generator):
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    return x * (torch.rand(x.shape) < 1 - p) / (1 - p)


@_validated
def dropout_with_a_fixed_default_generator(x, p, training, generator):
    generator = generator or torch.Generator().manual_seed(0)
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    return x * (torch.rand(x.shape, generator=generator) < 1 - p) / (1 - p)


@_validated
def dropout_in_place(x, p, training, generator):
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    drop = torch.rand(x.shape, generator=generator) < p
    x[drop] = 0
    return x / (1 - p)


@_validated
def dropout_keeping_with_probability_p(x, p, training, generator):
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    return x * (torch.rand(x.shape, generator=generator) < p) / (1 - p)


@_validated
def dropout_dividing_by_zero_at_p_1(x, p, training, generator):
    if not training or p == 0:
        return x
    return x * (torch.rand(x.shape, generator=generator) < 1 - p) / (1 - p)


@pytest.mark.parametrize("wrong, code", [
    (dropout_without_scale, "missing_dropout_scale"),
    (dropout_ignoring_training, "dropout_in_eval"),
    (dropout_without_validation, "p_not_validated"),
    (dropout_validating_only_in_training, "p_not_validated"),
    (dropout_ignoring_generator, "generator_ignored"),
    (dropout_with_a_fixed_default_generator, "same_mask_every_call"),
    (dropout_in_place, "modified_input"),
    (dropout_keeping_with_probability_p, "keep_and_drop_swapped"),
    (dropout_dividing_by_zero_at_p_1, "p_one_not_zero"),
])
def test_inverted_dropout_mistakes_are_diagnosed(wrong, code):
    assert_caught("inverted_dropout", ns(inverted_dropout=wrong), code)


def test_the_missing_scale_message_talks_about_the_mean():
    result = assert_caught("inverted_dropout", ns(inverted_dropout=dropout_without_scale), "missing_dropout_scale")
    assert "mean" in result.message and "(1 - p)" in result.message


# --- RegularizedMLP ---


class AttributesAndFunctionalReLU(nn.Module):
    def __init__(self, num_features, hidden, num_classes, p_drop=0.5):
        super().__init__()
        self.fc1 = nn.Linear(num_features, hidden)
        self.bn = nn.BatchNorm1d(hidden)
        self.dropout = nn.Dropout(p=p_drop)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x):
        return self.fc2(self.dropout(F.relu(self.bn(self.fc1(x)))))


class FunctionalDropout(nn.Module):
    def __init__(self, num_features, hidden, num_classes, p_drop=0.5):
        super().__init__()
        self.p_drop = p_drop
        self.fc1 = nn.Linear(num_features, hidden)
        self.bn = nn.BatchNorm1d(hidden)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x):
        return self.fc2(F.dropout(torch.relu(self.bn(self.fc1(x))), self.p_drop, training=self.training))


def mlp(layers):
    """A RegularizedMLP variant whose Sequential holds ``layers(num_features, hidden, num_classes, p_drop)``."""
    class Variant(nn.Module):
        def __init__(self, num_features, hidden, num_classes, p_drop=0.5):
            super().__init__()
            self.network = nn.Sequential(*layers(num_features, hidden, num_classes, p_drop))

        def forward(self, x):
            return self.network(x)
    return Variant


class DropoutAlwaysOn(FunctionalDropout):
    def forward(self, x):
        return self.fc2(F.dropout(torch.relu(self.bn(self.fc1(x))), self.p_drop))


NoBatchNorm = mlp(lambda f, h, c, p: [nn.Linear(f, h), nn.ReLU(), nn.Dropout(p), nn.Linear(h, c)])
ReLUBeforeBatchNorm = mlp(lambda f, h, c, p: [nn.Linear(f, h), nn.ReLU(), nn.BatchNorm1d(h), nn.Dropout(p),
                                              nn.Linear(h, c)])
FixedDropout = mlp(lambda f, h, c, p: [nn.Linear(f, h), nn.BatchNorm1d(h), nn.ReLU(), nn.Dropout(0.5),
                                       nn.Linear(h, c)])
NoDropout = mlp(lambda f, h, c, p: [nn.Linear(f, h), nn.BatchNorm1d(h), nn.ReLU(), nn.Linear(h, c)])
EndsWithSoftmax = mlp(lambda f, h, c, p: [nn.Linear(f, h), nn.BatchNorm1d(h), nn.ReLU(), nn.Dropout(p),
                                          nn.Linear(h, c), nn.Softmax(dim=1)])
NoRunningStats = mlp(lambda f, h, c, p: [nn.Linear(f, h), nn.BatchNorm1d(h, track_running_stats=False), nn.ReLU(),
                                         nn.Dropout(p), nn.Linear(h, c)])
DropoutOnTheLogits = mlp(lambda f, h, c, p: [nn.Linear(f, h), nn.BatchNorm1d(h), nn.ReLU(), nn.Linear(h, c),
                                             nn.Dropout(p)])
DropoutOnTheInput = mlp(lambda f, h, c, p: [nn.Dropout(p), nn.Linear(f, h), nn.BatchNorm1d(h), nn.ReLU(),
                                            nn.Linear(h, c)])


class SkipsTheNormInEval(AttributesAndFunctionalReLU):
    def forward(self, x):
        h = self.fc1(x)
        return self.fc2(self.dropout(F.relu(self.bn(h) if self.training else h)))


class NormAlwaysInTrainMode(AttributesAndFunctionalReLU):
    def forward(self, x):
        self.bn.train()
        return super().forward(x)


@pytest.mark.parametrize("variant", [AttributesAndFunctionalReLU, FunctionalDropout])
def test_RegularizedMLP_written_differently_is_accepted(variant):
    assert_accepted("RegularizedMLP", ns(RegularizedMLP=variant))
    assert_accepted("RegularizedMLP", ns(RegularizedMLP=variant), num_features=20, hidden_units=6, num_classes=4,
                    p_drop=0.35, seed=3, instructor=True)


@pytest.mark.parametrize("wrong, code", [
    (NoBatchNorm, "missing_batchnorm"),
    (ReLUBeforeBatchNorm, "wrong_order"),
    (FixedDropout, "p_drop_ignored"),
    (NoDropout, "missing_dropout"),
    (DropoutAlwaysOn, "dropout_in_eval"),
    (EndsWithSoftmax, "softmax_in_model"),
    (NoRunningStats, "no_running_stats"),
    (DropoutOnTheInput, "wrong_order"),
    (DropoutOnTheLogits, "wrong_order"),
    (SkipsTheNormInEval, "running_stats_ignored"),
    (NormAlwaysInTrainMode, "stats_updated_in_eval"),
])
def test_RegularizedMLP_mistakes_are_diagnosed(wrong, code):
    assert_caught("RegularizedMLP", ns(RegularizedMLP=wrong), code)


class NormalisedByHand(nn.Module):
    """Batch norm written out with the formula, its own buffers, and an unscaled dropout: right in eval mode
    and in its batch statistics, wrong on average in train mode."""

    def __init__(self, num_features, hidden, num_classes, p_drop=0.5):
        super().__init__()
        self.fc1 = nn.Linear(num_features, hidden)
        self.bn = nn.BatchNorm1d(hidden)
        self.p = p_drop
        self.drop = nn.Dropout(p_drop)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x):
        h = torch.relu(self.bn(self.fc1(x)))
        if self.training:
            h = self.drop(h) * (1 - self.p)   # undoes nn.Dropout's scaling
        return self.fc2(h)


def test_the_instructor_checks_compare_with_the_reference_network():
    assert_accepted("RegularizedMLP", ns(RegularizedMLP=NormalisedByHand))
    assert_caught("RegularizedMLP", ns(RegularizedMLP=NormalisedByHand), "wrong_order", instructor=True)


# --- predict ---


def predict_saving_the_mode(model, X):
    mode = model.training
    model.eval()
    with torch.inference_mode():
        logits = model(X)
    model.train(mode)
    return torch.softmax(logits, dim=1).argmax(dim=1)


def predict_with_torch_max(model, X):
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            return torch.max(model(X), 1).indices
    finally:
        if was_training:
            model.train()


def predict_in_train_mode(model, X):
    with torch.no_grad():
        return model(X).argmax(dim=1)


def predict_leaving_eval(model, X):
    model.eval()
    with torch.no_grad():
        return model(X).argmax(dim=1)


def predict_always_back_to_train(model, X):
    model.eval()
    with torch.no_grad():
        classes = model(X).argmax(dim=1)
    model.train()
    return classes


def predict_setting_the_attribute(model, X):
    was_training = model.training
    model.eval()
    with torch.no_grad():
        classes = model(X).argmax(dim=1)
    model.training = was_training
    return classes


def predict_probabilities(model, X):
    was_training = model.training
    model.eval()
    with torch.no_grad():
        probs = torch.softmax(model(X), dim=1)
    model.train(was_training)
    return probs


def predict_max_values(model, X):
    was_training = model.training
    model.eval()
    with torch.no_grad():
        values = model(X).max(dim=1).values
    model.train(was_training)
    return values


def predict_with_detach(model, X):
    was_training = model.training
    model.eval()
    classes = model(X).detach().argmax(dim=1)
    model.train(was_training)
    return classes


@pytest.mark.parametrize("variant", [predict_saving_the_mode, predict_with_torch_max])
def test_predict_written_differently_is_accepted(variant):
    assert_accepted("predict", ns(predict=variant))
    assert_accepted("predict", ns(predict=variant), num_samples=40, num_features=9, num_classes=5, seed=8,
                    instructor=True)


@pytest.mark.parametrize("wrong, code", [
    (predict_in_train_mode, "missing_eval"),
    (predict_leaving_eval, "mode_not_restored"),
    (predict_always_back_to_train, "mode_not_restored"),
    (predict_setting_the_attribute, "mode_not_restored"),
    (predict_probabilities, "returns_scores"),
    (predict_max_values, "returns_scores"),
    (predict_with_detach, "missing_no_grad"),
])
def test_predict_mistakes_are_diagnosed(wrong, code):
    assert_caught("predict", ns(predict=wrong), code)



def predict_by_hand_softmax_threshold(model, X):
    """Right on the probe (one class far ahead), wrong on a real network: the first class above 0.3."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        probs = torch.softmax(model(X), dim=1)
    model.train(was_training)
    return (probs > 0.3).long().argmax(dim=1)


def test_the_instructor_check_compares_with_a_real_network():
    assert_accepted("predict", ns(predict=predict_by_hand_softmax_threshold))
    assert_caught("predict", ns(predict=predict_by_hand_softmax_threshold), "wrong_classes", instructor=True)


# --- challenge: train_despite_noise ---


def noisy_trainer(layers, epochs=200, lr=3e-3, weight_decay=0.0, load_itself=False):
    namespace = ns()

    def train_despite_noise(X, y):
        if load_itself:
            X, y = load_digits()
        torch.manual_seed(0)
        model = nn.Sequential(*layers())
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
        model.train()
        for _ in range(epochs):
            optimizer.zero_grad()
            F.cross_entropy(model(X), y).backward()
            optimizer.step()
        return model

    namespace["train_despite_noise"] = train_despite_noise
    return namespace


def early_stopping(X, y):
    """Keeps 60 of the 300 digits aside and returns the state with the lowest loss on them."""
    import copy

    torch.manual_seed(0)
    fit_X, fit_y, held_X, held_y = X[60:], y[60:], X[:60], y[:60]
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    best = (float("inf"), None)
    for _ in range(100):
        model.train()
        for start in range(0, len(fit_X), 40):
            optimizer.zero_grad()
            F.cross_entropy(model(fit_X[start:start + 40]), fit_y[start:start + 40]).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            loss = F.cross_entropy(model(held_X), held_y).item()
        if loss < best[0]:
            best = (loss, copy.deepcopy(model.state_dict()))
    model.load_state_dict(best[1])
    return model


@pytest.mark.parametrize("namespace", [
    lambda: noisy_trainer(lambda: [nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10)], epochs=30, weight_decay=0.05),
    lambda: ns(train_despite_noise=early_stopping),
])
def test_other_regularisation_choices_are_accepted(namespace):
    assert_accepted("train_despite_noise", namespace(), instructor=True)


@pytest.mark.parametrize("namespace, code", [
    (lambda: noisy_trainer(lambda: [nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10)]), "below_target"),
    (lambda: noisy_trainer(lambda: [nn.Linear(64, 256), nn.ReLU(), nn.Dropout(0.8), nn.Linear(256, 10)],
                           load_itself=True), "loads_other_data"),
])
def test_train_despite_noise_mistakes_are_diagnosed(namespace, code):
    assert_caught("train_despite_noise", namespace(), code)


def test_the_noise_challenge_measures_cpu_time(monkeypatch):
    import importlib

    monkeypatch.setattr(importlib.import_module("autograder.checks.08_regularization"), "NOISY_CPU_SECONDS", 0.001)
    assert_caught("train_despite_noise", ns(), "over_time_budget")
