"""Checks for 03_nn_module: the logistic model again, as an nn.Module."""

from __future__ import annotations

import math

import torch
from torch import nn
from torchinfo import summary

from autograder.checks._support import (
    as_int,
    as_tensor,
    biggest_gap,
    blame,
    failure_of,
    describe,
    expect_shape,
    expect_parameter_count,
    instantiate,
    is_close,
    is_finite,
    parameter_count,
    shape_text,
    uniform_distance,
)
from autograder.registry import Checks
from autograder.results import expect, fail

checks = Checks("03_nn_module")


def _inputs(num_samples: int, num_features: int, seed: int) -> torch.Tensor:
    return torch.randn(num_samples, num_features, generator=torch.Generator().manual_seed(seed))


# --- SimpleModel ----------------------------------------------------------------
#
# Clauses of SimpleModel -> checks:
#   an nn.Module whose attribute `linear` is nn.Linear(num_features, 1) -> has_a_linear_attribute_from_num_features_to_1
#   num_features weights and one bias (6 parameters for 5 features)    -> has_one_weight_per_feature_plus_a_bias
#   output sigmoid(self.linear(x)), shape (N, 1), in (0, 1), in the graph
#     (a sigmoid module or torch.sigmoid, either)                      -> outputs_probabilities_of_shape_N_by_1


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
#
# Clauses of ManualLogisticModule -> checks:
#   nn.Parameter attributes W (num_features, 1) and b (1,); parameters() yields exactly
#     these two                                                       -> registers_exactly_W_and_b_as_parameters
#   W uniform in ±1/sqrt(num_features) (not zeros, not normal)        -> W_starts_uniform_in_plus_minus_one_over_sqrt_n
#   b zero or within the same range                                   -> W_starts_uniform_in_plus_minus_one_over_sqrt_n
#   drawn from PyTorch's global generator: torch.manual_seed makes it
#     repeatable, another seed gives another W                        -> torch_manual_seed_decides_the_initial_W
#   forward sigmoid(x @ W + b), in the graph                          -> computes_sigmoid_of_x_W_plus_b


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


def _parameter(model, name):
    value = getattr(model, name, None)
    if not isinstance(value, torch.Tensor):
        fail(f"ManualLogisticModule should have an attribute {name}, an nn.Parameter; found {describe(value)}.",
             "missing_attribute")
    return value.detach()


@checks.of("ManualLogisticModule")
def W_starts_uniform_in_plus_minus_one_over_sqrt_n(ManualLogisticModule, num_features=5, seed=0):
    for n in sorted({num_features, 4096}):
        bound = 1 / math.sqrt(n)
        torch.manual_seed(seed)
        model = instantiate(ManualLogisticModule, n, what="ManualLogisticModule")
        W, b = _parameter(model, "W").double(), _parameter(model, "b").double()
        expect_shape(W, (n, 1), "self.W", hint="One row per feature: build it from num_features.")
        expect_shape(b, (1,), "self.b")
        if bool((W == 0).all()):
            fail(f"W starts as all zeros. Start it as in 02: uniform in ±1/sqrt(num_features) "
                 f"(here ±{bound:.4f}). Only b may start at zero.", "zero_init")
        worst = float(W.abs().max())
        expect(worst <= bound + 1e-6,
               f"with {n} features W holds {worst:.4f}, outside ±1/sqrt({n}) = ±{bound:.4f}.", "out_of_range")
        expect(float(b.abs().max()) <= bound + 1e-6,
               f"with {n} features b starts at {float(b.abs().max()):.4g}; it should be 0 or within ±1/sqrt({n}).",
               "out_of_range")
    distance = uniform_distance(W, -bound, bound)
    expect(distance <= 0.05,
           f"with {n} features the initial weights are not spread evenly over ±{bound:.4f}: their cumulative "
           f"distribution is up to {distance:.2f} away from the uniform one (at most 0.05 expected). Draw them "
           "uniformly, as in 02 (torch.rand, or nn.init.uniform_).", "not_uniform")


