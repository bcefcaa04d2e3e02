"""Checks for 08_regularization: dropout by hand, batch norm, the train/eval switch, and the challenge of
learning from noisy labels.

Public checks test properties. Comparisons with a reference composition (the network's output in eval
mode, its average in train mode, predict's classes on a real network) and the challenge's hidden split
live in ``autograder/checks/instructor/08_regularization.py``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from autograder.checks._support import (
    as_tensor,
    biggest_gap,
    data_sealed,
    describe,
    expect_dtype,
    expect_shape,
    instantiate,
    is_close,
    is_finite,
    one_cpu_core,
    parameter_count,
    shape_text,
)
from autograder.registry import Checks
from autograder.results import expect, fail

checks = Checks("08_regularization")


# --- inverted_dropout -------------------------------------------------------------
#
# clause (text and contract)                                  -> check
# zeroes each element with probability p                      -> zeroes_a_fraction_p_and_scales_the_survivors
# survivors scaled by 1 / (1 - p)                             -> zeroes_a_fraction_p_and_scales_the_survivors
# the mean is kept (expected value unchanged)                 -> preserves_the_mean
# identity when not training, or when p == 0                  -> is_the_identity_when_not_training_or_p_is_0
# all zeros when p == 1 (no nan)                              -> drops_everything_when_p_is_1
# ValueError for p outside [0, 1], in training or not         -> raises_ValueError_for_p_outside_0_1
# the mask comes from `generator` (same seed, same mask)      -> draws_its_mask_from_the_generator
# without a generator, a fresh mask on every call             -> draws_a_new_mask_on_every_call_without_a_generator
# x itself is never modified; same shape out                  -> every check (_drop)
# gradients flow through the survivors                        -> lets_gradients_through_the_survivors
#   (hidden: other shapes, p and seeds)


def _positive_inputs(shape, seed: int) -> torch.Tensor:
    """Values in [0.5, 1.5): never zero, so a zero in the output can only come from the mask.

    The generator's seed is offset so that these values are never the very draws a mask made from a
    generator (or a global state) seeded with a small number would produce: mask and values must be independent.
    """
    return torch.rand(*shape, generator=torch.Generator().manual_seed(10_007 + seed)) + 0.5


def _drop(inverted_dropout, x, p, training, **kwargs) -> torch.Tensor:
    before = x.detach().clone()
    try:
        out = inverted_dropout(x, p, training, **kwargs)
    except TypeError as exc:
        if "generator" in str(exc) and "generator" in kwargs:
            fail("inverted_dropout does not accept the `generator` keyword argument: its signature should be "
                 "inverted_dropout(x, p, training, generator=None).", "wrong_signature")
        raise
    expect(torch.equal(x.detach(), before),
           "inverted_dropout changed its input x in place. Build a new tensor (x * mask / (1 - p)) instead of "
           "writing zeros into x: the caller, and autograd, may still need the original values.", "modified_input")
    out = as_tensor(out, "inverted_dropout(x, p, training)")
    expect_shape(out, tuple(x.shape), "inverted_dropout(x, p, training)", hint="Dropout keeps the shape of its input.")
    return out


@checks.of("inverted_dropout")
def zeroes_a_fraction_p_and_scales_the_survivors(inverted_dropout, num_rows=400, num_cols=500, p=0.3, seed=0):
    x = _positive_inputs((num_rows, num_cols), seed)
    out = _drop(inverted_dropout, x, p, True, generator=torch.Generator().manual_seed(seed + 1))
    expect(is_finite(out), f"with p={p} the output holds nan or inf values.", "not_finite")
    dropped = float((out == 0).float().mean())
    if abs(dropped - (1 - p)) < 0.02 and abs(p - 0.5) > 0.05:
        fail(f"inverted_dropout zeroed {dropped:.1%} of the elements with p={p}: that is 1 - p. p is the probability "
             "of DROPPING an element, so keep each one with probability 1 - p (torch.rand(...) < 1 - p).",
             "keep_and_drop_swapped")
    expect(abs(dropped - p) < 0.02,
           f"inverted_dropout zeroed {dropped:.1%} of the elements with p={p}; expected about {p:.0%}.",
           "wrong_drop_rate")
    kept = out != 0
    survivors, originals = out[kept], x[kept]
    if is_close(survivors, originals):
        fail(f"the surviving elements are not scaled, so the output's mean is {float(out.mean()):.3f} while the "
             f"input's is {float(x.mean()):.3f}: dropout shrinks every activation by (1 - p) during training "
             "only, and the next layer sees another scale at prediction time. Divide the survivors by (1 - p).",
             "missing_dropout_scale")
    if is_close(survivors, originals * (1 - p)):
        fail("the survivors are multiplied by (1 - p); inverted dropout divides them by (1 - p), so that the "
             "expected value of each element stays what it was.", "wrong_scale")
    expect(is_close(survivors, originals / (1 - p)),
           f"the surviving elements should equal x / (1 - p); they differ by up to "
           f"{biggest_gap(survivors, originals / (1 - p)):.3g}.", "wrong_values")


@checks.of("inverted_dropout")
def preserves_the_mean(inverted_dropout, num_rows=400, num_cols=500, p=0.3, seed=0):
    x = _positive_inputs((num_rows, num_cols), seed)
    out = _drop(inverted_dropout, x, p, True, generator=torch.Generator().manual_seed(seed + 2))
    ratio = float(out.mean()) / float(x.mean())
    expect(abs(ratio - 1) < 0.02,
           f"in training the output's mean is {ratio:.3f} times the input's; inverted dropout keeps the mean "
           "(each element survives with probability 1 - p and is then divided by 1 - p).",
           "missing_dropout_scale")


@checks.of("inverted_dropout")
def is_the_identity_when_not_training_or_p_is_0(inverted_dropout, p=0.3, seed=0):
    x = _positive_inputs((4, 5, 6), seed)
    out = _drop(inverted_dropout, x, p, False)
    if bool((out == 0).any()) or not is_close(out, x, atol=0, rtol=0):
        fail(f"with training=False inverted_dropout changed its input ({int((out == 0).sum())} of {x.numel()} "
             "elements zeroed): dropout is applied in eval mode too. Return x unchanged when not training.",
             "dropout_in_eval")
    out = _drop(inverted_dropout, x, 0.0, True)
    expect(is_close(out, x, atol=0, rtol=0),
           "with p=0 and training=True nothing should be dropped or scaled; the output differs from x.",
           "p_zero_not_identity")


@checks.of("inverted_dropout")
def drops_everything_when_p_is_1(inverted_dropout, seed=0):
    x = _positive_inputs((6, 7), seed)
    out = _drop(inverted_dropout, x, 1.0, True)
    if not is_finite(out):
        fail("with p=1 the output holds nan: x * mask / (1 - p) divides by zero. Return torch.zeros_like(x) "
             "when p == 1.", "p_one_not_zero")
    expect(bool((out == 0).all()), "with p=1 every element should be dropped; some survived.", "p_one_not_zero")


@checks.of("inverted_dropout")
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
                fail(f"inverted_dropout(x, p={p}, training={training}) raised {type(exc).__name__}; "
                     "raise ValueError for a p outside [0, 1].", "wrong_exception")
            fail(f"inverted_dropout(x, p={p}, training={training}) returned {describe(result)} instead of raising "
                 "ValueError. Check 0 <= p <= 1 first, before looking at `training`: a bad p is a bug in both "
                 "modes.", "p_not_validated")


@checks.of("inverted_dropout")
def draws_its_mask_from_the_generator(inverted_dropout, p=0.3, seed=0):
    x = _positive_inputs((50, 60), seed)
    torch.manual_seed(seed + 100)
    first = _drop(inverted_dropout, x, p, True, generator=torch.Generator().manual_seed(seed))
    torch.manual_seed(seed + 200)
    again = _drop(inverted_dropout, x, p, True, generator=torch.Generator().manual_seed(seed))
    expect(torch.equal(first == 0, again == 0),
           f"two calls with generators seeded alike ({seed}) dropped different elements: the generator is ignored "
           "and the mask comes from the global random state. Pass it on: torch.rand(x.shape, generator=generator) "
           "or torch.bernoulli(..., generator=generator).", "generator_ignored")
    other = _drop(inverted_dropout, x, p, True, generator=torch.Generator().manual_seed(seed + 1))
    expect(not torch.equal(first == 0, other == 0),
           f"generators seeded with {seed} and {seed + 1} dropped the same elements: the mask does not come from "
           "the generator you were given.", "generator_ignored")


@checks.of("inverted_dropout")
def draws_a_new_mask_on_every_call_without_a_generator(inverted_dropout, p=0.3, seed=0):
    x = _positive_inputs((50, 60), seed)
    torch.manual_seed(seed)
    first = _drop(inverted_dropout, x, p, True)
    second = _drop(inverted_dropout, x, p, True)
    expect(not torch.equal(first == 0, second == 0),
           "two calls without a generator dropped exactly the same elements, so training would switch off the same "
           "units at every step. With generator=None, draw from the global random state (torch.rand(x.shape) "
           "without a generator) instead of a generator seeded inside the function.", "same_mask_every_call")


@checks.of("inverted_dropout")
def lets_gradients_through_the_survivors(inverted_dropout, p=0.3, seed=0):
    x = _positive_inputs((20, 30), seed).requires_grad_()
    out = _drop(inverted_dropout, x, p, True, generator=torch.Generator().manual_seed(seed))
    expect(out.requires_grad, "the output does not require grad: the graph was cut (detach, .data or torch.no_grad).",
           "detached")
    out.sum().backward()
    expected = (out.detach() != 0).float() / (1 - p)
    expect(x.grad is not None and is_close(x.grad, expected),
           "the gradient of the output with respect to x should be 1 / (1 - p) for survivors and 0 for dropped "
           "elements.", "wrong_gradient")


# --- RegularizedMLP -----------------------------------------------------------------
#
# clause (text and contract)                                  -> check
# Linear(num_features, hidden), BatchNorm1d(hidden),          -> has_Linear_BatchNorm1d_and_Linear_of_the_right_sizes
#   Linear(hidden, num_classes); Dropout with p = p_drop         (the input `hidden_units` is the `hidden` argument:
#                                                                `check(..., hidden=...)` would mean a hidden test)
# running statistics are buffers, not parameters              -> keeps_running_statistics_in_buffers_not_parameters
# (N, num_features) to raw logits (N, num_classes)            -> outputs_logits_of_shape_N_by_num_classes
# batch norm right after the first Linear, before the ReLU    -> normalises_the_first_layer_before_the_relu
#   (and no dropout before it)
# eval mode: running statistics, no dropout, no dependence    -> uses_running_statistics_and_no_dropout_in_eval_mode
#   on the batch, buffers unchanged                              instructor: equals_the_reference_in_eval_mode
# train mode: dropout active, not on the logits               -> drops_hidden_units_in_train_mode
# dropout between the ReLU and the last Linear, mean kept     -> instructor: averages_to_the_network_without_dropout
#   (hidden: other sizes and dropout rates)


def _build(RegularizedMLP, num_features, hidden_units, num_classes, p_drop, seed) -> nn.Module:
    torch.manual_seed(seed)
    return instantiate(RegularizedMLP, num_features, hidden_units, num_classes, p_drop=p_drop, what="RegularizedMLP")


def layers(model: nn.Module, num_features: int, hidden: int, num_classes: int):
    """The model's first Linear, BatchNorm1d and last Linear, or a diagnosis."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
    if not norms:
        fail("RegularizedMLP has no nn.BatchNorm1d layer; put BatchNorm1d(hidden) between the first Linear and the "
             "ReLU.", "missing_batchnorm")
    if len(linears) != 2 or len(norms) != 1:
        fail(f"RegularizedMLP has {len(linears)} Linear and {len(norms)} BatchNorm1d layers; expected exactly two "
             "Linear layers and one BatchNorm1d.", "wrong_layers")
    first = next((m for m in linears if m.in_features == num_features), None)
    last = next((m for m in linears if m is not first), None)
    sizes = ", ".join(f"Linear({m.in_features}, {m.out_features})" for m in linears)
    expect(first is not None and (first.out_features, last.in_features, last.out_features) == (hidden, hidden,
                                                                                                 num_classes),
           f"RegularizedMLP({num_features}, {hidden}, {num_classes}) has {sizes}; expected Linear({num_features}, "
           f"{hidden}) and Linear({hidden}, {num_classes}).", "wrong_layer_size")
    norm = norms[0]
    expect(norm.num_features == hidden,
           f"the BatchNorm1d normalises {norm.num_features} features; it sits after Linear({num_features}, {hidden}), "
           f"so it needs BatchNorm1d({hidden}).", "wrong_layer_size")
    return first, norm, last


