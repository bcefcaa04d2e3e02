"""Checks for 08_regularization: dropout by hand, batch norm, the train/eval switch, a prediction about what
eval() changes, a repair of a network that eval() does not reach, and the challenge of learning from noisy
labels.

The checks are the judge (``autograder.learner``): the learner's functions and classes run where the
learner's code runs, on inputs sent from here, and every expected value is computed here from what comes
back (outputs, state dicts, the modes of the layers). What must happen next to the learner's code is a probe
of this module: a seeded generator, a description of a model's layers, the input a layer received, a model
that records how it was called. The reference compositions (a network's output in eval mode, its average in
train mode, predict's classes on a real network) and the challenge's hidden digits live in
``autograder/checks/instructor/08_regularization.py``.

Each exercise's rules are the ids of its contract list in the notebook; every check names the rules it
enforces.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from autograder.checks._probes import backward_through, call_with_data_sealed, outputs_of
from autograder.checks._support import what_it_is as _what
from autograder.checks._support import biggest_gap, is_close, is_finite, shape_text
from autograder.learner import cpu_time, fetch, is_class, is_instance, is_remote, is_subclass, keep, probe, type_name
from autograder.registry import Checks
from autograder.results import expect, fail

checks = Checks("08_regularization")

# The learner's random state is seeded with torch.random.manual_seed, never torch.manual_seed: once an optimizer
# has stepped, torch.manual_seed is a wrapper of torch._dynamo's, which cannot be named in the learner's process.




def _tensor(value, what: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        fail(f"{what} should be a tensor; it is {_what(value)}.", "not_a_tensor")
    return value.detach()


# --- inverted_dropout -------------------------------------------------------------
#
# rule                   check
# drop_rate              zeroes_a_fraction_p_of_the_elements
# scales_survivors       scales_the_survivors_by_1_over_1_minus_p, preserves_the_mean
# identity_when_off      is_the_identity_when_not_training_or_p_is_0
# p_one_zeros            drops_everything_when_p_is_1
# validates_p            raises_ValueError_for_p_outside_0_1
# uses_generator         draws_its_mask_from_the_generator
# fresh_mask             draws_a_new_mask_on_every_call_without_a_generator
# never_modifies_x       leaves_x_as_it_was
# gradients_flow         lets_gradients_through_the_survivors


def generator_seeded(seed: int):
    """A probe: a torch.Generator seeded with ``seed``, where the learner's code runs."""
    return torch.Generator().manual_seed(seed)


def _positive_inputs(shape, seed: int) -> torch.Tensor:
    """Values in [0.5, 1.5): never zero, so a zero in the output can only come from the mask.

    The generator's seed is offset so that these values are never the very draws a mask made from a
    generator (or a global state) seeded with a small number would produce: mask and values must be independent.
    """
    return torch.rand(*shape, generator=torch.Generator().manual_seed(10_007 + seed)) + 0.5


def _drop(inverted_dropout, x, p, training, seed=None) -> torch.Tensor:
    """inverted_dropout(x, p, training[, generator seeded with ``seed``]), called where the learner's code runs."""
    try:
        if seed is None:
            out = inverted_dropout(x, p, training)
        else:
            out = inverted_dropout(x, p, training, generator=probe(generator_seeded, seed))
    except TypeError as exc:
        if "generator" in str(exc) and seed is not None:
            fail("inverted_dropout does not accept the `generator` keyword argument: its signature is "
                 "inverted_dropout(x, p, training, generator=None).", "wrong_signature")
        raise
    out = _tensor(out, "inverted_dropout(x, p, training)")
    expect(tuple(out.shape) == tuple(x.shape), f"inverted_dropout returned shape {shape_text(out.shape)} for an "
           f"input of shape {shape_text(x.shape)}: dropout keeps the shape of its input.", "wrong_shape")
    return out


@checks.of("inverted_dropout", rule="drop_rate")
def zeroes_a_fraction_p_of_the_elements(inverted_dropout, num_rows=400, num_cols=500, p=0.3, seed=0):
    x = _positive_inputs((num_rows, num_cols), seed)
    out = _drop(inverted_dropout, x, p, True, seed=seed + 1)
    dropped = float((out == 0).float().mean())
    if abs(dropped - (1 - p)) < 0.02 and abs(p - 0.5) > 0.05:
        fail(f"inverted_dropout zeroed {dropped:.1%} of the elements with p={p}: that is 1 - p, the share it should "
             "keep. p is the probability of dropping an element.", "keep_and_drop_swapped",
             fix="keep each element with probability 1 - p: torch.rand(x.shape) < 1 - p")
    expect(abs(dropped - p) < 0.02,
           f"inverted_dropout zeroed {dropped:.1%} of the elements with p={p}; expected about {p:.0%}.",
           "wrong_drop_rate")


@checks.of("inverted_dropout", rule="scales_survivors")
def scales_the_survivors_by_1_over_1_minus_p(inverted_dropout, num_rows=400, num_cols=500, p=0.3, seed=0):
    x = _positive_inputs((num_rows, num_cols), seed)
    out = _drop(inverted_dropout, x, p, True, seed=seed + 1)
    expect(is_finite(out), f"with p={p} the output holds nan or inf values.", "not_finite")
    kept = out != 0
    survivors, originals = out[kept], x[kept]
    if is_close(survivors, originals):
        fail(f"the surviving elements are not scaled, so the output's mean is {float(out.mean()):.3f} while the "
             f"input's is {float(x.mean()):.3f}: dropout shrinks every activation by (1 - p) during training only, "
             "and the next layer meets another scale at prediction time.", "missing_dropout_scale",
             fix="divide the survivors by (1 - p)")
    if is_close(survivors, originals * (1 - p)):
        fail("the survivors are multiplied by (1 - p); inverted dropout divides them by (1 - p), so that the "
             "expected value of each element stays what it was.", "wrong_scale")
    expect(is_close(survivors, originals / (1 - p)),
           f"the surviving elements should equal x / (1 - p); they differ by up to "
           f"{biggest_gap(survivors, originals / (1 - p)):.3g}.", "wrong_values")