@checks.of("ManualLogisticModule")
def torch_manual_seed_decides_the_initial_W(ManualLogisticModule, num_features=5, seed=0):
    Ws = []
    for s in (seed, seed, seed + 1):
        torch.manual_seed(s)
        Ws.append(_parameter(instantiate(ManualLogisticModule, num_features, what="ManualLogisticModule"), "W"))
    expect(is_close(Ws[0], Ws[1], atol=0, rtol=0),
           f"two models built right after torch.manual_seed({seed}) start with different W: draw W from PyTorch's "
           "global generator (torch.rand without a generator=, or nn.init.uniform_), so that torch.manual_seed "
           "makes it repeatable.", "not_deterministic")
    expect(not is_close(Ws[0], Ws[2], atol=0, rtol=0),
           f"models built after torch.manual_seed({seed}) and torch.manual_seed({seed + 1}) start with the same W: it "
           "does not come from PyTorch's global generator (a generator seeded with a constant inside __init__?).",
           "seed_ignored")


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
#
# Clauses of count_parameters -> checks:
#   a Python int: the number of scalars (p.numel()), not of tensors,
#     agreeing with torchinfo's total (0 for a model without any)      -> counts_every_number_in_every_parameter
#   by default only parameters that require grad, agreeing with
#     torchinfo's trainable count                                      -> counts_only_trainable_parameters_by_default


def _models_to_count(num_features: int, hidden: int):
    tiny = nn.Sequential(nn.Linear(num_features, hidden), nn.ReLU(), nn.Linear(hidden, 1))
    no_bias = nn.Sequential(nn.Linear(num_features, hidden, bias=False), nn.Tanh(), nn.Linear(hidden, 2))
    frozen = nn.Sequential(nn.Linear(num_features, hidden), nn.ReLU(), nn.Linear(hidden, 3))
    for p in frozen[0].parameters():
        p.requires_grad_(False)
    return {"a two-layer MLP": tiny, "an MLP without a first bias": no_bias,
            "an MLP whose first layer is frozen": frozen, "a model without parameters (a ReLU)": nn.ReLU()}


def _torchinfo_counts(model: nn.Module) -> tuple[int, int]:
    stats = summary(model, verbose=0)
    return int(stats.total_params), int(stats.trainable_params)


@checks.of("count_parameters")
def counts_every_number_in_every_parameter(count_parameters, num_features=5, hidden=3):
    for label, model in _models_to_count(num_features, hidden).items():
        total, _ = _torchinfo_counts(model)
        found = as_int(count_parameters(model, trainable_only=False), "count_parameters(model, trainable_only=False)")
        if found == len(list(model.parameters())) != total:
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
#
# Clauses of load_manual_weights -> checks:
#   afterwards model(X) equals sigmoid(X @ W + b) (W transposed into
#     the (1, n) layout)                                              -> makes_the_model_compute_what_the_manual_weights_compute
#   in place: the same parameter objects, returns None, not recorded in
#     the graph, values copied (no shared memory), parameters still
#     leaves that require grad and train                              -> copies_into_the_existing_parameters_which_still_train


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
    if not is_close(out, expected):
        found = f"after loading, model(X) differs from sigmoid(X @ W + b) by up to {biggest_gap(out, expected):.3g}."
        cause = failure_of("SimpleModel", SimpleModel=SimpleModel)
        if cause is not None:
            blame("load_manual_weights", found.rstrip("."), "SimpleModel", cause)
        fail(found, "wrong_values")


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
    model(_inputs(4, num_features, seed)).sum().backward()
    expect(all(p.grad is not None for p in after),
           "after loading, backward() through the model leaves a parameter without a gradient: it no longer trains.",
           "update_in_graph")
    with torch.no_grad():
        W += 1.0
        b += 1.0
    expect(is_close(model.linear.weight, (W - 1.0).T) and is_close(model.linear.bias, b - 1.0),
           "the model shares memory with W and b: changing W afterwards changed the model. Copy the values "
           "(copy_) rather than pointing the parameters at the same tensors.", "shares_storage")


