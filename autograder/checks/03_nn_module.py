"""Checks for 03_nn_module: the logistic model again, as an nn.Module.

The learner's classes and functions arrive as references into the learner's process (see
:mod:`autograder.learner`): models are built there, and what a check compares (outputs, parameter
copies, the facts :mod:`autograder.checks._modules` reads) comes back here as data. Next to each
exercise's checks, a comment lists the rules of its statement in the notebook and the check that
enforces each.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from autograder.checks._modules import (
    attribute,
    build,
    expect_parameter_count,
    gradients_from_output,
    module_facts,
    parameter_total,
    what_is,
)
from autograder.checks._support import (
    as_int,
    as_tensor,
    biggest_gap,
    blame,
    expect_shape,
    failure_of,
    is_close,
    is_finite,
    shape_text,
    uniform_distance,
)
from autograder.learner import is_callable, is_instance, probe, seeded
from autograder.recipes import circle_points, train_module
from autograder.registry import Checks
from autograder.results import expect, fail

checks = Checks("03_nn_module")


def _inputs(num_samples: int, num_features: int, seed: int) -> torch.Tensor:
    return torch.randn(num_samples, num_features, generator=torch.Generator().manual_seed(seed))


# --- SimpleModel ----------------------------------------------------------------
#
# Rules of SimpleModel -> checks:
#   linear_attribute  an nn.Module with `linear`, nn.Linear(num_features, 1)  -> has_a_linear_attribute_from_num_features_to_1
#   weights_and_bias  num_features weights and one bias                         -> has_one_weight_per_feature_plus_a_bias
#   probabilities     model(x): sigmoid of the layer's output, (N, 1)           -> outputs_probabilities_of_shape_N_by_1
#   in_graph          gradients reach the layer                                 -> gradients_reach_the_layer


@checks.of("SimpleModel", rule="linear_attribute")
def has_a_linear_attribute_from_num_features_to_1(SimpleModel, num_features=5):
    model = build(SimpleModel, num_features, what="SimpleModel")
    linear = attribute(model, "linear")
    if linear is None or not is_instance(linear, nn.Linear):
        fail(f"SimpleModel should have an attribute `linear` that is an nn.Linear; found {what_is(linear)}.",
             "missing_attribute")
    sizes = (linear.in_features, linear.out_features)
    expect(sizes == (num_features, 1),
           f"self.linear maps {sizes[0]} features to {sizes[1]} outputs; expected {num_features} features (one per "
           "input column) to 1 output.", "wrong_layer_size")


@checks.of("SimpleModel", rule="weights_and_bias")
def has_one_weight_per_feature_plus_a_bias(SimpleModel, num_features=5):
    model = build(SimpleModel, num_features, what="SimpleModel")
    expect_parameter_count(probe(module_facts, model), num_features + 1, f"SimpleModel({num_features})",
                           f" ({num_features} weights and 1 bias)")


@checks.of("SimpleModel", rule="probabilities")
def outputs_probabilities_of_shape_N_by_1(SimpleModel, num_samples=8, num_features=5, seed=0):
    model = build(SimpleModel, num_features, what="SimpleModel", seed=seed)
    X = _inputs(num_samples, num_features, seed)
    out = as_tensor(model(X), "model(X)")
    expect_shape(out, (num_samples, 1), "model(X)")
    weight, bias = model.linear.weight, model.linear.bias
    scores = F.linear(X, weight.detach(), None if bias is None else bias.detach())
    if is_close(out, scores):
        fail("SimpleModel returns the raw output of self.linear, scores anywhere on the real line; expected "
             "probabilities in (0, 1).", "missing_sigmoid", fix="pass the layer's output through a sigmoid")
    if is_close(out, torch.sigmoid(torch.sigmoid(scores))):
        fail("SimpleModel applies the sigmoid twice: its outputs all lie between 0.5 and 0.73.", "double_sigmoid")
    expect(is_close(out, torch.sigmoid(scores)),
           f"model(X) differs from sigmoid(self.linear(X)) by up to {biggest_gap(out, torch.sigmoid(scores)):.3g}.",
           "wrong_values")


@checks.of("SimpleModel", rule="in_graph")
def gradients_reach_the_layer(SimpleModel, num_samples=8, num_features=5, seed=0):
    model = build(SimpleModel, num_features, what="SimpleModel", seed=seed)
    out, reached = probe(gradients_from_output, model, _inputs(num_samples, num_features, seed))
    out = as_tensor(out, "model(X)")
    expect(out.requires_grad and "linear.weight" in reached,
           "no gradient reached self.linear.weight: the output left the graph (a detach, .data, or torch.no_grad "
           "inside forward), so nothing would train.", "detached")


# --- ManualLogisticModule -------------------------------------------------------
#
# Rules of ManualLogisticModule -> checks:
#   two_parameters    W (n, 1) and b (1,), nn.Parameters, and nothing else       -> registers_exactly_W_and_b_as_parameters
#   W_uniform         W uniform in ±1/sqrt(n): many models fill that range
#                     evenly, up to both ends                                   -> W_starts_uniform_in_plus_minus_one_over_sqrt_n
#   b_start           b zero or in the same range                               -> b_starts_at_zero_or_in_the_same_range
#   global_generator  torch.manual_seed before building decides the start       -> torch_manual_seed_decides_the_initial_W, and
#                                                                               W_starts_... (models in a row all alike)
#   forward_formula   model(x) = sigmoid(x @ W + b), (N, 1)                      -> computes_sigmoid_of_x_W_plus_b
#   in_graph          gradients reach W and b                                   -> gradients_reach_W_and_b


@checks.of("ManualLogisticModule", rule="two_parameters")
def registers_exactly_W_and_b_as_parameters(ManualLogisticModule, num_features=5):
    model = build(ManualLogisticModule, num_features, what="ManualLogisticModule")
    for name, shape in (("W", (num_features, 1)), ("b", (1,))):
        value = attribute(model, name)
        if type(value) is torch.Tensor:
            fail(f"self.{name} is a plain tensor, so model.parameters() does not see it and no optimizer would "
                 "train it.", "not_registered", fix=f"self.{name} = nn.Parameter(...)")
        if not isinstance(value, nn.Parameter):
            fail(f"ManualLogisticModule should have an attribute {name}, an nn.Parameter; found {what_is(value)}.",
                 "missing_attribute")
        expect_shape(value, shape, f"self.{name}", hint="One row per feature." if name == "W" else "")
    names = sorted(name for name, _, _ in probe(module_facts, model)["parameters"])
    expect(names == ["W", "b"], f"model.parameters() yields {len(names)} tensors ({', '.join(names)}); expected "
           "exactly W and b.", "wrong_parameters")


def initial_values(ManualLogisticModule, num_features: int, count: int) -> dict:
    """A probe: ``count`` models ``ManualLogisticModule(num_features)`` built in a row; the first one's W shape
    and every model's initial W and b, flattened and stacked (one row per model)."""
    models = [ManualLogisticModule(num_features) for _ in range(count)]
    first = torch.as_tensor(models[0].W)
    return {"W_shape": tuple(first.shape),
            "W": torch.stack([torch.as_tensor(m.W).detach().reshape(-1) for m in models]),
            "b": torch.stack([torch.as_tensor(m.b).detach().reshape(-1) for m in models])}


