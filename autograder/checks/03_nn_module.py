"""Checks for 03_nn_module: the logistic model again, as an nn.Module."""

from __future__ import annotations

import torch
from torch import nn
from torchinfo import summary

from autograder.checks._support import (
    as_int,
    as_tensor,
    biggest_gap,
    describe,
    expect_shape,
    expect_parameter_count,
    instantiate,
    is_close,
    shape_text,
)
from autograder.registry import Checks
from autograder.results import expect, fail

checks = Checks("03_nn_module")


def _inputs(num_samples: int, num_features: int, seed: int) -> torch.Tensor:
    return torch.randn(num_samples, num_features, generator=torch.Generator().manual_seed(seed))


# --- SimpleModel ----------------------------------------------------------------


@checks.of("SimpleModel")
def has_a_linear_attribute_from_num_features_to_1(SimpleModel, num_features=5):
    model = instantiate(SimpleModel, num_features, what="SimpleModel")
    linear = getattr(model, "linear", None)
    if not isinstance(linear, nn.Linear):
        fail(f"SimpleModel should have an attribute `linear` that is an nn.Linear; found {describe(linear)}.",
             "missing_attribute")
    expect((linear.in_features, linear.out_features) == (num_features, 1),
           f"self.linear maps {linear.in_features} features to {linear.out_features} outputs; "
           f"expected nn.Linear({num_features}, 1).", "wrong_layer_size")


@checks.of("SimpleModel")
def has_one_weight_per_feature_plus_a_bias(SimpleModel, num_features=5):
    model = instantiate(SimpleModel, num_features, what="SimpleModel")
    expect_parameter_count(model, num_features + 1, f"SimpleModel({num_features})",
                           f" ({num_features} weights and 1 bias)")


@checks.of("SimpleModel")
def outputs_probabilities_of_shape_N_by_1(SimpleModel, num_samples=8, num_features=5, seed=0):
    torch.manual_seed(seed)
    model = instantiate(SimpleModel, num_features, what="SimpleModel")
    X = _inputs(num_samples, num_features, seed)
    out = as_tensor(model(X), "model(X)")
    expect_shape(out, (num_samples, 1), "model(X)")
    linear = model.linear(X)
    if is_close(out, linear):
        fail("SimpleModel returns the raw output of self.linear: pass it through a sigmoid.", "missing_sigmoid")
    if is_close(out, torch.sigmoid(torch.sigmoid(linear))):
        fail("SimpleModel applies the sigmoid twice.", "double_sigmoid")
    expect(is_close(out, torch.sigmoid(linear)),
           f"model(X) differs from sigmoid(self.linear(X)) by up to {biggest_gap(out, torch.sigmoid(linear)):.3g}.",
           "wrong_values")
    out.sum().backward()
    expect(model.linear.weight.grad is not None,
           "no gradient reached self.linear.weight: forward must not detach its result.", "detached")


# --- ManualLogisticModule -------------------------------------------------------


@checks.of("ManualLogisticModule")
def registers_exactly_W_and_b_as_parameters(ManualLogisticModule, num_features=5):
    model = instantiate(ManualLogisticModule, num_features, what="ManualLogisticModule")
    for name, shape in (("W", (num_features, 1)), ("b", (1,))):
        value = getattr(model, name, None)
        if type(value) is torch.Tensor:
            fail(f"self.{name} is a plain tensor, so model.parameters() does not see it and no optimizer would "
                 f"train it. Wrap it: self.{name} = nn.Parameter(...).", "not_registered")
        if not isinstance(value, nn.Parameter):
            fail(f"ManualLogisticModule should have an attribute {name}, an nn.Parameter; found {describe(value)}.",
                 "missing_attribute")
        expect_shape(value, shape, f"self.{name}")
    found = list(model.parameters())
    expect(len(found) == 2 and found[0] is model.W and found[1] is model.b or
           len(found) == 2 and found[0] is model.b and found[1] is model.W,
           f"model.parameters() yields {len(found)} tensors; expected exactly W and b.", "wrong_parameters")


@checks.of("ManualLogisticModule")
def computes_sigmoid_of_x_W_plus_b(ManualLogisticModule, num_samples=8, num_features=5, seed=0):
    torch.manual_seed(seed)
    model = instantiate(ManualLogisticModule, num_features, what="ManualLogisticModule")
    with torch.no_grad():
        model.W.copy_(torch.randn(num_features, 1, generator=torch.Generator().manual_seed(seed)))
        model.b.fill_(0.3)
    X = _inputs(num_samples, num_features, seed + 1)
    out = as_tensor(model(X), "model(X)")
    expect_shape(out, (num_samples, 1), "model(X)")
    expected = torch.sigmoid(X @ model.W + model.b)
    if is_close(out, X @ model.W + model.b):
        fail("ManualLogisticModule returns x @ W + b, the logits: apply torch.sigmoid.", "missing_sigmoid")
    expect(is_close(out, expected),
           f"model(X) differs from sigmoid(X @ W + b) by up to {biggest_gap(out, expected):.3g}.", "wrong_values")
    out.sum().backward()
    expect(model.W.grad is not None and model.b.grad is not None,
           "no gradient reached W or b: forward must use the parameters themselves, without detaching.", "detached")


# --- count_parameters -----------------------------------------------------------