@checks.of("inverted_dropout", rule="scales_survivors")
def preserves_the_mean(inverted_dropout, num_rows=400, num_cols=500, p=0.3, seed=0):
    x = _positive_inputs((num_rows, num_cols), seed)
    out = _drop(inverted_dropout, x, p, True, seed=seed + 2)
    ratio = float(out.mean()) / float(x.mean())
    expect(abs(ratio - 1) < 0.02,
           f"in training the output's mean is {ratio:.3f} times the input's; inverted dropout keeps the mean "
           "(each element survives with probability 1 - p and is then divided by 1 - p).", "missing_dropout_scale")


@checks.of("inverted_dropout", rule="identity_when_off")
def is_the_identity_when_not_training_or_p_is_0(inverted_dropout, p=0.3, seed=0):
    x = _positive_inputs((4, 5, 6), seed)
    out = _drop(inverted_dropout, x, p, False)
    if bool((out == 0).any()) or not is_close(out, x, atol=0, rtol=0):
        fail(f"with training=False inverted_dropout changed its input ({int((out == 0).sum())} of {x.numel()} "
             "elements zeroed): dropout was applied at prediction time too.", "dropout_in_eval",
             fix="return x unchanged when not training")
    out = _drop(inverted_dropout, x, 0.0, True)
    expect(is_close(out, x, atol=0, rtol=0),
           "with p=0 and training=True nothing should be dropped or scaled; the output differs from x.",
           "p_zero_not_identity")


@checks.of("inverted_dropout", rule="p_one_zeros")
def drops_everything_when_p_is_1(inverted_dropout, seed=0):
    x = _positive_inputs((6, 7), seed)
    out = _drop(inverted_dropout, x, 1.0, True)
    if not is_finite(out):
        fail("with p=1 the output holds nan: x * mask / (1 - p) divides by zero.", "p_one_not_zero",
             fix="return torch.zeros_like(x) when p == 1")
    expect(bool((out == 0).all()), "with p=1 every element should be dropped; some survived.", "p_one_not_zero")


@checks.of("inverted_dropout", rule="validates_p")
def raises_ValueError_for_p_outside_0_1(inverted_dropout, seed=0):
    x = _positive_inputs((3, 4), seed)
    for p in (-0.1, 1.5):
        for training in (True, False):
            try:
                result = inverted_dropout(x, p, training)
            except ValueError:
                continue
            except NotImplementedError:
                raise
            except Exception as exc:
                fail(f"inverted_dropout(x, p={p}, training={training}) raised "
                     f"{getattr(exc, 'learner_type', type(exc).__name__)}; expected a ValueError for a p outside "
                     "[0, 1].", "wrong_exception")
            fail(f"inverted_dropout(x, p={p}, training={training}) returned {_what(result)} instead of raising "
                 "ValueError: a bad p is a bug in both modes, so it is refused before `training` is looked at.",
                 "p_not_validated", fix="check 0 <= p <= 1 first, before anything else")


@checks.of("inverted_dropout", rule="uses_generator")
def draws_its_mask_from_the_generator(inverted_dropout, p=0.3, seed=0):
    x = _positive_inputs((50, 60), seed)
    probe(torch.random.manual_seed, seed + 100)
    first = _drop(inverted_dropout, x, p, True, seed=seed)
    probe(torch.random.manual_seed, seed + 200)
    again = _drop(inverted_dropout, x, p, True, seed=seed)
    expect(torch.equal(first == 0, again == 0),
           f"two calls with generators seeded alike ({seed}) dropped different elements: the generator is ignored "
           "and the mask comes from the global random state.", "generator_ignored",
           fix="pass it on: torch.rand(x.shape, generator=generator)")
    other = _drop(inverted_dropout, x, p, True, seed=seed + 1)
    expect(not torch.equal(first == 0, other == 0),
           f"generators seeded with {seed} and {seed + 1} dropped the same elements: the mask does not come from "
           "the generator it was given.", "generator_ignored")


@checks.of("inverted_dropout", rule="fresh_mask")
def draws_a_new_mask_on_every_call_without_a_generator(inverted_dropout, p=0.3, seed=0):
    x = _positive_inputs((50, 60), seed)
    probe(torch.random.manual_seed, seed)
    first = _drop(inverted_dropout, x, p, True)
    second = _drop(inverted_dropout, x, p, True)
    expect(not torch.equal(first == 0, second == 0),
           "two calls without a generator dropped exactly the same elements, so training would switch off the same "
           "units at every step: the mask comes from a generator seeded inside the function.",
           "same_mask_every_call", fix="with generator=None, draw from the global random state")


@checks.of("inverted_dropout", rule="never_modifies_x")
def leaves_x_as_it_was(inverted_dropout, p=0.3, seed=0):
    x = _positive_inputs((40, 50), seed)
    theirs = keep(x)  # the caller's x, where the learner's code runs
    inverted_dropout(theirs, p, True, generator=probe(generator_seeded, seed))
    after = fetch(theirs)
    expect(torch.equal(after, x),
           f"inverted_dropout changed its input x in place ({int((after != x).sum())} of {x.numel()} elements): the "
           "caller, and autograd, may still need the original values.", "modified_input",
           fix="build a new tensor (x * mask / (1 - p)) instead of writing zeros into x")


@checks.of("inverted_dropout", rule="gradients_flow")
def lets_gradients_through_the_survivors(inverted_dropout, p=0.3, seed=0):
    x = _positive_inputs((20, 30), seed)
    out, (grad,) = probe(backward_through, inverted_dropout, (x, p, True), wrt=(0,),
                         kwargs={"generator": probe(generator_seeded, seed)})
    out = _tensor(out, "inverted_dropout(x, p, training)") if isinstance(out, torch.Tensor) else out
    expect(isinstance(out, torch.Tensor) and grad is not None,
           "no gradient reached x through inverted_dropout: the graph was cut (detach, .data or torch.no_grad).",
           "detached")
    expected = (out != 0).float() / (1 - p)
    expect(is_close(grad, expected), "the gradient of the output with respect to x should be 1 / (1 - p) for "
           "survivors and 0 for dropped elements.", "wrong_gradient")


