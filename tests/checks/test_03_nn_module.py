"""The checks of 03_nn_module: real mistakes are caught with the right
diagnosis, and correct answers written another way are accepted."""

import math

import pytest
import torch
from torch import nn

from support import assert_accepted, assert_caught, solution_namespace

NB = "03_nn_module"


def ns(**replacements):
    return solution_namespace(NB, **replacements)


def test_the_solutions_pass_with_default_and_fresh_inputs():
    namespace = ns()
    for exercise in ("SimpleModel", "ManualLogisticModule", "count_parameters", "load_manual_weights"):
        assert_accepted(exercise, namespace)
    assert_accepted("count_parameters", namespace, num_features=7, hidden=6)
    assert_accepted("load_manual_weights", namespace, num_features=12, num_samples=9, seed=3)
    assert_accepted("ManualLogisticModule", namespace, instructor=True, num_features=9, num_samples=13, seed=2)
    assert_accepted("CircleClassifier", namespace, instructor=True)


# --- SimpleModel ---


class FunctionalSimpleModel(nn.Module):
    def __init__(self, num_features):
        super().__init__()
        self.linear = nn.Linear(in_features=num_features, out_features=1)

    def forward(self, x):
        return torch.sigmoid(self.linear(x))


class NoBias(nn.Module):
    def __init__(self, num_features):
        super().__init__()
        self.linear = nn.Linear(num_features, 1, bias=False)

    def forward(self, x):
        return torch.sigmoid(self.linear(x))


class NoSuper(nn.Module):
    def __init__(self, num_features):
        self.linear = nn.Linear(num_features, 1)

    def forward(self, x):
        return torch.sigmoid(self.linear(x))


class NoSigmoid(nn.Module):
    def __init__(self, num_features):
        super().__init__()
        self.linear = nn.Linear(num_features, 1)

    def forward(self, x):
        return self.linear(x)


class NotAModule:
    def __init__(self, num_features):
        self.linear = nn.Linear(num_features, 1)


def test_SimpleModel_with_a_functional_sigmoid_is_accepted():
    assert_accepted("SimpleModel", ns(SimpleModel=FunctionalSimpleModel))


@pytest.mark.parametrize("wrong, code", [
    (NoBias, "missing_bias"),
    (NoSuper, "missing_super_init"),
    (NoSigmoid, "missing_sigmoid"),
    (NotAModule, "not_a_module"),
])
def test_SimpleModel_mistakes_are_diagnosed(wrong, code):
    assert_caught("SimpleModel", ns(SimpleModel=wrong), code)


def test_the_missing_bias_message_gives_both_counts():
    result = assert_caught("SimpleModel", ns(SimpleModel=NoBias), "missing_bias")
    assert "5 parameters" in result.message and "expected 6" in result.message and "bias=False" in result.message


# --- ManualLogisticModule ---


class ManualWithInitAndLinear(nn.Module):
    def __init__(self, num_features):
        super().__init__()
        self.W = nn.Parameter(torch.empty(num_features, 1))
        self.b = nn.Parameter(torch.empty(1))
        nn.init.uniform_(self.W, -1 / math.sqrt(num_features), 1 / math.sqrt(num_features))
        nn.init.zeros_(self.b)

    def forward(self, x):
        return torch.sigmoid(nn.functional.linear(x, self.W.T, self.b))


class PlainTensors(nn.Module):
    def __init__(self, num_features):
        super().__init__()
        self.W = torch.zeros(num_features, 1, requires_grad=True)
        self.b = torch.zeros(1, requires_grad=True)

    def forward(self, x):
        return torch.sigmoid(x @ self.W + self.b)


class TransposedW(nn.Module):
    def __init__(self, num_features):
        super().__init__()
        self.W = nn.Parameter(torch.zeros(1, num_features))
        self.b = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return torch.sigmoid(x @ self.W.T + self.b)


class ExtraParameter(nn.Module):
    def __init__(self, num_features):
        super().__init__()
        self.W = nn.Parameter(torch.zeros(num_features, 1))
        self.b = nn.Parameter(torch.zeros(1))
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x):
        return torch.sigmoid(self.scale * (x @ self.W + self.b))


