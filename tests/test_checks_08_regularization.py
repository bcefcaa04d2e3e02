"""The checks of 08_regularization: real mistakes are caught with the right
diagnosis, and correct answers written another way are accepted."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from support import assert_accepted, assert_caught, solution_namespace

NB = "08_regularization"


def ns(**replacements):
    return solution_namespace(NB, **replacements)


def test_the_solutions_pass_with_default_and_fresh_inputs():
    namespace = ns()
    for exercise in ("inverted_dropout", "RegularizedMLP", "predict"):
        assert_accepted(exercise, namespace)
    assert_accepted("inverted_dropout", namespace, num_rows=300, num_cols=700, p=0.6, seed=11)
    assert_accepted("RegularizedMLP", namespace, num_features=20, hidden=6, num_classes=4, p_drop=0.35, seed=3)
    assert_accepted("predict", namespace, num_samples=40, num_features=9, num_classes=5, seed=8)


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
DropoutOnTheInput = mlp(lambda f, h, c, p: [nn.Dropout(p), nn.Linear(f, h), nn.BatchNorm1d(h), nn.ReLU(),
                                            nn.Linear(h, c)])


@pytest.mark.parametrize("variant", [AttributesAndFunctionalReLU, FunctionalDropout])
def test_RegularizedMLP_written_differently_is_accepted(variant):
    assert_accepted("RegularizedMLP", ns(RegularizedMLP=variant))
    assert_accepted("RegularizedMLP", ns(RegularizedMLP=variant), num_features=20, hidden=6, num_classes=4,
                    p_drop=0.35, seed=3)


@pytest.mark.parametrize("wrong, code", [
    (NoBatchNorm, "missing_batchnorm"),
    (ReLUBeforeBatchNorm, "wrong_order"),
    (FixedDropout, "p_drop_ignored"),
    (NoDropout, "missing_dropout"),
    (DropoutAlwaysOn, "dropout_in_eval"),
    (EndsWithSoftmax, "softmax_in_model"),
    (NoRunningStats, "no_running_stats"),
    (DropoutOnTheInput, "wrong_order"),
])
def test_RegularizedMLP_mistakes_are_diagnosed(wrong, code):
    assert_caught("RegularizedMLP", ns(RegularizedMLP=wrong), code)


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
    assert_accepted("predict", ns(predict=variant), num_samples=40, num_features=9, num_classes=5, seed=8)


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