# --- predict, then run: eval_prediction -----------------------------------------------
#
# rule                 check
# pair_of_booleans     answers_with_a_pair_of_booleans
# matches_the_run      instructor: predicts_what_eval_leaves_alone


@checks.of("eval_prediction", rule="pair_of_booleans")
def answers_with_a_pair_of_booleans(eval_prediction):
    answer = eval_prediction()
    expect(type(answer) in (tuple, list) and len(answer) == 2 and all(type(a) is bool for a in answer),
           f"eval_prediction() returned {answer!r}; expected a pair of booleans, such as (False, True).",
           "not_a_pair_of_booleans")


# --- RegularizedMLP -----------------------------------------------------------------
#
# rule               check
# layers             has_the_layers_of_the_right_sizes, normalises_the_first_layer_before_the_relu,
#                    drops_the_hidden_units_at_rate_p_drop; instructor: equals_the_reference_in_eval_mode,
#                    averages_to_the_network_without_dropout
# stats_are_buffers  keeps_running_statistics_in_buffers_not_parameters
# raw_logits         outputs_raw_logits_of_shape_N_by_num_classes
# train_eval         switches_dropout_and_statistics_with_the_mode
# no_dead_weight     gives_every_parameter_a_gradient
#
# (The input `hidden_units` is the constructor's `hidden`.) The layers are found by a probe that describes
# them; their numbers come back in the model's state dict.

_KINDS = (("linear", nn.Linear), ("batchnorm", nn.BatchNorm1d), ("dropout", nn.Dropout), ("relu", nn.ReLU),
          ("softmax", nn.Softmax))


def layers_of(model) -> list[dict]:
    """A probe: every submodule of ``model`` in order, with its name, its kind among the layers this notebook
    uses, and the settings the checks read."""
    found = []
    for name, module in model.named_modules():
        kind = next((k for k, cls in _KINDS if isinstance(module, cls)), None)
        info = {"name": name, "kind": kind, "training": module.training}
        if kind == "linear":
            info.update(inputs=module.in_features, outputs=module.out_features, bias=module.bias is not None)
        elif kind == "batchnorm":
            info.update(features=module.num_features, eps=module.eps, momentum=module.momentum,
                        running=module.running_mean is not None, affine=module.weight is not None)
        elif kind == "dropout":
            info.update(p=module.p)
        found.append(info)
    return found


def input_of(model, name: str, x):
    """A probe: what the submodule ``name`` of ``model`` receives when ``model(x)`` runs (no graph, in the mode
    the model is in)."""
    seen = []
    module = model.get_submodule(name)
    handle = module.register_forward_pre_hook(lambda _, args: seen.append(args[0].detach().clone()))
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
    return seen[0] if seen else None


def projected_sum(model, x, weights):
    """``(model(x) * weights).sum()``: a number that depends on every logit (for backward_through)."""
    return (model(x) * weights).sum()


def _build(RegularizedMLP, num_features, hidden_units, num_classes, p_drop, seed):
    """The learner's RegularizedMLP, built where the learner's code runs (its random state seeded)."""
    if not is_class(RegularizedMLP):
        fail(f"`RegularizedMLP` should be a class (an nn.Module subclass); it is {_what(RegularizedMLP)}.",
             "not_a_class")
    if not is_subclass(RegularizedMLP, nn.Module):
        fail("`RegularizedMLP` should subclass nn.Module: `class RegularizedMLP(nn.Module):`.", "not_a_module")
    probe(torch.random.manual_seed, seed)
    try:
        return RegularizedMLP(num_features, hidden_units, num_classes, p_drop=p_drop)
    except AttributeError as exc:
        if "before Module.__init__() call" in str(exc):
            fail("`RegularizedMLP.__init__` assigns a layer before calling `super().__init__()`: nn.Module must set up "
                 "its registries first.", "missing_super_init", fix="make `super().__init__()` the first line")
        raise


def layers(model, num_features: int, hidden: int, num_classes: int):
    """The model's first Linear, its BatchNorm1d and its last Linear (descriptions), or a diagnosis."""
    found = probe(layers_of, model)
    linears = [m for m in found if m["kind"] == "linear"]
    norms = [m for m in found if m["kind"] == "batchnorm"]
    if not norms:
        fail("RegularizedMLP has no nn.BatchNorm1d layer; one belongs between the first Linear and the ReLU.",
             "missing_batchnorm")
    if len(linears) != 2 or len(norms) != 1:
        fail(f"RegularizedMLP has {len(linears)} Linear and {len(norms)} BatchNorm1d layers; expected exactly two "
             "Linear layers and one BatchNorm1d.", "wrong_layers")
    first = next((m for m in linears if m["inputs"] == num_features), None)
    last = next((m for m in linears if m is not first), None)
    sizes = ", ".join(f"Linear({m['inputs']}, {m['outputs']})" for m in linears)
    expect(first is not None and (first["outputs"], last["inputs"], last["outputs"]) == (hidden, hidden, num_classes),
           f"RegularizedMLP({num_features}, {hidden}, {num_classes}) has {sizes}; expected Linear({num_features}, "
           f"{hidden}) and Linear({hidden}, {num_classes}).", "wrong_layer_size")
    norm = norms[0]
    expect(norm["features"] == hidden,
           f"the BatchNorm1d normalises {norm['features']} features; it sits after Linear({num_features}, {hidden}), "
           f"so it needs BatchNorm1d({hidden}).", "wrong_layer_size")
    return first, norm, last


def warm_up(model, num_features: int, seed: int) -> None:
    """A few training batches, so that the running statistics differ from their initial 0 and 1 (a probe too)."""
    gen = torch.Generator().manual_seed(seed + 7)
    model.train()
    with torch.no_grad():
        for _ in range(5):
            model(torch.randn(32, num_features, generator=gen) * 2 + 1)


def _inputs(num_samples: int, num_features: int, seed: int) -> torch.Tensor:
    return torch.randn(num_samples, num_features, generator=torch.Generator().manual_seed(seed))