def warm_up(model: nn.Module, num_features: int, seed: int) -> None:
    """A few training batches, so the running statistics differ from their initial 0 and 1."""
    gen = torch.Generator().manual_seed(seed + 7)
    model.train()
    with torch.no_grad():
        for _ in range(5):
            model(torch.randn(32, num_features, generator=gen) * 2 + 1)


@checks.of("RegularizedMLP")
def has_Linear_BatchNorm1d_and_Linear_of_the_right_sizes(RegularizedMLP, num_features=12, hidden_units=8,
                                                        num_classes=3, p_drop=0.2, seed=0):
    model = _build(RegularizedMLP, num_features, hidden_units, num_classes, p_drop, seed)
    layers(model, num_features, hidden_units, num_classes)
    dropouts = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    for layer in dropouts:
        expect(abs(layer.p - p_drop) < 1e-12,
               f"RegularizedMLP(..., p_drop={p_drop}) holds nn.Dropout(p={layer.p}): pass p_drop to the Dropout "
               "layer instead of a fixed value.", "p_drop_ignored")


@checks.of("RegularizedMLP")
def keeps_running_statistics_in_buffers_not_parameters(RegularizedMLP, num_features=12, hidden_units=8,
                                                       num_classes=3, p_drop=0.2, seed=0):
    model = _build(RegularizedMLP, num_features, hidden_units, num_classes, p_drop, seed)
    _, norm, _ = layers(model, num_features, hidden_units, num_classes)
    if norm.running_mean is None:
        fail("the BatchNorm1d keeps no running statistics (track_running_stats=False), so in eval mode it still "
             "normalises with the statistics of the batch it is given: a prediction would depend on the other "
             "samples in the batch. Use nn.BatchNorm1d(hidden) with its defaults.", "no_running_stats")
    h = hidden_units
    expected = num_features * h + h + 2 * h + h * num_classes + num_classes
    found = parameter_count(model)
    expect(found == expected,
           f"RegularizedMLP({num_features}, {h}, {num_classes}) has {found} parameters; expected {expected}: "
           f"both Linear layers with their biases, and the BatchNorm1d's weight and bias ({hidden_units} each).",
           "wrong_parameter_count")
    buffers = {name.rsplit(".", 1)[-1] for name, _ in model.named_buffers()}
    parameters = {name.rsplit(".", 1)[-1] for name, _ in model.named_parameters()}
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        expect(name in buffers and name not in parameters,
               f"`{name}` should be a buffer of the model and not a parameter.", "not_a_buffer")
    state = model.state_dict()
    expect(any(key.endswith("running_mean") for key in state) and any(key.endswith("running_var") for key in state),
           "the model's state_dict lacks the running statistics, so a checkpoint would lose them.", "not_a_buffer")