# --- challenge: CircleClassifier -------------------------------------------------
#
# Graded by outcome: the learner designs the module; the check trains it with the notebook's own
# train_module loop (plain gradient descent on whatever parameters() yields) on points of a circle,
# and measures the accuracy on other points of it. Clauses -> checks:
#   CircleClassifier() maps (N, 2) to probabilities (N, 1) in [0, 1]   -> maps_points_to_probabilities
#   at most 50 parameters                                                -> has_at_most_50_parameters
#   trained by train_module, at least 95% right on new points of the
#     notebook's circle                                                 -> reaches_95_percent_on_new_points_of_the_circle
#   the same for circles the notebook never shows                        -> instructor: ..._of_hidden_circles

CIRCLE_TARGET = 0.95
CIRCLE_BUDGET = 50
CIRCLE = ((0.3, -0.2), 1.2)  # the notebook's circle: centre, radius


def circle_points(num_points: int, centre, radius: float, seed: int):
    """Points uniform in the square [-2, 2]², labelled 1 inside the circle and 0 outside."""
    gen = torch.Generator().manual_seed(seed)
    X = torch.rand(num_points, 2, generator=gen) * 4 - 2
    y = (((X - torch.tensor(centre)) ** 2).sum(dim=1, keepdim=True) < radius ** 2).float()
    return X, y


def train_module(model, X, y, steps=500, lr=0.5):
    """The notebook's loop: full-batch gradient descent on the clamped binary cross-entropy,
    stepping every tensor that model.parameters() yields. Returns the last loss."""
    for _ in range(steps):
        probs = model(X).clamp(1e-7, 1 - 1e-7)
        loss = -(y * probs.log() + (1 - y) * (1 - probs).log()).mean()
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                if p.grad is not None:
                    p -= lr * p.grad
                    p.grad = None
    return loss.item()


def _circle_model(CircleClassifier, seed: int):
    torch.manual_seed(seed)
    return instantiate(CircleClassifier, what="CircleClassifier")


def _circle_probs(model, X) -> torch.Tensor:
    out = as_tensor(model(X), "model(X)")
    expect_shape(out, (len(X), 1), "model(X)", hint="One probability per point, as a column.")
    out = out.detach()
    expect(is_finite(out) and float(out.min()) >= 0 and float(out.max()) <= 1,
           f"model(X) holds values in [{float(out.min()):.3g}, {float(out.max()):.3g}]: the check trains it with the "
           "binary cross-entropy of probabilities, so end with a sigmoid.", "not_probabilities")
    return out


def circle_accuracy(CircleClassifier, centre, radius, seed: int) -> float:
    model = _circle_model(CircleClassifier, seed)
    X, y = circle_points(1000, centre, radius, seed)
    X_new, y_new = circle_points(1000, centre, radius, seed + 1)
    _circle_probs(model, X)
    loss = train_module(model, X, y)
    expect(math.isfinite(loss), f"training made the loss {loss}: the steps blow up (inputs too large?).",
           "not_finite")
    with torch.no_grad():
        probs = _circle_probs(model, X_new)
    return float(((probs > 0.5).float() == y_new).float().mean())


@checks.of("CircleClassifier")
def maps_points_to_probabilities(CircleClassifier, seed=0):
    model = _circle_model(CircleClassifier, seed)
    X, _ = circle_points(16, *CIRCLE, seed)
    _circle_probs(model, X)


@checks.of("CircleClassifier")
def has_at_most_50_parameters(CircleClassifier, seed=0):
    model = _circle_model(CircleClassifier, seed)
    found = parameter_count(model)
    expect(0 < found <= CIRCLE_BUDGET,
           f"CircleClassifier has {found} parameters; the budget is 1 to {CIRCLE_BUDGET}"
           + (" (none at all: train_module would have nothing to train)." if found == 0 else "."), "over_budget")


@checks.of("CircleClassifier")
def reaches_95_percent_on_new_points_of_the_circle(CircleClassifier, seed=0):
    accuracy = circle_accuracy(CircleClassifier, *CIRCLE, seed)
    expect(accuracy >= CIRCLE_TARGET,
           f"after train_module on 1000 points of the notebook's circle, your model classifies {accuracy:.1%} of 1000 "
           f"new points correctly; the target is {CIRCLE_TARGET:.0%}. A straight boundary cannot follow a circle: "
           "look at the hints.", "below_target")