@checks.of("RegularizedMLP", rule="layers")
def has_the_layers_of_the_right_sizes(RegularizedMLP, num_features=12, hidden_units=8, num_classes=3, p_drop=0.2,
                                      seed=0):
    model = _build(RegularizedMLP, num_features, hidden_units, num_classes, p_drop, seed)
    layers(model, num_features, hidden_units, num_classes)


@checks.of("RegularizedMLP", rule="stats_are_buffers")
def keeps_running_statistics_in_buffers_not_parameters(RegularizedMLP, num_features=12, hidden_units=8,
                                                       num_classes=3, p_drop=0.2, seed=0):
    model = _build(RegularizedMLP, num_features, hidden_units, num_classes, p_drop, seed)
    _, norm, _ = layers(model, num_features, hidden_units, num_classes)
    if not norm["running"]:
        fail("the BatchNorm1d keeps no running statistics (track_running_stats=False), so in eval mode it still "
             "normalises with the statistics of the batch it is given: a prediction would depend on the other "
             "samples in its batch.", "no_running_stats", fix="use nn.BatchNorm1d(hidden) with its defaults")
    buffers = {name.rsplit(".", 1)[-1] for name, _ in model.named_buffers()}
    parameters = {name.rsplit(".", 1)[-1] for name, _ in model.named_parameters()}
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        expect(name in buffers and name not in parameters,
               f"`{name}` should be a buffer of the model and not a parameter: no optimizer may train it, and a "
               "checkpoint must hold it.", "not_a_buffer")
    state = model.state_dict()
    expect(any(key.endswith("running_mean") for key in state) and any(key.endswith("running_var") for key in state),
           "the model's state_dict lacks the running statistics, so a checkpoint would lose them.", "not_a_buffer")


@checks.of("RegularizedMLP", rule="raw_logits")
def outputs_raw_logits_of_shape_N_by_num_classes(RegularizedMLP, num_samples=16, num_features=12, hidden_units=8,
                                                 num_classes=3, p_drop=0.2, seed=0):
    model = _build(RegularizedMLP, num_features, hidden_units, num_classes, p_drop, seed)
    probe(warm_up, model, num_features, seed)
    model.eval()
    out = _tensor(probe(outputs_of, model, _inputs(num_samples, num_features, seed)), "model(x)")
    expect(tuple(out.shape) == (num_samples, num_classes), f"model(x) has shape {shape_text(out.shape)}; expected "
           f"({num_samples}, {num_classes}), one logit per class.", "wrong_shape")
    if bool((out >= 0).all()) and is_close(out.sum(dim=1), torch.ones(num_samples), atol=1e-4):
        fail("each row of the output sums to 1: the model ends with a softmax, and nn.CrossEntropyLoss applies "
             "log-softmax itself, on top of it.", "softmax_in_model", fix="return the last Linear's output as it is")


def _same_masks(model, x, seed: int) -> torch.Tensor:
    """model(x) in train mode with the learner's random state seeded, so that any dropout draws the same masks."""
    probe(torch.random.manual_seed, seed)
    return _tensor(probe(outputs_of, model, x), "model(x)")


@checks.of("RegularizedMLP", rule="layers")
def normalises_the_first_layer_before_the_relu(RegularizedMLP, num_samples=16, num_features=12, hidden_units=8,
                                               num_classes=3, p_drop=0.2, seed=0):
    """With batch norm right after the first Linear, scaling and shifting every input feature changes nothing
    in train mode: the Linear turns it into a scale and shift of each hidden unit, which batch norm removes."""
    model = _build(RegularizedMLP, num_features, hidden_units, num_classes, p_drop, seed)
    first, norm, _ = layers(model, num_features, hidden_units, num_classes)
    model.train()
    gen = torch.Generator().manual_seed(seed + 11)
    # Enough samples that no hidden unit's batch variance comes near batch norm's eps, which would blur the test.
    x = torch.randn(max(num_samples, 32), num_features, generator=gen)
    shifted = 3.0 * x + torch.randn(num_features, generator=gen) * 4
    state = model.state_dict()
    out = _same_masks(model, x, seed)
    model.load_state_dict(state)  # the running statistics as they were, for the second pass
    out_shifted = _same_masks(model, shifted, seed)
    expect(is_close(out, out_shifted, atol=1e-3, rtol=1e-3),
           f"in train mode, scaling and shifting the inputs changed the output by up to "
           f"{biggest_gap(out, out_shifted):.3g}; with BatchNorm1d right after the first Linear it would not change "
           "at all (batch norm removes any scale and shift of each hidden unit). Something sits between them, or "
           "before the first Linear.", "wrong_order")
    # The batch norm must see exactly the first Linear's outputs: its running mean then moves by momentum times
    # their batch mean (as the notebook shows).
    if norm["running"]:
        model.load_state_dict(state)
        probe(outputs_of, model, x)
        moved = model.state_dict()[f"{norm['name']}.running_mean"]
        start = state[f"{norm['name']}.running_mean"]
        weight, bias = state[f"{first['name']}.weight"], state.get(f"{first['name']}.bias")
        expected = (1 - norm["momentum"]) * start + norm["momentum"] * F.linear(x, weight, bias).mean(dim=0)
        expect(is_close(moved, expected, atol=1e-5),
               "in train mode the BatchNorm1d does not see the first Linear layer's outputs as they are (its running "
               "mean moved by another amount than momentum times their batch mean): something, such as a dropout or "
               "the ReLU, sits between them.", "wrong_order")
    # And the dropout acts on hidden units, never on the logits.
    probe(torch.random.manual_seed, seed)
    outs = torch.stack([_tensor(probe(outputs_of, model, x), "model(x)") for _ in range(10)])
    zeros = float((outs == 0).float().mean())
    expect(zeros < p_drop / 2,
           f"in train mode {zeros:.0%} of the logits are exactly zero: the dropout acts on the output, where it "
           "switches off the answer itself.", "wrong_order")