@checks.of("RegularizedMLP")
def outputs_logits_of_shape_N_by_num_classes(RegularizedMLP, num_samples=16, num_features=12, hidden_units=8,
                                             num_classes=3, p_drop=0.2, seed=0):
    model = _build(RegularizedMLP, num_features, hidden_units, num_classes, p_drop, seed)
    warm_up(model, num_features, seed)
    model.eval()
    x = torch.randn(num_samples, num_features, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        out = as_tensor(model(x), "model(x)")
    expect_shape(out, (num_samples, num_classes), "model(x)")
    if bool((out >= 0).all()) and is_close(out.sum(dim=1), torch.ones(num_samples), atol=1e-4):
        fail("each row of the output sums to 1: the model ends with a softmax. Return raw logits; "
             "nn.CrossEntropyLoss applies log-softmax itself.", "softmax_in_model")


@checks.of("RegularizedMLP")
def normalises_the_first_layer_before_the_relu(RegularizedMLP, num_samples=16, num_features=12, hidden_units=8,
                                               num_classes=3, seed=0):
    """With batch norm right after the first Linear, scaling and shifting every input feature changes nothing
    in train mode: the Linear turns it into a scale and shift of each hidden unit, which batch norm removes."""
    model = _build(RegularizedMLP, num_features, hidden_units, num_classes, 0.0, seed)
    model.train()
    gen = torch.Generator().manual_seed(seed + 11)
    # Enough samples that no hidden unit's batch variance comes near batch norm's eps, which would blur the test.
    x = torch.randn(max(num_samples, 32), num_features, generator=gen)
    shifted = 3.0 * x + torch.randn(num_features, generator=gen) * 4
    with torch.no_grad():
        out, out_shifted = as_tensor(model(x), "model(x)"), as_tensor(model(shifted), "model(x)")
    expect(is_close(out, out_shifted, atol=1e-3, rtol=1e-3),
           f"in train mode (p_drop=0) scaling and shifting the inputs changed the output by up to "
           f"{biggest_gap(out, out_shifted):.3g}; with BatchNorm1d right after the first Linear it would not change "
           "at all (batch norm removes any scale and shift of each hidden unit). The order is Linear, BatchNorm1d, "
           "ReLU, Dropout, Linear: is the ReLU before the batch norm?", "wrong_order")
    # With dropout on: the batch norm must still see exactly the first Linear's outputs (its running mean moves
    # by momentum * batch mean, as the notebook shows), so no dropout sits before it.
    model = _build(RegularizedMLP, num_features, hidden_units, num_classes, 0.5, seed)
    first, norm, _ = layers(model, num_features, hidden_units, num_classes)
    if norm.running_mean is None:
        return
    model.train()
    start = norm.running_mean.clone()
    with torch.no_grad():
        model(x)
        expected = (1 - norm.momentum) * start + norm.momentum * first(x).mean(dim=0)
    expect(is_close(norm.running_mean, expected, atol=1e-5),
           "in train mode the BatchNorm1d does not see the first Linear layer's outputs as they are (its running "
           "mean moved by another amount than momentum * their batch mean): something, such as a dropout or the "
           "ReLU, sits between them. The order is Linear, BatchNorm1d, ReLU, Dropout, Linear.", "wrong_order")


@checks.of("RegularizedMLP")
def uses_running_statistics_and_no_dropout_in_eval_mode(RegularizedMLP, num_samples=16, num_features=12,
                                                        hidden_units=8, num_classes=3, p_drop=0.2, seed=0):
    model = _build(RegularizedMLP, num_features, hidden_units, num_classes, p_drop, seed)
    _, norm, _ = layers(model, num_features, hidden_units, num_classes)
    warm_up(model, num_features, seed)
    model.eval()
    x = torch.randn(num_samples, num_features, generator=torch.Generator().manual_seed(seed))
    buffers = [b.clone() for b in model.buffers()]
    with torch.no_grad():
        out, again = as_tensor(model(x), "model(x)"), as_tensor(model(x), "model(x)")
    expect_shape(out, (num_samples, num_classes), "model(x)")
    expect(torch.equal(out, again),
           "in eval mode two calls on the same input gave different outputs: dropout is still active. Use "
           "nn.Dropout (which model.eval() switches off), or pass training=self.training to F.dropout.",
           "dropout_in_eval")
    expect(all(torch.equal(b, old) for b, old in zip(model.buffers(), buffers)),
           "a forward pass in eval mode changed the running statistics.", "stats_updated_in_eval")
    with torch.no_grad():
        single = model(x[:1])
    expect(is_close(single, out[:1], atol=1e-5),
           "in eval mode a sample's output depends on the other samples in its batch.", "batch_dependent")
    if norm.running_mean is not None:
        with torch.no_grad():
            norm.running_mean.add_(1.0)
            moved = model(x)
            norm.running_mean.sub_(1.0)
        expect(not is_close(moved, out, atol=1e-6),
               "in eval mode the output ignores the batch norm's running statistics: the model must normalise "
               "with them (nn.BatchNorm1d does, once model.eval() is called).", "running_stats_ignored")


@checks.of("RegularizedMLP")
def drops_hidden_units_in_train_mode(RegularizedMLP, num_samples=16, num_features=12, hidden_units=8,
                                     num_classes=3, p_drop=0.2, seed=0):
    model = _build(RegularizedMLP, num_features, hidden_units, num_classes, p_drop, seed)
    model.train()
    x = torch.randn(num_samples, num_features, generator=torch.Generator().manual_seed(seed))
    torch.manual_seed(seed)
    with torch.no_grad():
        outs = torch.stack([as_tensor(model(x), "model(x)") for _ in range(20)])
    expect_shape(outs[0], (num_samples, num_classes), "model(x)")
    expect(not bool((outs == outs[0]).all()),
           "in train mode the model gives the same output every time: there is no active dropout. Add "
           "nn.Dropout(p_drop) between the ReLU and the last Linear layer.", "missing_dropout")
    zeros = float((outs == 0).float().mean())
    expect(zeros < p_drop / 2,
           f"in train mode {zeros:.0%} of the logits are exactly zero: the dropout acts on the output. It belongs "
           "between the ReLU and the last Linear layer.", "wrong_order")


# --- predict ------------------------------------------------------------------------
#
# clause (text and contract)                                  -> check
# class indices (N,), long, the arg-max of the logits         -> predicts_in_eval_mode (and _predict)
# computed in eval mode (dropout off, running statistics)     -> predicts_in_eval_mode
# without a graph                                             -> builds_no_graph
# leaves the model in the mode it found (every submodule)     -> leaves_the_model_in_the_mode_it_found
# deterministic across calls                                  -> is_deterministic
# the same classes as the model's eval-mode logits on a real  -> instructor: agrees_with_a_real_network
#   network with batch norm and dropout                          (hidden: other sizes, a single sample)
#
# The public checks use a probe whose eval-mode predictions are known by construction: the first input
# feature holds the class it predicts; in train mode it predicts the next class.


class _Probe(nn.Module):
    """Predicts the class written in the first input feature (eval mode) or the next one (train mode); it has
    batch norm and dropout inside, and remembers how it was called."""

    def __init__(self, num_features: int, num_classes: int):
        super().__init__()
        self.num_classes = num_classes
        self.hidden = nn.Linear(num_features, 16)
        self.norm = nn.BatchNorm1d(16)
        self.drop = nn.Dropout(0.5)
        self.out = nn.Linear(16, num_classes)
        self.calls: list[tuple[bool, bool]] = []

    def forward(self, x):
        self.calls.append((self.training, torch.is_grad_enabled()))
        classes = x[:, 0].round().long() % self.num_classes
        if self.training:
            classes = (classes + 1) % self.num_classes
        noise = self.out(self.drop(F.relu(self.norm(self.hidden(x))))) if len(x) > 1 or not self.training else 0
        return F.one_hot(classes, self.num_classes).to(x.dtype) * 50 + 0.01 * torch.tanh(torch.as_tensor(noise))


def _probe(num_features: int, num_classes: int, seed: int) -> _Probe:
    torch.manual_seed(seed)
    model = _Probe(num_features, num_classes)
    warm_up(model, num_features, seed)
    model.calls.clear()
    return model


def _inputs(num_samples: int, num_features: int, num_classes: int, seed: int):
    """Inputs and the classes the probe predicts for them in eval mode."""
    gen = torch.Generator().manual_seed(seed + 3)
    classes = torch.randint(0, num_classes, (num_samples,), generator=gen)
    X = torch.randn(num_samples, num_features, generator=gen)
    X[:, 0] = classes.float()
    return X, classes


def _predict(predict, model, X, num_samples: int, num_classes: int) -> torch.Tensor:
    out = as_tensor(predict(model, X), "predict(model, X)")
    if tuple(out.shape) == (num_samples, num_classes):
        fail(f"predict returned {describe(out)}: one score per class (logits or probabilities). Return the "
             "index of the largest score in each row: .argmax(dim=1).", "returns_scores")
    if tuple(out.shape) == (num_samples, 1):
        fail(f"predict returned shape {shape_text(out.shape)}; expected ({num_samples},). Drop keepdim=True, or "
             "flatten the result.", "wrong_shape")
    expect_shape(out, (num_samples,), "predict(model, X)")
    if out.is_floating_point():
        fail(f"predict returned {describe(out)}: floating-point values, not class indices. If these are the "
             "largest scores (.max(dim=1).values), return their positions instead: .argmax(dim=1).",
             "returns_scores")
    expect_dtype(out, torch.long, "predict(model, X)")
    return out


@checks.of("predict")
def predicts_in_eval_mode(predict, num_samples=24, num_features=6, num_classes=4, seed=0):
    model = _probe(num_features, num_classes, seed)
    X, expected = _inputs(num_samples, num_features, num_classes, seed)
    model.train()
    out = _predict(predict, model, X, num_samples, num_classes)
    expect(bool(model.calls), "predict never called the model.", "model_not_called")
    if any(training for training, _ in model.calls):
        fail("predict ran the model in train mode: dropout was active and batch norm used (and updated) the "
             "statistics of this batch, so the answer changes from call to call. Call model.eval() before the "
             "forward pass.", "missing_eval")
    expect(torch.equal(out, expected),
           f"predict's classes differ from the arg-max of the model's eval-mode logits for "
           f"{int((out != expected).sum())} of {num_samples} samples.", "wrong_classes")


@checks.of("predict")
def builds_no_graph(predict, num_samples=24, num_features=6, num_classes=4, seed=0):
    model = _probe(num_features, num_classes, seed)
    X, _ = _inputs(num_samples, num_features, num_classes, seed)
    model.eval()
    _predict(predict, model, X, num_samples, num_classes)
    expect(not any(grad for _, grad in model.calls),
           "predict ran the model with gradient tracking on, so autograd recorded a graph it never uses (and "
           ".detach() afterwards is too late). Run the forward pass inside `with torch.no_grad():`.",
           "missing_no_grad")


@checks.of("predict")
def leaves_the_model_in_the_mode_it_found(predict, num_samples=24, num_features=6, num_classes=4, seed=0):
    model = _probe(num_features, num_classes, seed)
    X, _ = _inputs(num_samples, num_features, num_classes, seed)
    model.train()
    _predict(predict, model, X, num_samples, num_classes)
    if not model.training:
        fail("predict left a model that was training in eval mode: the rest of training would run without "
             "dropout and with frozen batch statistics. Remember model.training before switching and restore it "
             "with model.train(was_training).", "mode_not_restored")
    if not all(m.training for m in model.modules()):
        fail("after predict the model says it is training, but its layers are still in eval mode: setting the "
             "attribute model.training only changes the outer module. Restore the mode with "
             "model.train(was_training), which reaches every layer.", "mode_not_restored")
    model.eval()
    _predict(predict, model, X, num_samples, num_classes)
    expect(not any(m.training for m in model.modules()),
           "predict switched a model that was in eval mode to train mode. Restore the mode it had "
           "(model.train(was_training)) rather than calling model.train() unconditionally.", "mode_not_restored")


@checks.of("predict")
def is_deterministic(predict, num_samples=24, num_features=6, num_classes=4, seed=0):
    model = _probe(num_features, num_classes, seed)
    X, _ = _inputs(num_samples, num_features, num_classes, seed)
    model.train()
    first = _predict(predict, model, X, num_samples, num_classes)
    second = _predict(predict, model, X, num_samples, num_classes)
    expect(torch.equal(first, second), "two calls of predict on the same model and inputs gave different classes.",
           "not_deterministic")


# --- challenge: train_despite_noise -------------------------------------------------------
#
# clause (text)                                               -> check
# returns an nn.Module: (N, 64) to logits (N, 10)             -> reaches_the_target_despite_noisy_labels
# trains only on the samples it receives                      -> reaches_the_target_despite_noisy_labels (data sealed)
# NOISY_TRAINING digits, NOISE_RATE of their labels redrawn   -> reaches_the_target_despite_noisy_labels
# at least NOISY_ACCURACY on clean held-out digits            -> ... (visible split); instructor: hidden split and noise
# at most NOISY_CPU_SECONDS of CPU time on one core           -> reaches_the_target_despite_noisy_labels

NOISY_TRAINING = 300
NOISE_RATE = 0.3
NOISY_ACCURACY = 0.83
NOISY_CPU_SECONDS = 10.0


def noisy_outcome(train_despite_noise, seed: int, where: str) -> None:
    """Train the learner's design on digits with noisy labels and measure it on clean held-out digits."""
    from autograder.data import load_digits

    X, y = load_digits()
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(y), generator=gen)
    training, held_out = order[:NOISY_TRAINING], order[NOISY_TRAINING:]
    labels = y[training].clone()
    redrawn = torch.rand(NOISY_TRAINING, generator=gen) < NOISE_RATE
    labels[redrawn] = torch.randint(0, 10, (int(redrawn.sum()),), generator=gen)
    with data_sealed(train_despite_noise, "train_despite_noise"), one_cpu_core() as clock:
        model = train_despite_noise(X[training].clone(), labels)
        seconds = clock["seconds"]()
    if not isinstance(model, nn.Module):
        fail(f"train_despite_noise should return the trained model, an nn.Module; it returned {describe(model)}.",
             "wrong_return")
    model.eval()
    device = next(model.parameters(), torch.empty(0)).device  # a learner's model may live on a GPU
    with torch.no_grad():
        logits = model(X[held_out].to(device))
    if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (len(held_out), 10):
        fail(f"your model should return logits of shape ({len(held_out)}, 10); it returned {describe(logits)}.",
             "wrong_shape")
    accuracy = float((logits.argmax(dim=1).cpu() == y[held_out]).float().mean())
    expect(accuracy >= NOISY_ACCURACY,
           f"in eval mode your model classifies {accuracy:.1%} of {len(held_out)} clean held-out digits ({where}) "
           f"correctly; the target is {NOISY_ACCURACY:.0%}.", "below_target")
    expect(seconds <= NOISY_CPU_SECONDS,
           f"training used {seconds:.1f} s of CPU time on one core; the budget is {NOISY_CPU_SECONDS:g} s.",
           "over_time_budget")


@checks.of("train_despite_noise")
def reaches_the_target_despite_noisy_labels(train_despite_noise, seed=0):
    noisy_outcome(train_despite_noise, seed, f"the split seeded with {seed}")