_DRAWS = 2000  # initial weights looked at per feature count: enough for both ends of the range to show


@checks.of("ManualLogisticModule", rule=("W_uniform", "global_generator"))
def W_starts_uniform_in_plus_minus_one_over_sqrt_n(ManualLogisticModule, num_features=5, seed=0):
    for n in sorted({2, num_features}):  # 2 features: a wide range, which the extremes of many draws must reach
        bound = 1 / math.sqrt(n)
        probe(torch.random.manual_seed, seed)
        drawn = probe(initial_values, ManualLogisticModule, n, -(-_DRAWS // n))
        expect(tuple(drawn["W_shape"]) == (n, 1), f"with {n} features self.W has shape "
               f"{shape_text(drawn['W_shape'])}; expected ({n}, 1): one row per feature, built from num_features.",
               "wrong_shape")
        W = drawn["W"].double()
        if bool((W == 0).all()):
            fail(f"W starts as all zeros; expected uniform in ±1/sqrt(num_features) (here ±{bound:.4f}), as in 02. "
                 "Only b may start at zero.", "zero_init")
        if len(W) > 1 and bool((W == W[0]).all()):
            fail(f"{len(W)} models built one after the other all start with the same W: it is not drawn from "
                 "PyTorch's global generator, which gives every new model a new start (a generator of its own "
                 "seeded with a constant, or torch.manual_seed called inside __init__?).", "seed_ignored")
        low, high = float(W.min()), float(W.max())
        expect(max(-low, high) <= bound * (1 + 1e-6),
               f"with {n} features W reaches {max(-low, high):.4f}, outside ±1/sqrt({n}) = ±{bound:.4f}.",
               "out_of_range")
        expect(high >= 0.97 * bound and low <= -0.97 * bound,
               f"over {len(W)} models with {n} features, W stayed within [{low:.4f}, {high:.4f}]; uniform in "
               f"±1/sqrt({n}) = ±{bound:.4f}, that many draws come within 3% of both ends. Is the bound "
               "1/sqrt(num_features), and the range centred on 0?", "narrow_range")
        distance = uniform_distance(W, -bound, bound)
        expect(distance <= 0.05,
               f"with {n} features the initial weights are not spread evenly over ±{bound:.4f}: their cumulative "
               f"distribution is up to {distance:.2f} away from the uniform one (at most 0.05 expected). Are they "
               "drawn from a uniform distribution (torch.rand), not a normal one?", "not_uniform")


@checks.of("ManualLogisticModule", rule="b_start")
def b_starts_at_zero_or_in_the_same_range(ManualLogisticModule, num_features=5, seed=0):
    bound = 1 / math.sqrt(num_features)
    probe(torch.random.manual_seed, seed)
    b = probe(initial_values, ManualLogisticModule, num_features, 50)["b"].double()
    worst = float(b.abs().max())
    expect(worst <= bound * (1 + 1e-6),
           f"with {num_features} features b starts as far out as {worst:.4g}; expected 0, or a value within "
           f"±1/sqrt({num_features}) = ±{bound:.4f}.", "out_of_range")


@checks.of("ManualLogisticModule", rule="global_generator")
def torch_manual_seed_decides_the_initial_W(ManualLogisticModule, num_features=5, seed=0):
    Ws = []
    for s in (seed, seed, seed + 1):
        model = build(ManualLogisticModule, num_features, what="ManualLogisticModule", seed=s)
        Ws.append(torch.as_tensor(attribute(model, "W")).detach())
    expect(is_close(Ws[0], Ws[1], atol=0, rtol=0),
           f"two models built right after torch.manual_seed({seed}) start with different W: W does not come from "
           "PyTorch's global generator alone, so torch.manual_seed cannot make the start repeatable.",
           "not_deterministic")
    expect(not is_close(Ws[0], Ws[2], atol=0, rtol=0),
           f"models built after torch.manual_seed({seed}) and torch.manual_seed({seed + 1}) start with the same W: "
           "it does not come from PyTorch's global generator (a generator of its own seeded with a constant, or "
           "torch.manual_seed called inside __init__?).", "seed_ignored")


def _with_chosen_values(ManualLogisticModule, num_features: int, seed: int):
    """A model whose W and b are set to values of the check's (b far from 0, so that it shows)."""
    model = build(ManualLogisticModule, num_features, what="ManualLogisticModule", seed=seed)
    W = torch.randn(num_features, 1, generator=torch.Generator().manual_seed(seed))
    b = torch.tensor([0.3])
    model.W, model.b = nn.Parameter(W), nn.Parameter(b)
    return model, W, b


@checks.of("ManualLogisticModule", rule="forward_formula")
def computes_sigmoid_of_x_W_plus_b(ManualLogisticModule, num_samples=8, num_features=5, seed=0):
    model, W, b = _with_chosen_values(ManualLogisticModule, num_features, seed)
    X = _inputs(num_samples, num_features, seed + 1)
    out = as_tensor(model(X), "model(X)")
    expect_shape(out, (num_samples, 1), "model(X)")
    if is_close(out, X @ W + b):
        fail("ManualLogisticModule returns x @ W + b, the scores, not probabilities.", "missing_sigmoid",
             fix="apply torch.sigmoid to x @ self.W + self.b")
    expected = torch.sigmoid(X @ W + b)
    if is_close(out, torch.sigmoid(X @ W)):
        fail("model(X) equals sigmoid(X @ W): the bias b never enters forward.", "missing_bias")
    expect(is_close(out, expected),
           f"model(X) differs from sigmoid(X @ W + b) by up to {biggest_gap(out, expected):.3g}.", "wrong_values")


@checks.of("ManualLogisticModule", rule="in_graph")
def gradients_reach_W_and_b(ManualLogisticModule, num_samples=8, num_features=5, seed=0):
    model = build(ManualLogisticModule, num_features, what="ManualLogisticModule", seed=seed)
    _, reached = probe(gradients_from_output, model, _inputs(num_samples, num_features, seed))
    missing = [name for name in ("W", "b") if name not in reached]
    expect(not missing, f"no gradient reached {' and '.join(missing)}: forward must use the parameters themselves, "
           "without detaching (a copy, .data or .detach() leaves the graph).", "detached")


# --- count_parameters -----------------------------------------------------------
#
# Rules of count_parameters -> checks:
#   python_int      a Python int                                       -> both checks
#   numbers         numbers, not tensors; 0 without parameters;
#                   torchinfo's total with trainable_only=False         -> counts_every_number_in_every_parameter
#   trainable_only  by default only parameters that require grad        -> counts_only_trainable_parameters_by_default


def models_to_count(num_features: int, hidden: int) -> dict:
    """A probe (and the judge's copy): the models count_parameters is tried on, by what each shows."""
    tiny = nn.Sequential(nn.Linear(num_features, hidden), nn.ReLU(), nn.Linear(hidden, 1))
    no_bias = nn.Sequential(nn.Linear(num_features, hidden, bias=False), nn.Tanh(), nn.Linear(hidden, 2))
    frozen = nn.Sequential(nn.Linear(num_features, hidden), nn.ReLU(), nn.Linear(hidden, 3))
    for p in frozen[0].parameters():
        p.requires_grad_(False)
    return {"a two-layer MLP": tiny, "an MLP without a first bias": no_bias,
            "an MLP whose first layer is frozen": frozen, "a model without parameters (a ReLU)": nn.ReLU()}


def _torchinfo_counts(num_features: int, hidden: int) -> dict:
    """torchinfo's (total, trainable) for each model of :func:`models_to_count`, built here."""
    from torchinfo import summary

    with seeded(0):
        models = models_to_count(num_features, hidden)
    counts = {}
    for label, model in models.items():
        stats = summary(model, verbose=0)
        counts[label] = (int(stats.total_params), int(stats.trainable_params))
    return counts


@checks.of("count_parameters", rule=("python_int", "numbers"))
def counts_every_number_in_every_parameter(count_parameters, num_features=5, hidden=3):
    expected = _torchinfo_counts(num_features, hidden)
    for label, model in probe(models_to_count, num_features, hidden).items():
        total, _ = expected[label]
        found = as_int(count_parameters(model, trainable_only=False), "count_parameters(model, trainable_only=False)")
        tensors = len(probe(module_facts, model)["parameters"])
        if found == tensors != total:
            fail(f"for {label} count_parameters gave {found}, the number of parameter tensors; torchinfo counts "
                 f"{total} numbers: a (1, 5) weight holds 5 of them.", "counted_tensors",
                 fix="add up p.numel() over model.parameters()")
        expect(found == total, f"for {label} count_parameters(model, trainable_only=False) gave {found}; "
               f"torchinfo counts {total}.", "wrong_count")


@checks.of("count_parameters", rule=("python_int", "trainable_only"))
def counts_only_trainable_parameters_by_default(count_parameters, num_features=5, hidden=3):
    expected = _torchinfo_counts(num_features, hidden)
    for label, model in probe(models_to_count, num_features, hidden).items():
        total, trainable = expected[label]
        found = as_int(count_parameters(model), "count_parameters(model)")
        if trainable != total and found == total:
            fail(f"for {label} count_parameters(model) gave {found}, frozen parameters included; torchinfo counts "
                 f"{trainable} trainable ones. With trainable_only true (the default), parameters whose "
                 "requires_grad is off do not count.", "ignores_requires_grad")
        expect(found == trainable, f"for {label} count_parameters(model) gave {found}; torchinfo counts {trainable} "
               "trainable parameters.", "wrong_count")


# --- load_manual_weights --------------------------------------------------------
#
# Rules of load_manual_weights -> checks:
#   same_outputs   afterwards model(X) = sigmoid(X @ W + b)                  -> makes_the_model_compute_what_the_manual_weights_compute
#   not_recorded   the copy is not recorded: the parameters stay leaves
#                  that require grad and train                                -> the same check (a recorded copy fails as it is
#                                                                                made), and parameters_still_train_afterwards
#   in_place       the model keeps its parameter objects; returns None        -> changes_the_model_in_place_and_returns_nothing
#   copies_values  no memory shared with W and b                              -> shares_no_memory_with_W_and_b


def _manual_weights(num_features: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(num_features, 1, generator=gen), torch.randn(1, generator=gen)


def _loading(call, W):
    """``call()`` (a load), with PyTorch's refusals explained: a shape mismatch, a recorded copy."""
    try:
        return call()
    except RuntimeError as exc:
        text = str(exc)
        if "leaf Variable" in text or "in-place operation" in text:
            fail("the copy was recorded by autograd: it ran outside torch.no_grad(), and autograd refuses an "
                 "in-place change of a parameter that requires grad.", "update_in_graph",
                 fix="copy under `with torch.no_grad():`")
        if "size" in text or "shape" in text:
            fail(f"copying raised `{text[:200]}`. nn.Linear stores its weight as (out_features, in_features) = "
                 f"(1, {W.shape[0]}), while the manual W is {shape_text(W.shape)}: each is the transpose of the "
                 "other.", "weight_layout_transposed",
                 fix="copy W.T, the transpose of W")
        raise


def load_in_place(load_manual_weights, model, W, b) -> dict:
    """A probe: ``load_manual_weights(model, W, b)``; what it returned, and whether the model kept its very
    parameter objects."""
    before = list(model.parameters())
    returned = load_manual_weights(model, W, b)
    after = list(model.parameters())
    return {"returned": returned,
            "same_objects": len(after) == len(before) and all(a is o for a, o in zip(after, before))}


def load_then_change_the_source(load_manual_weights, model, W, b) -> None:
    """A probe: ``load_manual_weights(model, W, b)``, then W and b changed in place (each + 1)."""
    load_manual_weights(model, W, b)
    with torch.no_grad():
        W += 1.0
        b += 1.0


@checks.of("load_manual_weights", rule=("same_outputs", "not_recorded"))
def makes_the_model_compute_what_the_manual_weights_compute(load_manual_weights, SimpleModel, num_samples=8,
                                                             num_features=5, seed=0):
    model = build(SimpleModel, num_features, what="SimpleModel", seed=seed)
    W, b = _manual_weights(num_features, seed)
    _loading(lambda: load_manual_weights(model, W, b), W)
    X = _inputs(num_samples, num_features, seed + 1)
    out = as_tensor(model(X), "model(X)")
    expected = torch.sigmoid(X @ W + b)
    if not is_close(out, expected):
        found = f"after loading, model(X) differs from sigmoid(X @ W + b) by up to {biggest_gap(out, expected):.3g}"
        cause = failure_of("SimpleModel", SimpleModel=SimpleModel)
        if cause is not None:
            blame("load_manual_weights", found, "SimpleModel", cause)
        weight = model.linear.weight.detach()
        if is_close(weight, W.T) and not is_close(model.linear.bias.detach(), b):
            fail(found + ": the weight was copied, the bias was not.", "wrong_values")
        fail(found + ".", "wrong_values")


@checks.of("load_manual_weights", rule="in_place")
def changes_the_model_in_place_and_returns_nothing(load_manual_weights, SimpleModel, num_features=5, seed=0):
    model = build(SimpleModel, num_features, what="SimpleModel", seed=seed)
    W, b = _manual_weights(num_features, seed)
    seen = _loading(lambda: probe(load_in_place, load_manual_weights, model, W, b), W)
    expect(seen["same_objects"],
           "load_manual_weights replaced the model's parameters with new ones, so an optimizer created before the "
           "call would go on updating the old tensors, which the model no longer uses.", "replaced_parameter",
           fix="copy into the existing parameters with .copy_()")
    expect(seen["returned"] is None, "load_manual_weights should change the model in place and return nothing; it "
           f"returned {what_is(seen['returned'])}.", "wrong_return")


@checks.of("load_manual_weights", rule="not_recorded")
def parameters_still_train_afterwards(load_manual_weights, SimpleModel, num_features=5, seed=0):
    model = build(SimpleModel, num_features, what="SimpleModel", seed=seed)
    W, b = _manual_weights(num_features, seed)
    _loading(lambda: load_manual_weights(model, W, b), W)
    for name in ("weight", "bias"):
        p = attribute(model.linear, name)
        expect(isinstance(p, nn.Parameter) and p.requires_grad,
               f"after loading, self.linear.{name} no longer requires grad: loading turned training off for it.",
               "update_in_graph")
    _, reached = probe(gradients_from_output, model, _inputs(4, num_features, seed))
    expect({"linear.weight", "linear.bias"} <= set(reached),
           "after loading, backward() through the model leaves a parameter without a gradient: it no longer trains.",
           "update_in_graph")


@checks.of("load_manual_weights", rule="copies_values")
def shares_no_memory_with_W_and_b(load_manual_weights, SimpleModel, num_features=5, seed=0):
    model = build(SimpleModel, num_features, what="SimpleModel", seed=seed)
    W, b = _manual_weights(num_features, seed)
    _loading(lambda: probe(load_then_change_the_source, load_manual_weights, model, W, b), W)
    weight, bias = model.linear.weight.detach(), model.linear.bias.detach()
    expect(is_close(weight, W.T) and is_close(bias, b),
           "the model shares memory with W and b: changing W and b after loading changed the model too, so "
           "training one would change the other.", "shares_storage",
           fix="copy the values with .copy_() rather than pointing the parameters (or their .data) at W and b")


# --- predict_mixed_count (predict, then run) --------------------------------------
#
# Rules of predict_mixed_count -> checks:
#   whole_number  returns the prediction as a Python int   -> answers_with_a_whole_number
#   right         it is what the reveal prints              -> instructor: is_what_count_parameters_gives


@checks.of("predict_mixed_count", rule="whole_number")
def answers_with_a_whole_number(predict_mixed_count):
    if not is_callable(predict_mixed_count):
        fail(f"predict_mixed_count should be a function that returns your prediction; it is "
             f"{what_is(predict_mixed_count)}.", "wrong_type")
    value = predict_mixed_count()
    expect(type(value) is int and value >= 0,
           f"predict_mixed_count() returned {value!r} ({what_is(value)}); expected a whole number of parameters, "
           "as a Python int, such as 7.", "wrong_type")


# --- snapshot_parameters (repair) -------------------------------------------------
#
# Rules of snapshot_parameters -> checks:
#   names           a dict with an entry per parameter, named as named_parameters() names it
#                                                                    -> has_an_entry_for_every_parameter_by_name
#   values_kept     each entry holds the values at the time of the call, whatever happens
#                   to the model afterwards                          -> keeps_the_values_of_the_moment_it_was_taken
#   plain_values    the entries do not require grad                  -> holds_plain_values_outside_autograd
#   model_untouched the model is left as it was: values, and training -> leaves_the_model_as_it_was


def snapshot_subject(num_features: int, hidden: int):
    """A probe (and the judge's copy): a model to take snapshots of. Nested modules, a layer with buffers
    (batch norm: its running statistics are not parameters), and a frozen layer."""
    inner = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU())
    inner[0].requires_grad_(False)
    return nn.Sequential(nn.Linear(num_features, hidden), nn.BatchNorm1d(hidden), nn.Tanh(), inner,
                         nn.Linear(hidden, 1))


def snapshot_then_shift(snapshot_parameters, model):
    """A probe: ``snapshot_parameters(model)``, then every parameter of the model moved in place by +1 (as
    training would move it); the snapshot as it is afterwards."""
    snapshot = snapshot_parameters(model)
    with torch.no_grad():
        for p in model.parameters():
            p += 1.0
    return snapshot


def _parameters_now(model) -> dict:
    """The model's parameters as they are now, copied out of the learner's process."""
    return {name: p.detach() for name, p in model.named_parameters()}


def _snapshot(snapshot_parameters, model, taken=None) -> dict:
    snapshot = snapshot_parameters(model) if taken is None else taken
    if type(snapshot) not in (dict, OrderedDict):
        fail(f"snapshot_parameters returned {what_is(snapshot)}; expected a dict from each parameter's name to a "
             "tensor of its values.", "wrong_type")
    for name, value in snapshot.items():
        if not isinstance(value, torch.Tensor):
            fail(f"the snapshot's entry {name!r} is {what_is(value)}; expected a tensor of that parameter's values.",
                 "wrong_type")
    return snapshot


@checks.of("snapshot_parameters", rule="names")
def has_an_entry_for_every_parameter_by_name(snapshot_parameters, num_features=5, hidden=4, seed=0):
    probe(torch.random.manual_seed, seed)
    model = probe(snapshot_subject, num_features, hidden)
    names = list(_parameters_now(model))
    snapshot = _snapshot(snapshot_parameters, model)
    missing = [name for name in names if name not in snapshot]
    extra = [name for name in snapshot if name not in names]
    expect(not missing and not extra,
           f"the snapshot's keys are {sorted(snapshot) or 'none'}; the model's parameters, as named_parameters() "
           f"names them, are {names}." + (f" Missing: {missing}." if missing else "")
           + (f" Not parameters: {extra} (buffers such as batch norm's running statistics are in state_dict(), "
              "not among the parameters)." if extra else ""),
           "wrong_keys")


@checks.of("snapshot_parameters", rule="values_kept")
def keeps_the_values_of_the_moment_it_was_taken(snapshot_parameters, num_features=5, hidden=4, seed=0):
    probe(torch.random.manual_seed, seed)
    model = probe(snapshot_subject, num_features, hidden)
    before = _parameters_now(model)
    snapshot = _snapshot(snapshot_parameters, model, probe(snapshot_then_shift, snapshot_parameters, model))
    for name, value in before.items():
        if name not in snapshot:
            continue
        kept = snapshot[name].detach()
        expect(tuple(kept.shape) == tuple(value.shape),
               f"the snapshot's {name!r} has shape {shape_text(kept.shape)}; the parameter has shape "
               f"{shape_text(value.shape)}.", "wrong_values")
        if is_close(kept, value + 1.0):
            fail(f"after the model's parameters moved, the snapshot's {name!r} moved with them: it holds the "
                 "parameter's memory, not a copy of its values, so it always shows the model as it is now.",
                 "shares_memory", fix="store p.detach().clone() for each parameter p")
        expect(is_close(kept, value, atol=0, rtol=0),
               f"the snapshot's {name!r} is not what the parameter held when the snapshot was taken (largest gap "
               f"{biggest_gap(kept, value):.3g}).", "wrong_values")


@checks.of("snapshot_parameters", rule="plain_values")
def holds_plain_values_outside_autograd(snapshot_parameters, num_features=5, hidden=4, seed=0):
    probe(torch.random.manual_seed, seed)
    model = probe(snapshot_subject, num_features, hidden)
    snapshot = _snapshot(snapshot_parameters, model)
    tracked = [name for name, value in snapshot.items() if value.requires_grad]
    expect(not tracked,
           f"the snapshot's {tracked[0] if tracked else ''!r} requires grad: it is still part of autograd (a "
           "parameter, or a result recorded from one), so it keeps the graph around and can be trained by mistake.",
           "tracked_by_autograd", fix="detach before copying: p.detach().clone()")


@checks.of("snapshot_parameters", rule="model_untouched")
def leaves_the_model_as_it_was(snapshot_parameters, num_features=5, hidden=4, seed=0):
    probe(torch.random.manual_seed, seed)
    model = probe(snapshot_subject, num_features, hidden)
    before = {name: (p.detach(), p.requires_grad) for name, p in model.named_parameters()}
    _snapshot(snapshot_parameters, model)
    after = {name: (p.detach(), p.requires_grad) for name, p in model.named_parameters()}
    expect(list(after) == list(before), f"taking a snapshot changed the model's parameters: it had {list(before)}, "
           f"now {list(after)}.", "changed_the_model")
    for name, (value, trains) in before.items():
        now, trains_now = after[name]
        expect(is_close(now, value, atol=0, rtol=0), f"taking a snapshot changed the values of {name!r}.",
               "changed_the_model")
        expect(trains_now == trains, f"taking a snapshot turned requires_grad {'off' if trains else 'on'} for "
               f"{name!r}: the model no longer trains as it did.", "changed_the_model")


# --- challenge: CircleClassifier -------------------------------------------------
#
# Graded by outcome: the learner designs the module; the check trains it with the notebook's
# train_module (autograder.recipes: plain gradient descent on whatever parameters() yields) on points
# of a circle, in the learner's process, and measures here the accuracy on other points of it, whose
# labels never leave the judge. Rules -> checks:
#   probabilities  CircleClassifier() maps (N, 2) to probabilities (N, 1) in [0, 1]   -> maps_points_to_probabilities
#   budget         at most 50 parameters                                              -> has_at_most_50_parameters
#   target         95% on new points of the notebook's circle after train_module     -> reaches_95_percent_on_new_points_of_the_circle
#   other_circles  the same on circles the notebook never shows                       -> instructor: reaches_95_percent_on_hidden_circles

CIRCLE_TARGET = 0.95
CIRCLE_BUDGET = 50
CIRCLE = ((0.3, -0.2), 1.2)  # the notebook's circle: centre, radius


def _circle_probs(out, num_points: int) -> torch.Tensor:
    out = as_tensor(out, "model(X)")
    expect_shape(out, (num_points, 1), "model(X)", hint="One probability per point, as a column.")
    out = out.detach()
    expect(is_finite(out) and float(out.min()) >= 0 and float(out.max()) <= 1,
           f"model(X) holds values in [{float(out.min()):.3g}, {float(out.max()):.3g}]; expected probabilities in "
           "[0, 1]: train_module trains it with the binary cross-entropy of probabilities.", "not_probabilities")
    return out


def circle_accuracy(CircleClassifier, centre, radius, seed: int) -> float:
    """Train the learner's design with train_module on 1000 points of a circle; its accuracy on 1000 others."""
    model = build(CircleClassifier, what="CircleClassifier", seed=seed)
    X, y = circle_points(1000, centre, radius, seed)
    X_new, y_new = circle_points(1000, centre, radius, seed + 1)
    _circle_probs(model(X), len(X))
    probe(torch.set_num_threads, 1)  # as the notebook trains: tiny models train fastest on one thread
    loss = probe(train_module, model, X, y)
    expect(math.isfinite(loss), f"training made the loss {loss}: the steps blow up (inputs too large?).",
           "not_finite")
    probs = _circle_probs(model(X_new), len(X_new))
    return float(((probs > 0.5).float() == y_new).float().mean())


@checks.of("CircleClassifier", rule="probabilities")
def maps_points_to_probabilities(CircleClassifier, seed=0):
    model = build(CircleClassifier, what="CircleClassifier", seed=seed)
    X, _ = circle_points(16, *CIRCLE, seed)
    _circle_probs(model(X), len(X))


@checks.of("CircleClassifier", rule="budget")
def has_at_most_50_parameters(CircleClassifier, seed=0):
    model = build(CircleClassifier, what="CircleClassifier", seed=seed)
    found = parameter_total(probe(module_facts, model))
    expect(0 < found <= CIRCLE_BUDGET,
           f"CircleClassifier has {found} parameters; the budget is 1 to {CIRCLE_BUDGET}"
           + (" (none at all: train_module would have nothing to train)." if found == 0 else "."), "over_budget")


@checks.of("CircleClassifier", rule="target")
def reaches_95_percent_on_new_points_of_the_circle(CircleClassifier, seed=0):
    accuracy = circle_accuracy(CircleClassifier, *CIRCLE, seed)
    expect(accuracy >= CIRCLE_TARGET,
           f"after train_module on 1000 points of the notebook's circle, your model classifies {accuracy:.1%} of 1000 "
           f"new points correctly; the target is {CIRCLE_TARGET:.0%}. A straight boundary cannot follow a circle, "
           "and only what parameters() yields is trained.", "below_target")