@checks.of("RegularizedMLP", rule="layers")
def drops_the_hidden_units_at_rate_p_drop(RegularizedMLP, num_features=12, hidden_units=8, num_classes=3, p_drop=0.2,
                                          seed=0):
    """What the last Linear receives in train mode: the ReLU's output with a share p_drop of the units dropped and
    the survivors scaled by 1 / (1 - p_drop), against the same model built with p_drop=0."""
    model = _build(RegularizedMLP, num_features, hidden_units, num_classes, p_drop, seed)
    _, _, last = layers(model, num_features, hidden_units, num_classes)
    plain = _build(RegularizedMLP, num_features, hidden_units, num_classes, 0.0, seed)
    plain.load_state_dict(model.state_dict())
    model.train()
    plain.train()
    x = torch.randn(512, num_features, generator=torch.Generator().manual_seed(seed + 13))
    probe(torch.random.manual_seed, seed)
    received = _tensor(probe(input_of, model, last["name"], x), "the last Linear's input")
    reference = _tensor(probe(input_of, plain, last["name"], x), "the last Linear's input")
    active = reference != 0
    dropped = float(((received == 0) & active).float().sum() / active.float().sum().clamp(min=1))
    if dropped < 0.01 < p_drop:
        fail(f"in train mode no hidden unit is dropped: RegularizedMLP(..., p_drop={p_drop}) has no active dropout "
             "between the ReLU and the last Linear.", "missing_dropout", fix="add nn.Dropout(p_drop) after the ReLU")
    if abs(dropped - p_drop) > 0.05:
        fixed = " Is the rate fixed at 0.5?" if abs(dropped - 0.5) < 0.05 else ""
        fail(f"in train mode {dropped:.0%} of the active hidden units are dropped; RegularizedMLP(..., "
             f"p_drop={p_drop}) should drop about {p_drop:.0%} of them.{fixed}", "p_drop_ignored",
             fix="pass p_drop to the dropout")
    survivors = received != 0
    expect(is_close(received[survivors], reference[survivors] / (1 - p_drop), atol=1e-4, rtol=1e-4),
           "in train mode the hidden units that survive the dropout are not the ReLU's outputs scaled by "
           "1 / (1 - p_drop), as nn.Dropout scales them.", "wrong_scale")


@checks.of("RegularizedMLP", rule="train_eval")
def switches_dropout_and_statistics_with_the_mode(RegularizedMLP, num_samples=16, num_features=12, hidden_units=8,
                                                  num_classes=3, p_drop=0.2, seed=0):
    model = _build(RegularizedMLP, num_features, hidden_units, num_classes, p_drop, seed)
    _, norm, _ = layers(model, num_features, hidden_units, num_classes)
    probe(warm_up, model, num_features, seed)
    model.eval()
    x = _inputs(num_samples, num_features, seed)
    buffers = model.state_dict()
    out, again = (_tensor(probe(outputs_of, model, x), "model(x)") for _ in range(2))
    expect(torch.equal(out, again),
           "in eval mode two calls on the same input gave different outputs: dropout is still active at prediction "
           "time.", "dropout_in_eval", fix="use nn.Dropout (which model.eval() switches off), or pass "
           "training=self.training to F.dropout")
    expect(_same_tensors(model.state_dict(), buffers), "a forward pass in eval mode changed the running statistics: "
           "the batch norm went on learning from what it was only asked to predict.", "stats_updated_in_eval")
    single = _tensor(probe(outputs_of, model, x[:1]), "model(x[:1])")
    expect(is_close(single, out[:1], atol=1e-5),
           "in eval mode a sample's output depends on the other samples in its batch.", "batch_dependent")
    if norm["running"]:
        shifted = dict(buffers)
        shifted[f"{norm['name']}.running_mean"] = buffers[f"{norm['name']}.running_mean"] + 1.0
        model.load_state_dict(shifted)
        moved = _tensor(probe(outputs_of, model, x), "model(x)")
        expect(not is_close(moved, out, atol=1e-6),
               "in eval mode the output ignores the batch norm's running statistics: at prediction time the model "
               "must normalise with them.", "running_stats_ignored")
    model.train()
    probe(torch.random.manual_seed, seed)
    outs = torch.stack([_tensor(probe(outputs_of, model, x), "model(x)") for _ in range(20)])
    expect(not bool((outs == outs[0]).all()),
           "in train mode the model gives the same output every time: its dropout is not active while training.",
           "missing_dropout")


def _same_tensors(a: dict, b: dict) -> bool:
    return list(a) == list(b) and all(torch.equal(x, y) for x, y in zip(a.values(), b.values()))


@checks.of("RegularizedMLP", rule="no_dead_weight")
def gives_every_parameter_a_gradient(RegularizedMLP, num_samples=16, num_features=12, hidden_units=8, num_classes=3,
                                     p_drop=0.2, seed=0):
    model = _build(RegularizedMLP, num_features, hidden_units, num_classes, p_drop, seed)
    model.train()
    gen = torch.Generator().manual_seed(seed + 17)
    x = torch.randn(max(num_samples, 8), num_features, generator=gen)
    weights = torch.randn(max(num_samples, 8), num_classes, generator=gen)
    model.zero_grad()
    probe(torch.random.manual_seed, seed)
    probe(backward_through, projected_sum, (model, x, weights), wrt=())
    grads = {name: (p.grad if p.grad is not None else torch.zeros_like(p)) for name, p in model.named_parameters()}
    scale = max(float(g.abs().max()) for g in grads.values()) if grads else 0.0
    dead = [name for name, g in grads.items() if float(g.abs().max()) <= 1e-5 * scale]
    expect(not dead, f"{', '.join(dead)} of RegularizedMLP gets no gradient in training, so training never changes "
           "it: it only takes up room (and an optimizer such as Adam drifts it about on rounding noise). Look at what "
           "batch norm does to a number added to every sample of a hidden unit.",
           "dead_weight", fix="build the first Linear with bias=False: batch norm's own bias takes its place")