def _models_to_count(num_features: int, hidden: int):
    tiny = nn.Sequential(nn.Linear(num_features, hidden), nn.ReLU(), nn.Linear(hidden, 1))
    no_bias = nn.Sequential(nn.Linear(num_features, hidden, bias=False), nn.Tanh(), nn.Linear(hidden, 2))
    frozen = nn.Sequential(nn.Linear(num_features, hidden), nn.ReLU(), nn.Linear(hidden, 3))
    for p in frozen[0].parameters():
        p.requires_grad_(False)
    return {"a two-layer MLP": tiny, "an MLP without a first bias": no_bias,
            "an MLP whose first layer is frozen": frozen}


def _torchinfo_counts(model: nn.Module) -> tuple[int, int]:
    stats = summary(model, verbose=0)
    return int(stats.total_params), int(stats.trainable_params)


@checks.of("count_parameters")
def counts_every_number_in_every_parameter(count_parameters, num_features=5, hidden=3):
    for label, model in _models_to_count(num_features, hidden).items():
        total, _ = _torchinfo_counts(model)
        found = as_int(count_parameters(model, trainable_only=False), "count_parameters(model, trainable_only=False)")
        if found == len(list(model.parameters())):
            fail(f"for {label} count_parameters gave {found}, the number of parameter tensors; torchinfo counts "
                 f"{total} numbers. Add up p.numel() for every parameter p.", "counted_tensors")
        expect(found == total, f"for {label} count_parameters(model, trainable_only=False) gave {found}; "
               f"torchinfo counts {total}.", "wrong_count")


@checks.of("count_parameters")
def counts_only_trainable_parameters_by_default(count_parameters, num_features=5, hidden=3):
    for label, model in _models_to_count(num_features, hidden).items():
        total, trainable = _torchinfo_counts(model)
        found = as_int(count_parameters(model), "count_parameters(model)")
        if trainable != total and found == total:
            fail(f"for {label} count_parameters(model) gave {found}, counting frozen parameters too; torchinfo counts "
                 f"{trainable} trainable ones. Count only parameters with p.requires_grad when trainable_only is "
                 "true.", "ignores_requires_grad")
        expect(found == trainable, f"for {label} count_parameters(model) gave {found}; torchinfo counts {trainable} "
               "trainable parameters.", "wrong_count")


# --- load_manual_weights --------------------------------------------------------


def _manual_weights(num_features: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(num_features, 1, generator=gen), torch.randn(1, generator=gen)


def _load(load_manual_weights, model, W, b):
    try:
        returned = load_manual_weights(model, W, b)
    except RuntimeError as exc:
        if "size" in str(exc) or "shape" in str(exc):
            fail(f"copying raised `{exc}`. nn.Linear stores its weight as (out_features, in_features) = "
                 f"{shape_text(model.linear.weight.shape)}, while the manual W is {shape_text(W.shape)}: "
                 "transpose it (W.T) before copying.", "weight_layout_transposed")
        if "leaf Variable" in str(exc) or "in-place" in str(exc):
            fail("the copy was recorded by autograd, which refuses in-place changes to a parameter. "
                 "Copy under `with torch.no_grad():`.", "update_in_graph")
        raise
    expect(returned is None, f"load_manual_weights should change the model in place and return nothing; it returned "
           f"{describe(returned)}.", "wrong_return")


@checks.of("load_manual_weights")
def makes_the_model_compute_what_the_manual_weights_compute(load_manual_weights, SimpleModel, num_samples=8,
                                                             num_features=5, seed=0):
    model = instantiate(SimpleModel, num_features, what="SimpleModel")
    W, b = _manual_weights(num_features, seed)
    _load(load_manual_weights, model, W, b)
    X = _inputs(num_samples, num_features, seed + 1)
    out = as_tensor(model(X), "model(X)")
    expected = torch.sigmoid(X @ W + b)
    expect(is_close(out, expected),
           f"after loading, model(X) differs from sigmoid(X @ W + b) by up to {biggest_gap(out, expected):.3g}.",
           "wrong_values")


@checks.of("load_manual_weights")
def copies_into_the_existing_parameters_which_still_train(load_manual_weights, SimpleModel, num_features=5, seed=0):
    model = instantiate(SimpleModel, num_features, what="SimpleModel")
    before = list(model.parameters())
    W, b = _manual_weights(num_features, seed)
    _load(load_manual_weights, model, W, b)
    after = list(model.parameters())
    expect(len(after) == len(before) and all(new is old for new, old in zip(after, before)),
           "load_manual_weights replaced the model's parameters with new ones, so an optimizer built before the "
           "call would keep updating the old tensors. Copy into the existing ones: "
           "model.linear.weight.copy_(W.T) under torch.no_grad().", "replaced_parameter")
    for p in after:
        expect(p.is_leaf and p.requires_grad and p.grad_fn is None,
               "after loading, a parameter is no longer a leaf that requires grad: the copy was recorded in the "
               "graph or turned off gradients.", "update_in_graph")
    with torch.no_grad():
        W += 1.0
        b += 1.0
    expect(is_close(model.linear.weight, (W - 1.0).T) and is_close(model.linear.bias, b - 1.0),
           "the model shares memory with W and b: changing W afterwards changed the model. Copy the values "
           "(copy_) rather than pointing the parameters at the same tensors.", "shares_storage")
