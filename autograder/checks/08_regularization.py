"""Checks for 08_regularization: dropout by hand, batch norm, and the train/eval switch."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from autograder.checks._support import (
    as_tensor,
    biggest_gap,
    describe,
    expect_dtype,
    expect_shape,
    instantiate,
    is_close,
    is_finite,
    parameter_count,
    shape_text,
)
from autograder.registry import Checks
from autograder.results import expect, fail

checks = Checks("08_regularization")


# --- inverted_dropout -------------------------------------------------------------


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


def _build(RegularizedMLP, num_features, hidden, num_classes, p_drop, seed) -> nn.Module:
    torch.manual_seed(seed)
    return instantiate(RegularizedMLP, num_features, hidden, num_classes, p_drop=p_drop, what="RegularizedMLP")


def _layers(model: nn.Module, num_features: int, hidden: int, num_classes: int):
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


def _eval_reference(first, norm, last, x):
    with torch.no_grad():
        return last(F.relu(F.batch_norm(first(x), norm.running_mean, norm.running_var, norm.weight, norm.bias,
                                        training=False, eps=norm.eps)))


def _train_reference(first, norm, last, x):
    """The training-mode output without dropout: batch statistics, no update of the running ones."""
    with torch.no_grad():
        h = first(x)
        normed = (h - h.mean(0)) / torch.sqrt(h.var(0, unbiased=False) + norm.eps) * norm.weight + norm.bias
        return last(F.relu(normed))


def _warm_up(model: nn.Module, num_features: int, seed: int) -> None:
    """A few training batches, so the running statistics differ from their initial 0 and 1."""
    gen = torch.Generator().manual_seed(seed + 7)
    model.train()
    with torch.no_grad():
        for _ in range(5):
            model(torch.randn(32, num_features, generator=gen) * 2 + 1)


@checks.of("RegularizedMLP")
def has_Linear_BatchNorm1d_and_Linear_of_the_right_sizes(RegularizedMLP, num_features=12, hidden=8, num_classes=3,
                                                        p_drop=0.2, seed=0):
    model = _build(RegularizedMLP, num_features, hidden, num_classes, p_drop, seed)
    _layers(model, num_features, hidden, num_classes)
    dropouts = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    for layer in dropouts:
        expect(abs(layer.p - p_drop) < 1e-12,
               f"RegularizedMLP(..., p_drop={p_drop}) holds nn.Dropout(p={layer.p}): pass p_drop to the Dropout "
               "layer instead of a fixed value.", "p_drop_ignored")


@checks.of("RegularizedMLP")
def keeps_running_statistics_in_buffers_not_parameters(RegularizedMLP, num_features=12, hidden=8, num_classes=3,
                                                       p_drop=0.2, seed=0):
    model = _build(RegularizedMLP, num_features, hidden, num_classes, p_drop, seed)
    _, norm, _ = _layers(model, num_features, hidden, num_classes)
    if norm.running_mean is None:
        fail("the BatchNorm1d keeps no running statistics (track_running_stats=False), so in eval mode it still "
             "normalises with the statistics of the batch it is given: a prediction would depend on the other "
             "samples in the batch. Use nn.BatchNorm1d(hidden) with its defaults.", "no_running_stats")
    expected = num_features * hidden + hidden + 2 * hidden + hidden * num_classes + num_classes
    found = parameter_count(model)
    expect(found == expected,
           f"RegularizedMLP({num_features}, {hidden}, {num_classes}) has {found} parameters; expected {expected}: "
           f"both Linear layers with their biases, and the BatchNorm1d's weight and bias ({hidden} each).",
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
def outputs_logits_of_shape_N_by_num_classes(RegularizedMLP, num_samples=16, num_features=12, hidden=8,
                                             num_classes=3, p_drop=0.2, seed=0):
    model = _build(RegularizedMLP, num_features, hidden, num_classes, p_drop, seed)
    _warm_up(model, num_features, seed)
    model.eval()
    x = torch.randn(num_samples, num_features, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        out = as_tensor(model(x), "model(x)")
    expect_shape(out, (num_samples, num_classes), "model(x)")
    if bool((out >= 0).all()) and is_close(out.sum(dim=1), torch.ones(num_samples), atol=1e-4):
        fail("each row of the output sums to 1: the model ends with a softmax. Return raw logits; "
             "nn.CrossEntropyLoss applies log-softmax itself.", "softmax_in_model")


@checks.of("RegularizedMLP")
def uses_running_statistics_and_no_dropout_in_eval_mode(RegularizedMLP, num_samples=16, num_features=12, hidden=8,
                                                        num_classes=3, p_drop=0.2, seed=0):
    model = _build(RegularizedMLP, num_features, hidden, num_classes, p_drop, seed)
    first, norm, last = _layers(model, num_features, hidden, num_classes)
    _warm_up(model, num_features, seed)
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
    expected = _eval_reference(first, norm, last, x)
    if not is_close(out, expected, atol=1e-5):
        with torch.no_grad():
            relu_first = last(norm(F.relu(first(x))))
        if is_close(out, relu_first, atol=1e-5):
            fail("the model applies the ReLU before the BatchNorm1d; the order is Linear, BatchNorm1d, ReLU, "
                 "Dropout, Linear.", "wrong_order")
        fail(f"in eval mode the output differs by up to {biggest_gap(out, expected):.3g} from "
             "Linear -> BatchNorm1d (running statistics) -> ReLU -> Linear.", "wrong_order")
    with torch.no_grad():
        single = model(x[:1])
    expect(is_close(single, out[:1], atol=1e-5),
           "in eval mode a sample's output depends on the other samples in its batch.", "batch_dependent")


@checks.of("RegularizedMLP")
def drops_hidden_units_in_train_mode_only_keeping_the_mean(RegularizedMLP, num_samples=16, num_features=12,
                                                           hidden=8, num_classes=3, p_drop=0.2, seed=0):
    model = _build(RegularizedMLP, num_features, hidden, num_classes, p_drop, seed)
    first, norm, last = _layers(model, num_features, hidden, num_classes)
    model.train()
    x = torch.randn(num_samples, num_features, generator=torch.Generator().manual_seed(seed))
    expected = _train_reference(first, norm, last, x)
    torch.manual_seed(seed)
    with torch.no_grad():
        outs = torch.stack([as_tensor(model(x), "model(x)") for _ in range(400)])
    expect_shape(outs[0], (num_samples, num_classes), "model(x)")
    if bool((outs == outs[0]).all()):
        if is_close(outs[0], expected, atol=1e-5):
            fail("in train mode the model gives the same output every time, the output without dropout: add "
                 "nn.Dropout(p_drop) between the ReLU and the last Linear layer.", "missing_dropout")
        fail("in train mode the model gives the same output every time: there is no active dropout.",
             "missing_dropout")
    mean, spread = outs.mean(0), outs.std(0)
    tolerance = 6 * spread / 20 + 1e-4
    if bool(((mean - expected).abs() <= tolerance).all()):
        return
    fail(f"averaged over many training-mode passes, the output differs by up to {biggest_gap(mean, expected):.3g} "
         "from the network without dropout. With dropout between the ReLU and the last Linear layer (and "
         "survivors scaled by 1 / (1 - p)), the two agree on average. Check the order: Linear, BatchNorm1d, ReLU, "
         "Dropout, Linear.", "wrong_order")


# --- predict ------------------------------------------------------------------------


class _Probe(nn.Module):
    """A small network with batch norm and dropout that remembers how it was called."""

    def __init__(self, num_features: int, num_classes: int):
        super().__init__()
        self.hidden = nn.Linear(num_features, 16)
        self.norm = nn.BatchNorm1d(16)
        self.drop = nn.Dropout(0.5)
        self.out = nn.Linear(16, num_classes)
        self.calls: list[tuple[bool, bool]] = []

    def forward(self, x):
        self.calls.append((self.training, torch.is_grad_enabled()))
        return self.out(self.drop(F.relu(self.norm(self.hidden(x)))))


def _probe(num_features: int, num_classes: int, seed: int) -> _Probe:
    torch.manual_seed(seed)
    model = _Probe(num_features, num_classes)
    _warm_up(model, num_features, seed)
    model.calls.clear()
    return model


def _inputs(num_samples: int, num_features: int, seed: int) -> torch.Tensor:
    return torch.randn(num_samples, num_features, generator=torch.Generator().manual_seed(seed + 3))


def _expected_classes(model: _Probe, X: torch.Tensor) -> torch.Tensor:
    was = model.training
    model.eval()
    with torch.no_grad():
        classes = model(X).argmax(dim=1)
    model.train(was)
    model.calls.clear()
    return classes


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
    X = _inputs(num_samples, num_features, seed)
    expected = _expected_classes(model, X)
    buffers = [b.clone() for b in model.buffers()]
    model.train()
    out = _predict(predict, model, X, num_samples, num_classes)
    expect(bool(model.calls), "predict never called the model.", "model_not_called")
    if any(training for training, _ in model.calls) or not all(torch.equal(b, old)
                                                                for b, old in zip(model.buffers(), buffers)):
        fail("predict ran the model in train mode: dropout was active and batch norm used (and updated) the "
             "statistics of this batch, so the answer changes from call to call. Call model.eval() before the "
             "forward pass.", "missing_eval")
    expect(torch.equal(out, expected),
           f"predict's classes differ from the arg-max of the model's eval-mode logits for "
           f"{int((out != expected).sum())} of {num_samples} samples.", "wrong_classes")


@checks.of("predict")
def builds_no_graph(predict, num_samples=24, num_features=6, num_classes=4, seed=0):
    model = _probe(num_features, num_classes, seed)
    X = _inputs(num_samples, num_features, seed)
    model.eval()
    _predict(predict, model, X, num_samples, num_classes)
    expect(not any(grad for _, grad in model.calls),
           "predict ran the model with gradient tracking on, so autograd recorded a graph it never uses (and "
           ".detach() afterwards is too late). Run the forward pass inside `with torch.no_grad():`.",
           "missing_no_grad")


@checks.of("predict")
def leaves_the_model_in_the_mode_it_found(predict, num_samples=24, num_features=6, num_classes=4, seed=0):
    model = _probe(num_features, num_classes, seed)
    X = _inputs(num_samples, num_features, seed)
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
    X = _inputs(num_samples, num_features, seed)
    model.train()
    first = _predict(predict, model, X, num_samples, num_classes)
    second = _predict(predict, model, X, num_samples, num_classes)
    expect(torch.equal(first, second), "two calls of predict on the same model and inputs gave different classes.",
           "not_deterministic")