# --- predict ------------------------------------------------------------------------
#
# rule                 check
# eval_mode            predicts_in_eval_mode
# no_graph             builds_no_graph
# class_indices        returns_the_class_indices; instructor: agrees_with_a_real_network
# restores_every_mode  leaves_every_layer_in_the_mode_it_found
# restores_on_error    restores_the_modes_even_when_the_forward_pass_raises
#
# The public checks use a model whose eval-mode predictions are known by construction (built where the
# learner's code runs): the first input feature holds the class it predicts; in train mode it predicts the next
# class. It records how it was called, and raises on request.


class _Probe(nn.Module):
    """Predicts the class written in the first input feature (eval mode) or the next one (train mode); it has
    batch norm and dropout inside, remembers how it was called, and raises when ``fail`` is set."""

    def __init__(self, num_features: int, num_classes: int):
        super().__init__()
        self.num_classes = num_classes
        self.hidden = nn.Linear(num_features, 16)
        self.norm = nn.BatchNorm1d(16)
        self.drop = nn.Dropout(0.5)
        self.out = nn.Linear(16, num_classes)
        self.calls: list[tuple[bool, bool]] = []
        self.fail = False

    def forward(self, x):
        self.calls.append((self.training, torch.is_grad_enabled()))
        if self.fail:
            raise RuntimeError("the forward pass failed (on purpose: the check tests what predict does then)")
        classes = x[:, 0].round().long() % self.num_classes
        if self.training:
            classes = (classes + 1) % self.num_classes
        noise = self.out(self.drop(F.relu(self.norm(self.hidden(x))))) if len(x) > 1 or not self.training else 0
        return F.one_hot(classes, self.num_classes).to(x.dtype) * 50 + 0.01 * torch.tanh(torch.as_tensor(noise))


def probe_model(num_features: int, num_classes: int, seed: int) -> _Probe:
    """A probe: a warmed-up _Probe, built where the learner's code runs."""
    generator = torch.Generator().manual_seed(seed)
    model = _Probe(num_features, num_classes)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)
    warm_up(model, num_features, seed)
    model.calls.clear()
    return model


def modes_of(model) -> list[bool]:
    """A probe: the `training` flag of every module of ``model``, in order."""
    return [module.training for module in model.modules()]


def _classes_of(num_samples: int, num_features: int, num_classes: int, seed: int):
    """Inputs and the classes the probe model predicts for them in eval mode."""
    gen = torch.Generator().manual_seed(seed + 3)
    classes = torch.randint(0, num_classes, (num_samples,), generator=gen)
    X = torch.randn(num_samples, num_features, generator=gen)
    X[:, 0] = classes.float()
    return X, classes


def _class_indices(predict, model, X, num_classes: int) -> torch.Tensor:
    num_samples = len(X)
    out = _tensor(predict(model, X), "predict(model, X)")
    if tuple(out.shape) == (num_samples, num_classes):
        fail(f"predict returned {_what(out)}: one score per class (logits or probabilities), not the predicted class.",
             "returns_scores", fix="return the index of the largest score of each row: .argmax(dim=1)")
    if tuple(out.shape) == (num_samples, 1):
        fail(f"predict returned shape {shape_text(out.shape)}; expected ({num_samples},), one class per row.",
             "wrong_shape", fix="drop keepdim=True, or flatten the result")
    expect(tuple(out.shape) == (num_samples,), f"predict(model, X) has shape {shape_text(out.shape)}; expected "
           f"({num_samples},).", "wrong_shape")
    if out.is_floating_point():
        fail(f"predict returned {_what(out)}: floating-point values, not class indices (the largest scores "
             "themselves, perhaps, rather than their positions).", "returns_scores",
             fix="return .argmax(dim=1), the positions")
    expect(out.dtype == torch.long, f"predict returned {_what(out)}; expected class indices of dtype long.",
           "wrong_dtype")
    return out


@checks.of("predict", rule="eval_mode")
def predicts_in_eval_mode(predict, num_samples=24, num_features=6, num_classes=4, seed=0):
    model = probe(probe_model, num_features, num_classes, seed)
    X, _ = _classes_of(num_samples, num_features, num_classes, seed)
    model.train()
    predict(model, X)
    calls = model.calls
    expect(bool(calls), "predict never called the model.", "model_not_called")
    expect(not any(training for training, _ in calls),
           "predict ran the model in train mode: dropout was active and batch norm used (and updated) the statistics "
           "of this batch, so the answer changes from call to call and with the company a sample keeps.",
           "missing_eval", fix="call model.eval() before the forward pass")


@checks.of("predict", rule="no_graph")
def builds_no_graph(predict, num_samples=24, num_features=6, num_classes=4, seed=0):
    model = probe(probe_model, num_features, num_classes, seed)
    X, _ = _classes_of(num_samples, num_features, num_classes, seed)
    model.eval()
    predict(model, X)
    expect(not any(grad for _, grad in model.calls),
           "predict ran the model with gradient tracking on, so autograd recorded a graph it never uses (a "
           ".detach() afterwards comes too late: the graph was already built).", "missing_no_grad",
           fix="run the forward pass inside `with torch.no_grad():`")


@checks.of("predict", rule="class_indices")
def returns_the_class_indices(predict, num_samples=24, num_features=6, num_classes=4, seed=0):
    model = probe(probe_model, num_features, num_classes, seed)
    X, expected = _classes_of(num_samples, num_features, num_classes, seed)
    model.train()
    out = _class_indices(predict, model, X, num_classes)
    expect(torch.equal(out, expected),
           f"predict's classes differ from the arg-max of the model's eval-mode logits for "
           f"{int((out != expected).sum())} of {num_samples} samples.", "wrong_classes")


_MODES = (("in train mode", None), ("in eval mode", None), ("in train mode with its batch norm frozen", "norm"))


def _set_mode(model, start: str, frozen) -> list[bool]:
    model.train(start != "in eval mode")
    if frozen:
        getattr(model, frozen).eval()
    return probe(modes_of, model)


_LAYER_NAMES = ("the model itself", "its Linear", "its BatchNorm1d", "its Dropout", "its last Linear")