class ZerosW(nn.Module):
    def __init__(self, num_features):
        super().__init__()
        self.W = nn.Parameter(torch.zeros(num_features, 1))
        self.b = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return torch.sigmoid(x @ self.W + self.b)


class NormalW(ZerosW):
    def __init__(self, num_features):
        super().__init__(num_features)
        bound = 1 / math.sqrt(num_features)
        with torch.no_grad():
            self.W.copy_((torch.randn(num_features, 1) * bound).clamp(-bound, bound))


class WideW(ZerosW):
    def __init__(self, num_features):
        super().__init__(num_features)
        with torch.no_grad():
            self.W.uniform_(-1.0, 1.0)


class OwnConstantGenerator(ZerosW):
    def __init__(self, num_features):
        super().__init__(num_features)
        bound = 1 / math.sqrt(num_features)
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():
            self.W.copy_((torch.rand(num_features, 1, generator=gen) * 2 - 1) * bound)


class UniformBiasToo(nn.Module):
    def __init__(self, num_features):
        super().__init__()
        bound = num_features ** -0.5
        self.W = nn.Parameter((torch.rand(num_features, 1) * 2 - 1) * bound)
        self.b = nn.Parameter((torch.rand(1) * 2 - 1) * bound)

    def forward(self, x):
        return torch.sigmoid(torch.addmm(self.b, x, self.W))


class FiveFeaturesOnly(nn.Module):
    def __init__(self, num_features):
        super().__init__()
        self.W = nn.Parameter((torch.rand(5, 1) * 2 - 1) / math.sqrt(5))
        self.b = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return torch.sigmoid(x @ self.W + self.b)


def test_a_module_built_for_five_features_only_is_told_its_shape_at_once():
    result = assert_caught("ManualLogisticModule", ns(ManualLogisticModule=FiveFeaturesOnly), "wrong_shape")
    assert "self.W has shape (5, 1); expected (4096, 1)" in result.message


class ManualWithoutSigmoid(UniformBiasToo):
    def forward(self, x):
        return x @ self.W + self.b


@pytest.mark.parametrize("right", [ManualWithInitAndLinear, UniformBiasToo])
def test_ManualLogisticModule_written_differently_is_accepted(right):
    assert_accepted("ManualLogisticModule", ns(ManualLogisticModule=right))


@pytest.mark.parametrize("wrong, code", [
    (ZerosW, "zero_init"),
    (NormalW, "not_uniform"),
    (WideW, "out_of_range"),
    (OwnConstantGenerator, "seed_ignored"),
    (ManualWithoutSigmoid, "missing_sigmoid"),
    (PlainTensors, "not_registered"),
    (TransposedW, "wrong_shape"),
    (ExtraParameter, "wrong_parameters"),
])
def test_ManualLogisticModule_mistakes_are_diagnosed(wrong, code):
    assert_caught("ManualLogisticModule", ns(ManualLogisticModule=wrong), code)


# --- count_parameters ---


def count_with_prod(model, trainable_only=True):
    return sum(math.prod(p.shape) for p in model.parameters() if not trainable_only or p.requires_grad)


@pytest.mark.parametrize("wrong, code", [
    (lambda model, trainable_only=True: len(list(model.parameters())), "counted_tensors"),
    (lambda model, trainable_only=True: sum(p.numel() for p in model.parameters()), "ignores_requires_grad"),
    (lambda model, trainable_only=True: torch.tensor(sum(p.numel() for p in model.parameters())), "wrong_type"),
])
def test_count_parameters_mistakes_are_diagnosed(wrong, code):
    assert_caught("count_parameters", ns(count_parameters=wrong), code)


def count_by_concatenating(model, trainable_only=True):
    return int(torch.cat([p.flatten() for p in model.parameters() if p.requires_grad or not trainable_only]).numel())


def test_count_parameters_that_cannot_count_an_empty_model_is_caught():
    result = assert_caught("count_parameters", ns(count_parameters=count_by_concatenating), "raised")
    assert "torch.cat" in result.message or "RuntimeError" in result.message


