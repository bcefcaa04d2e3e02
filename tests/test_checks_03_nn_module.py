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


def test_ManualLogisticModule_with_nn_init_and_F_linear_is_accepted():
    assert_accepted("ManualLogisticModule", ns(ManualLogisticModule=ManualWithInitAndLinear))


@pytest.mark.parametrize("wrong, code", [
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


def test_load_manual_weights_through_load_state_dict_is_accepted():
    assert_accepted("load_manual_weights", ns(load_manual_weights=load_with_state_dict))


@pytest.mark.parametrize("wrong, code", [
    (load_without_transposing, "weight_layout_transposed"),
    (load_by_sharing, "shares_storage"),
    (load_new_parameters, "replaced_parameter"),
    (load_without_no_grad, "update_in_graph"),
])
def test_load_manual_weights_mistakes_are_diagnosed(wrong, code):
    assert_caught("load_manual_weights", ns(load_manual_weights=wrong), code)