def _mode_change(before: list[bool], after: list[bool]) -> str:
    """Which modules of the probe model changed mode, and how ("its BatchNorm1d (eval -> train)")."""
    mode = {True: "train", False: "eval"}
    return ", ".join(f"{_LAYER_NAMES[i] if i < len(_LAYER_NAMES) else f'module {i}'} ({mode[a]} -> {mode[b]})"
                     for i, (a, b) in enumerate(zip(before, after)) if a != b)


@checks.of("predict", rule="restores_every_mode")
def leaves_every_layer_in_the_mode_it_found(predict, num_samples=24, num_features=6, num_classes=4, seed=0):
    X, _ = _classes_of(num_samples, num_features, num_classes, seed)
    for start, frozen in _MODES:
        model = probe(probe_model, num_features, num_classes, seed)
        before = _set_mode(model, start, frozen)
        predict(model, X)
        after = probe(modes_of, model)
        if after == before:
            continue
        change = _mode_change(before, after)
        if start == "in train mode" and not after[0]:
            fail("predict left a model that was training in eval mode: the rest of training would run without "
                 "dropout and with frozen batch statistics, and nothing would warn you.", "mode_not_restored",
                 fix="remember the mode before switching, and put it back at the end")
        if start == "in train mode" and after[0]:
            fail("after predict the model says it is training, but its layers are still in eval mode: setting the "
                 "attribute model.training changes the outer module only.", "mode_not_restored",
                 fix="model.train(mode) reaches every layer")
        fail(f"predict, given a model {start}, left it otherwise: {change}. Every layer must end in the mode it was "
             "in, whatever mode that was.", "mode_not_restored",
             fix="remember each module's mode ({module: module.training for module in model.modules()}) and set each "
                 "back")


@checks.of("predict", rule="restores_on_error")
def restores_the_modes_even_when_the_forward_pass_raises(predict, num_samples=24, num_features=6, num_classes=4,
                                                         seed=0):
    X, _ = _classes_of(num_samples, num_features, num_classes, seed)
    for start, frozen in _MODES[::2]:
        model = probe(probe_model, num_features, num_classes, seed)
        before = _set_mode(model, start, frozen)
        model.fail = True
        try:
            predict(model, X)
        except Exception:
            pass
        after = probe(modes_of, model)
        expect(after == before,
               f"the model's forward pass raised inside predict, given a model {start}, and predict left it "
               f"otherwise: {_mode_change(before, after)}. A caller that catches the error goes on with a model in "
               "the wrong mode.", "mode_not_restored_on_error",
               fix="restore the modes in the `finally:` of a `try:` around the forward pass")


class _Network(nn.Module):
    """A real network with batch norm and dropout (built here and, in the same state, where the learner's code
    runs)."""

    def __init__(self, num_features: int, num_classes: int):
        super().__init__()
        self.hidden = nn.Linear(num_features, 16)
        self.norm = nn.BatchNorm1d(16)
        self.drop = nn.Dropout(0.5)
        self.out = nn.Linear(16, num_classes)

    def forward(self, x):
        return self.out(self.drop(F.relu(self.norm(self.hidden(x)))))


# --- repair: DeepDropoutMLP ----------------------------------------------------------------
#
# rule                 check
# same_network         keeps_its_constructor_and_its_layers
# no_dropout_in_eval   drops_nothing_in_eval_mode
# dropout_in_train     drops_hidden_units_at_rate_p_drop_in_train_mode
#
# The layers' numbers are set from here (through the state dict), so that the network without dropout is
# known: in eval mode the output must be exactly that; in train mode, with every layer after the first an
# identity, the output is the first layer's activations with the dropout masks of every hidden layer applied.


def _sizes(num_features: int, width: int, hidden_layers: int, num_outputs: int) -> list[int]:
    return [num_features] + [width] * hidden_layers + [num_outputs]


def _deep(DeepDropoutMLP, sizes, p_drop):
    if not is_class(DeepDropoutMLP) or not is_subclass(DeepDropoutMLP, nn.Module):
        fail(f"`DeepDropoutMLP` should be an nn.Module subclass; it is {_what(DeepDropoutMLP)}.", "not_a_module")
    return DeepDropoutMLP(list(sizes), p_drop=p_drop)


def _deep_state(sizes, seed: int, identity_after_first: bool = False) -> dict:
    gen = torch.Generator().manual_seed(seed + 31)
    state = {}
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        if identity_after_first and i > 0:
            state[f"layers.{i}.weight"], state[f"layers.{i}.bias"] = torch.eye(b, a), torch.zeros(b)
        else:
            state[f"layers.{i}.weight"] = torch.randn(b, a, generator=gen) * 0.4
            state[f"layers.{i}.bias"] = torch.randn(b, generator=gen) * 0.1 + (3.0 if identity_after_first else 0.0)
    return state


@checks.of("DeepDropoutMLP", rule="same_network")
def keeps_its_constructor_and_its_layers(DeepDropoutMLP, num_features=6, width=16, hidden_layers=2, num_classes=3,
                                         p_drop=0.25, seed=0):
    sizes = _sizes(num_features, width, hidden_layers, num_classes)
    model = _deep(DeepDropoutMLP, sizes, p_drop)
    found = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
    expected = {name: tuple(tensor.shape) for name, tensor in _deep_state(sizes, seed).items()}
    expect(found == expected,
           f"DeepDropoutMLP({sizes}) holds {', '.join(f'{k} {v}' for k, v in found.items()) or 'nothing'}; the given "
           f"network holds {', '.join(f'{k} {v}' for k, v in expected.items())}. A repair keeps the network as it "
           "was (its `layers`, their sizes and their order) and changes only what is wrong.", "network_changed")