def test_count_parameters_with_math_prod_is_accepted():
    assert_accepted("count_parameters", ns(count_parameters=count_with_prod))


# --- load_manual_weights ---


def load_with_state_dict(model, W, b):
    model.load_state_dict({"linear.weight": W.reshape(1, -1), "linear.bias": b})


def load_without_transposing(model, W, b):
    with torch.no_grad():
        model.linear.weight.copy_(W)
        model.linear.bias.copy_(b)


def load_by_sharing(model, W, b):
    model.linear.weight.data = W.T
    model.linear.bias.data = b


def load_new_parameters(model, W, b):
    model.linear.weight = nn.Parameter(W.T.clone())
    model.linear.bias = nn.Parameter(b.clone())


def load_without_no_grad(model, W, b):
    model.linear.weight.copy_(W.T)
    model.linear.bias.copy_(b)


def test_load_manual_weights_on_a_SimpleModel_without_sigmoid_blames_SimpleModel():
    result = assert_caught("load_manual_weights", ns(SimpleModel=NoSigmoid), "SimpleModel_broken")
    assert "your `SimpleModel`" in result.message


def load_and_freeze(model, W, b):
    with torch.no_grad():
        model.linear.weight.copy_(W.T)
        model.linear.bias.copy_(b)
    model.linear.requires_grad_(False)


def test_load_manual_weights_through_load_state_dict_is_accepted():
    assert_accepted("load_manual_weights", ns(load_manual_weights=load_with_state_dict))


@pytest.mark.parametrize("wrong, code", [
    (load_without_transposing, "weight_layout_transposed"),
    (load_by_sharing, "shares_storage"),
    (load_new_parameters, "replaced_parameter"),
    (load_without_no_grad, "update_in_graph"),
    (load_and_freeze, "update_in_graph"),
])
def test_load_manual_weights_mistakes_are_diagnosed(wrong, code):
    assert_caught("load_manual_weights", ns(load_manual_weights=wrong), code)


# --- challenge: CircleClassifier ---


class SquaredRadius(nn.Module):
    """Another design: one extra column, the squared distance from the origin, as a parameter-free feature."""

    def __init__(self):
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(3, 1))
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        features = torch.cat([x, (x * x).sum(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(features @ self.weights + self.bias)


class StraightLine(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, x):
        return torch.sigmoid(self.linear(x))


class KnowsTheNotebooksCircle(nn.Module):
    """Fits the visible circle only: its centre is written into forward."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(1, 1)

    def forward(self, x):
        return torch.sigmoid(self.linear(((x - torch.tensor([0.3, -0.2])) ** 2).sum(dim=1, keepdim=True)))


class TooBig(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 1), nn.Sigmoid())

    def forward(self, x):
        return self.net(x)


class Logits(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 1)

    def forward(self, x):
        return self.linear(torch.cat([x, x ** 2], dim=1))


class Unregistered(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))
        self.W = torch.zeros(4, 1, requires_grad=True)  # a plain tensor: train_module never steps it

    def forward(self, x):
        return torch.sigmoid(self.scale * (torch.cat([x, x ** 2], dim=1) @ self.W))


def test_CircleClassifier_designed_another_way_is_accepted():
    assert_accepted("CircleClassifier", ns(CircleClassifier=SquaredRadius), instructor=True)


@pytest.mark.parametrize("wrong, code", [
    (StraightLine, "below_target"),
    (TooBig, "over_budget"),
    (Logits, "not_probabilities"),
    (Unregistered, "below_target"),
])
def test_CircleClassifier_mistakes_are_diagnosed(wrong, code):
    assert_caught("CircleClassifier", ns(CircleClassifier=wrong), code)


def test_a_module_that_knows_the_notebooks_circle_fails_the_hidden_circles():
    namespace = ns(CircleClassifier=KnowsTheNotebooksCircle)
    assert_accepted("CircleClassifier", namespace)
    assert_caught("CircleClassifier", namespace, "below_target", instructor=True)