@checks.of("DeepDropoutMLP", rule="no_dropout_in_eval")
def drops_nothing_in_eval_mode(DeepDropoutMLP, num_features=6, width=16, hidden_layers=2, num_classes=3, p_drop=0.25,
                               seed=0):
    sizes = _sizes(num_features, width, hidden_layers, num_classes)
    model = _deep(DeepDropoutMLP, sizes, p_drop)
    state = _deep_state(sizes, seed)
    model.load_state_dict(state)
    model.eval()
    x = torch.randn(64, num_features, generator=torch.Generator().manual_seed(seed + 5))
    out, again = (_tensor(probe(outputs_of, model, x), "model(x)") for _ in range(2))
    expect(torch.equal(out, again),
           "after model.eval(), two calls on the same input gave different outputs: some dropout is still active at "
           "prediction time. model.eval() switches off the dropout layers it can see, that is, those registered as "
           "submodules of the model.", "dropout_in_eval",
           fix="hold the dropout layers in an nn.ModuleList (or use F.dropout with training=self.training)")
    expected = x  # the network without any dropout: Linear and ReLU in turn, the last Linear alone
    last = len(sizes) - 2
    for layer in range(last + 1):
        expected = F.linear(expected, state[f"layers.{layer}.weight"], state[f"layers.{layer}.bias"])
        expected = F.relu(expected) if layer < last else expected
    expect(is_close(out, expected, atol=1e-5),
           f"in eval mode the output differs by up to {biggest_gap(out, expected):.3g} from the network without "
           "dropout: at prediction time every unit takes part, unscaled.", "wrong_eval_output")


@checks.of("DeepDropoutMLP", rule="dropout_in_train")
def drops_hidden_units_at_rate_p_drop_in_train_mode(DeepDropoutMLP, num_features=6, width=16, hidden_layers=2,
                                                    num_classes=3, p_drop=0.25, seed=0):
    sizes = _sizes(num_features, width, hidden_layers, width)  # identity layers after the first: outputs = units
    model = _deep(DeepDropoutMLP, sizes, p_drop)
    state = _deep_state(sizes, seed, identity_after_first=True)
    model.load_state_dict(state)
    model.train()
    x = torch.randn(400, num_features, generator=torch.Generator().manual_seed(seed + 6))
    units = F.relu(F.linear(x, state["layers.0.weight"], state["layers.0.bias"]))
    probe(torch.random.manual_seed, seed)
    out = _tensor(probe(outputs_of, model, x), "model(x)")
    active = units > 0
    dropped = float(((out == 0) & active).float().sum() / active.float().sum())
    expected = 1 - (1 - p_drop) ** hidden_layers
    if dropped < 0.01:
        fail("in train mode nothing is dropped: the network trains without dropout.", "missing_dropout",
             fix="keep a dropout after every hidden layer, registered so that train() and eval() reach it")
    expect(abs(dropped - expected) < 0.04,
           f"in train mode {dropped:.0%} of the units reach the output zeroed; with a dropout of p_drop={p_drop} after "
           f"each of the {hidden_layers} hidden layers, about {expected:.0%} would (1 - (1 - p)^{hidden_layers}).",
           "wrong_rate")
    survivors = out != 0
    scale = (1 - p_drop) ** hidden_layers
    expect(is_close(out[survivors], units[survivors] / scale, atol=1e-4, rtol=1e-4),
           "in train mode the units that survive are not scaled by 1 / (1 - p_drop) at each dropout, as nn.Dropout "
           "scales them.", "wrong_scale")


# --- challenge: train_despite_noise -------------------------------------------------------
#
# rule             check (one training of the learner's design serves them all)
# logits           reaches_the_target_despite_noisy_labels
# accuracy         reaches_the_target_despite_noisy_labels; instructor: ..._on_the_graders_digits
# cpu_budget       reaches_the_target_despite_noisy_labels
# given_data_only  reaches_the_target_despite_noisy_labels (the data sets cannot be loaded meanwhile);
#                  instructor: other digits, mirrored, other sizes, the classes renamed

NOISY_TRAINING = 300
NOISE_RATE = 0.3
NOISY_ACCURACY = 0.83
NOISY_CPU_SECONDS = 10.0


def noisy_split(seed: int, training: int = NOISY_TRAINING):
    """(X, noisy labels, held-out X, their clean labels): the digits split at random, a share NOISE_RATE of the
    training labels redrawn at random, all seeded (seed 0 draws what the notebook shows)."""
    from autograder.data import load_digits

    X, y = load_digits()
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(y), generator=gen)
    train, held_out = order[:training], order[training:]
    labels = y[train].clone()
    redrawn = torch.rand(training, generator=gen) < NOISE_RATE
    labels[redrawn] = torch.randint(0, 10, (int(redrawn.sum()),), generator=gen)
    return X[train], labels, X[held_out], y[held_out]


def noisy_outcome(train_despite_noise, X, labels, held_X, held_y, where: str) -> None:
    """Train the learner's design on (X, labels) where its code runs, on one core, with the data sets sealed, and
    measure it in eval mode on (held_X, held_y)."""
    probe(torch.set_num_threads, 1)
    started = cpu_time()
    model = probe(call_with_data_sealed, "train_despite_noise", train_despite_noise, X, labels)
    seconds = cpu_time() - started
    if not is_instance(model, nn.Module):
        fail(f"train_despite_noise should return the trained model, an nn.Module; it returned {_what(model)}.",
             "wrong_return")
    model.eval()
    logits = probe(outputs_of, model, held_X)
    if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (len(held_X), 10):
        fail(f"your model should return logits of shape ({len(held_X)}, 10); it returned {_what(logits)}.",
             "wrong_shape")
    accuracy = float((logits.argmax(dim=1) == held_y).float().mean())
    expect(accuracy >= NOISY_ACCURACY,
           f"in eval mode your model classifies {accuracy:.1%} of {len(held_y)} clean held-out digits ({where}) "
           f"correctly; the target is {NOISY_ACCURACY:.0%}.", "below_target")
    expect(seconds <= NOISY_CPU_SECONDS,
           f"training used {seconds:.1f} s of CPU time on one core; the budget is {NOISY_CPU_SECONDS:g} s.",
           "over_time_budget")


@checks.of("train_despite_noise", rule=("logits", "accuracy", "cpu_budget", "given_data_only"))
def reaches_the_target_despite_noisy_labels(train_despite_noise, seed=0):
    noisy_outcome(train_despite_noise, *noisy_split(seed), f"the split seeded with {seed}")
