"""Checks for 02_manual_model: a logistic model written with tensors alone.

Each check names the rule of its exercise's text that it enforces (``rule=``, the ids of the contract list
in the notebook). Nothing here computes what an exercise must return: the expected values are computed
inside the checks themselves (the reference training run is the instructor's), and a failure's exact fix
goes into ``fix=``, shown only after repeated failures.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from autograder.checks._forbid import call_without
from autograder.checks._probes import backward_through, calls_to
from autograder.checks._support import (
    as_float,
    as_mean_loss,
    as_pair,
    as_tensor,
    biggest_gap,
    blame,
    describe,
    expect_dtype,
    expect_shape,
    failure_of,
    is_close,
    is_finite,
    number,
    shape_text,
    uniform_distance,
)
from autograder.data import load_breast_cancer, load_breast_cancer_raw
from autograder.learner import fetch, is_callable, keep, probe
from autograder.registry import Checks
from autograder.results import CheckFailure, expect, fail

checks = Checks("02_manual_model")


def _random_problem(num_samples: int, num_features: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(num_samples, num_features, generator=gen)
    W = torch.randn(num_features, 1, generator=gen) * 0.5
    b = torch.randn(1, generator=gen) * 0.5
    return X, W, b


def _failure_or_none(exercise: str, **objects):
    """The first diagnosis of ``exercise``'s public checks for the learner's objects, or None (also when that
    exercise is not written yet: then it cannot be what broke this one)."""
    try:
        return failure_of(exercise, **objects)
    except NotImplementedError:
        return None


# --- init_params ----------------------------------------------------------------


def _init(init_params, num_features: int, seed: int):
    W, b = as_pair(init_params(num_features, seed=seed), "init_params")
    return as_tensor(W, "W"), as_tensor(b, "b")


def many_calls(function, calls: list):
    """A probe: ``function(*args, **kwargs)`` for each (args, kwargs) of ``calls``, in the learner's process;
    the results, in order (one message instead of hundreds)."""
    return [function(*args, **kwargs) for args, kwargs in calls]


@checks.of("init_params", rule="shapes")
def W_has_one_row_per_feature_and_b_one_value(init_params, num_features=5, seed=0):
    W, b = _init(init_params, num_features, seed)
    if tuple(W.shape) == (1, num_features) and num_features > 1:
        fail(f"W has shape {shape_text(W.shape)}, one row for the output (nn.Linear's layout). Here the model "
             f"computes X @ W, so W needs one row per feature: shape ({num_features}, 1).",
             "weight_layout_transposed", fix=f"Draw W with shape (num_features, 1).")
    if tuple(W.shape) == (num_features,):
        fail(f"W is 1-D with shape ({num_features},), so X @ W gives shape (N,) instead of (N, 1) and the targets "
             "broadcast against it.", "wrong_shape", fix="Draw W with shape (num_features, 1).")
    expect_shape(W, (num_features, 1), "W")
    expect_shape(b, (1,), "b", hint="One bias for the one output.")


@checks.of("init_params", rule="leaves")
def parameters_are_float32_leaves_that_require_grad(init_params, num_features=5, seed=0):
    W, b = _init(init_params, num_features, seed)
    for name, tensor in (("W", W), ("b", b)):
        expect_dtype(tensor, torch.float32, name)
        expect(tensor.requires_grad,
               f"{name} does not require grad, so backward() will never fill {name}.grad.", "no_requires_grad",
               fix=f"Call .requires_grad_() on {name} once its values are computed.")
        expect(tensor.is_leaf,
               f"{name} is not a leaf tensor: it was computed from a tensor that already required grad "
               f"(torch.rand(..., requires_grad=True) * 2 - 1, say), so {name}.grad stays None.", "not_leaf",
               fix="Compute the values first, then call .requires_grad_() on the result.")


def _bound_text(n: int) -> str:
    return f"±{1 / math.sqrt(n):.4f}, the a for which {n} · a²/3 = 1/3"


@checks.of("init_params", rule="scale")
def W_lies_within_the_range_the_scale_asks_for(init_params, num_features=5, seed=0):
    for n in sorted({num_features, 1, 256}):
        bound = 1 / math.sqrt(n)
        W, _ = _init(init_params, n, seed)
        worst = float(W.detach().abs().max())
        expect(worst <= bound + 1e-6,
               f"with {n} feature{'s' if n > 1 else ''} W holds {worst:.4f}, outside {_bound_text(n)}: the scores "
               f"X @ W of standardised features then vary by more than 1/3.", "out_of_range",
               fix="a = 1 / math.sqrt(num_features): n · a²/3 = 1/3.")


@checks.of("init_params", rule="bias")
def b_is_zero_or_within_the_same_range(init_params, num_features=5, seed=0):
    for n in sorted({num_features, 1, 256}):
        bound = 1 / math.sqrt(n)
        _, b = _init(init_params, n, seed)
        expect(float(b.detach().abs().max()) <= bound + 1e-6,
               f"with {n} features b = {number(float(b.detach().flatten()[0]))}; it should be 0 or within "
               f"{_bound_text(n)}.", "out_of_range", fix="b = torch.zeros(1), then .requires_grad_().")


@checks.of("init_params", rule="uniform")
def W_is_uniform_over_the_whole_range(init_params, seed=0):
    n = 4096
    bound = 1 / math.sqrt(n)
    W, _ = _init(init_params, n, seed)
    W = W.detach().double()
    if float(W.min()) >= -1e-9:
        fail(f"with {n} features every weight is >= 0: the draw covers [0, {bound:.4f}], half of "
             f"[-{bound:.4f}, {bound:.4f}].", "not_uniform",
             fix="torch.rand draws from [0, 1): stretch and shift it, (torch.rand(...) * 2 - 1) * a.")
    at_edges = float(((W.abs() - bound).abs() < 1e-7 * bound + 1e-9).double().mean())
    distance = uniform_distance(W, -bound, bound)
    # For a uniform sample of 4096 values the distance exceeds 0.05 with probability below 1e-8;
    # a normal sample clamped to the range, or squeezed into its middle, lands far above it.
    if distance > 0.05:
        detail = (f" {at_edges:.0%} of the weights sit exactly on ±a: that is what clamping a normal draw does."
                  if at_edges > 0.05 else "")
        fail(f"with {n} features the weights are not spread evenly over [-{bound:.4f}, {bound:.4f}]: their "
             f"cumulative distribution is up to {distance:.2f} away from the uniform one (at most 0.05 "
             f"expected).{detail}", "not_uniform",
             fix="Draw uniformly: (torch.rand(...) * 2 - 1) * a, or torch.empty(...).uniform_(-a, a, generator=...).")


@checks.of("init_params", rule="seeded")
def same_seed_gives_same_values_and_another_seed_others(init_params, num_features=5, seed=0):
    probe(torch.manual_seed, 1234)
    W1, b1 = _init(init_params, num_features, seed)
    probe(torch.manual_seed, 4321)
    W2, b2 = _init(init_params, num_features, seed)
    expect(is_close(W1, W2, atol=0, rtol=0) and is_close(b1, b2, atol=0, rtol=0),
           f"two calls with seed={seed} gave different values: the draw does not come from a generator seeded "
           "with seed.", "not_deterministic",
           fix="generator = torch.Generator().manual_seed(seed), passed as generator=generator to torch.rand.")
    W3, _ = _init(init_params, num_features, seed + 1)
    expect(not is_close(W1, W3, atol=0, rtol=0),
           f"seed={seed} and seed={seed + 1} gave the same W: the seed argument is ignored.", "seed_ignored",
           fix="torch.Generator().manual_seed(seed), with the seed argument.")


@checks.of("init_params", rule="global_rng")
def leaves_the_global_random_stream_alone(init_params, num_features=5, seed=0):
    probe(torch.manual_seed, 99)
    before = probe(torch.get_rng_state)
    _init(init_params, num_features, seed)
    expect(bool(torch.equal(before, probe(torch.get_rng_state))),
           "init_params changed PyTorch's global random state: it reseeded it (torch.manual_seed) or drew from it, "
           "so every other random number in the notebook shifts when init_params is called.", "global_rng",
           fix="Draw from your own torch.Generator().manual_seed(seed), passed as generator=... to torch.rand.")


_SEEDS_FOR_THE_EDGES = 200


@checks.of("init_params", rule="scale")
def W_reaches_the_edges_of_that_range(init_params, seed=0):
    # With 2 features, 200 seeds give 400 weights: a uniform draw on ±a reaches beyond 0.95 a with
    # probability 1 - 0.95^400 > 0.999999999, while a range of ±1/sqrt(n + 1) stops at 0.82 a.
    n, bound = 2, 1 / math.sqrt(2)
    results = probe(many_calls, init_params, [((n,), {"seed": seed + k}) for k in range(_SEEDS_FOR_THE_EDGES)])
    weights = torch.cat([as_tensor(as_pair(r, "init_params")[0], "W").detach().double().flatten() for r in results])
    widest = float(weights.abs().max())
    expect(widest >= 0.95 * bound,
           f"over {_SEEDS_FOR_THE_EDGES} seeds with {n} features the weights never reach beyond ±{widest:.4f}, "
           f"{widest / bound:.0%} of {_bound_text(n)}: the range is narrower than the scale asks for, so the scores "
           "start smaller than the text requires.", "out_of_range",
           fix="a = 1 / math.sqrt(num_features), exactly.")



# --- forward ------------------------------------------------------------------


def sigmoid_tools():
    """What computes a sigmoid for you: switched off while forward is checked for being written by hand."""
    return [
        (torch, "sigmoid", "`torch.sigmoid`"),
        (torch.special, "expit", "`torch.special.expit`"),
        (F, "sigmoid", "`F.sigmoid`"),
        (torch.Tensor, "sigmoid", "`Tensor.sigmoid`"),
        (torch.Tensor, "sigmoid_", "`Tensor.sigmoid_`"),
        (nn.Sigmoid, "forward", "`nn.Sigmoid`"),
        (F, "logsigmoid", "`F.logsigmoid`"),
        (torch._C._nn, "log_sigmoid", "`F.logsigmoid`"),
        (nn.LogSigmoid, "forward", "`nn.LogSigmoid`"),
    ]


@checks.of("forward", rule="probabilities")
def computes_sigmoid_of_X_W_plus_b_with_shape_N_by_1(forward, num_samples=7, num_features=5, seed=0):
    X, W, b = _random_problem(num_samples, num_features, seed)
    out = as_tensor(forward(X, W, b), "forward(X, W, b)")
    scores = X.double() @ W.double() + b.double()
    expected = torch.sigmoid(scores)
    if tuple(out.shape) == (num_samples,):
        fail(f"forward returned shape ({num_samples},); expected ({num_samples}, 1). The targets are (N, 1), and "
             "(N,) against (N, 1) broadcasts to an (N, N) matrix in the loss.", "broadcast_shape",
             fix="Keep the column: no .squeeze(), no .flatten().")
    expect_shape(out, (num_samples, 1), "forward(X, W, b)")
    if is_close(out, scores, atol=1e-5):
        fail("forward returned X @ W + b, the scores (logits), not probabilities: values outside [0, 1].",
             "missing_sigmoid", fix="Apply the sigmoid σ(z) = 1 / (1 + e^(-z)) to the scores.")
    if is_close(out, torch.sigmoid(expected), atol=1e-5):
        fail("forward applied the sigmoid twice: its probabilities all lie between 0.5 and 0.73.", "double_sigmoid")
    expect(is_close(out, expected, atol=1e-5),
           f"forward differs from σ(X @ W + b) by up to {biggest_gap(out, expected):.3g}.", "wrong_values")


@checks.of("forward", rule="graph")
def keeps_the_graph_so_gradients_reach_W_and_b(forward, num_samples=7, num_features=5, seed=0):
    X, W, b = _random_problem(num_samples, num_features, seed)
    out, (W_grad, b_grad) = probe(backward_through, forward, (X, W, b), wrt=(1, 2))
    out = as_tensor(out, "forward(X, W, b)")
    expect(out.requires_grad,
           "the output of forward does not require grad, so no gradient can reach W and b: something in forward "
           "cuts the graph (.detach(), .item(), .numpy(), torch.no_grad(), a new torch.tensor(...)).", "detached",
           fix="Compute the probabilities from X, W and b with tensor operations only.")
    expect(W_grad is not None and b_grad is not None, "backward() through forward left W.grad or b.grad empty.",
           "detached")
    p = torch.sigmoid(X.double() @ W.double() + b.double())
    slope = p * (1 - p)
    expect(is_close(W_grad, X.double().T @ slope, atol=1e-5) and is_close(b_grad, slope.sum(dim=0), atol=1e-5),
           "the gradients that reach W and b through forward are not those of σ(X @ W + b).", "wrong_gradient")


# Scores across every size: where exp(-z) overflows float32 (z below about -88.7), where it is tiny, and 0.
_SCORES = (-1000.0, -200.0, -89.0, -88.0, -50.0, -10.0, -1.0, 0.0, 1.0, 10.0, 50.0, 88.0, 89.0, 200.0, 1000.0)


@checks.of("forward", rule="stable")
def stays_right_in_value_and_gradient_for_scores_of_any_size(forward):
    z = torch.tensor(_SCORES).reshape(-1, 1)
    X, W, b = torch.eye(len(_SCORES)), z.clone(), torch.zeros(1)  # sample i has the score z[i], through W[i]
    out, (W_grad, _) = probe(backward_through, forward, (X, W, b), wrt=(1, 2))
    out = as_tensor(out, "forward(X, W, b)").detach()
    expect_shape(out, (len(_SCORES), 1), "forward(X, W, b)")
    p = torch.sigmoid(z.double())
    for i, score in enumerate(_SCORES):
        value = float(out[i, 0])
        if not math.isfinite(value) or abs(value - float(p[i, 0])) > 1e-6:
            fail(f"for a score of {score:g} forward gives {value:.4g}; σ({score:g}) = {float(p[i, 0]):.4g}. Scores "
                 "that large happen (raw measurements in the thousands), and e^(-z) overflows float32 for z below "
                 "about -88.", "unstable",
                 fix="Keep every exponent at most about 80: clamp it, or use σ(z) = 0.5 · (1 + tanh(z / 2)).")
    expect(W_grad is not None, "backward() through forward left W.grad empty.", "detached")
    slope = p * (1 - p)
    for i, score in enumerate(_SCORES):
        grad = float(W_grad[i, 0])
        if not math.isfinite(grad):
            fail(f"for a score of {score:g} forward's value is right, but the gradient that reaches W is {grad}: "
                 "e^(-z) overflowed to inf, and the derivative of 1 / (1 + inf) is 0 · inf = nan. One nan in a "
                 "gradient turns every parameter into nan at the next step.", "unstable",
                 fix="Never let the exponent overflow: 1 / (1 + torch.exp((-z).clamp(max=80))), or "
                     "0.5 * (1 + torch.tanh(z / 2)).")
        if abs(grad - float(slope[i, 0])) > 1e-6:
            cause = (" torch.abs has slope 0 at 0, so a sigmoid built on e^(-|z|) loses its gradient there, and a "
                     "model whose scores start at 0 would never move." if score == 0 else "")
            fail(f"for a score of {score:g} the gradient that reaches W is {grad:.4g}; σ'({score:g}) = "
                 f"{float(slope[i, 0]):.4g}.{cause}", "unstable",
                 fix="Write σ from operations whose slopes are right everywhere: 1 / (1 + torch.exp((-z).clamp("
                     "max=80))), or 0.5 * (1 + torch.tanh(z / 2)).")


@checks.of("forward", rule="by_hand")
def computes_the_sigmoid_by_hand(forward, num_samples=7, num_features=5, seed=0):
    X, W, b = _random_problem(num_samples, num_features, seed)
    why = "this exercise writes σ itself, from torch.exp (or torch.tanh): PyTorch's own sigmoids are off."
    out = probe(call_without, sigmoid_tools, "forward", why, "used_library_sigmoid", forward, X, W, b)
    out = as_tensor(out, "forward(X, W, b)")
    expected = torch.sigmoid(X.double() @ W.double() + b.double())
    expect(out.shape == expected.shape and is_close(out, expected, atol=1e-5),
           "with PyTorch's own sigmoids switched off, forward gives other probabilities than with them.",
           "used_library_sigmoid")


# --- bce_loss ------------------------------------------------------------------


def _probs_and_targets(num_samples: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    probs = torch.rand(num_samples, 1, generator=gen) * 0.998 + 0.001
    targets = (torch.rand(num_samples, 1, generator=gen) > 0.5).float()
    return probs, targets


def _loss(bce_loss, probs, targets, **kwargs) -> torch.Tensor:
    return as_mean_loss(bce_loss(probs, targets, **kwargs), "bce_loss(probs, targets)", probs.shape).detach()


@checks.of("bce_loss", rule="mean_bce")
def equals_nn_BCELoss_on_ordinary_probabilities(bce_loss, num_samples=16, seed=0):
    probs, targets = _probs_and_targets(num_samples, seed)
    loss = _loss(bce_loss, probs, targets)
    expected = nn.BCELoss()(probs, targets)
    if is_close(loss, expected * num_samples, rtol=1e-4):
        fail(f"bce_loss gives {number(float(loss))}, {num_samples} times nn.BCELoss's {number(float(expected))}: it "
             "sums over the samples, so the loss (and the step size) grows with the batch.", "sum_not_mean",
             fix="Take the mean: .mean(), not .sum().")
    if is_close(loss, -expected, rtol=1e-4):
        fail("bce_loss has the wrong sign: cross-entropy is minus the mean log-likelihood, a positive number.",
             "wrong_sign")
    expect(is_close(loss, expected, atol=1e-5),
           f"bce_loss gives {number(float(loss))}; nn.BCELoss gives {number(float(expected))} on the same "
           "probabilities.", "wrong_values", fix="-mean(y * log(p) + (1 - y) * log(1 - p)).")


@checks.of("bce_loss", rule="finite")
def stays_finite_when_a_probability_is_exactly_0_or_1(bce_loss):
    probs = torch.tensor([[0.0], [1.0], [0.5], [1.0]])
    targets = torch.tensor([[1.0], [0.0], [1.0], [1.0]])
    loss = _loss(bce_loss, probs, targets)
    expect(is_finite(loss),
           f"bce_loss returned {number(float(loss))} for a probability of exactly 0 (or 1) on the wrong target: "
           "log(0) is -inf, and 0 · log(0) is nan. Nothing keeps the probabilities away from 0 and 1; clamp the "
           "probabilities first.", "missing_clamp", fix="p = probs.clamp(eps, 1 - eps) before taking logs.")
    eps = 1e-7
    clamped = probs.double().clamp(eps, 1 - eps)
    expected = -(targets * clamped.log() + (1 - targets) * (1 - clamped).log()).mean()
    expect(is_close(loss, expected, rtol=1e-2, atol=1e-2),
           f"with the default eps=1e-7 the loss should be about {number(float(expected))} (a confident mistake "
           f"costs -log(eps)); found {number(float(loss))}.", "wrong_clamp",
           fix="Clamp with eps itself: probs.clamp(eps, 1 - eps).")


@checks.of("bce_loss", rule="eps")
def clamps_with_the_eps_it_is_given(bce_loss, eps=1e-3):
    probs = torch.tensor([[0.0], [1.0]])
    targets = torch.tensor([[1.0], [0.0]])
    loss = _loss(bce_loss, probs, targets, eps=eps)
    expected = -math.log(eps)
    expect(is_close(loss, torch.tensor(expected), rtol=1e-3),
           f"with eps={eps} a probability of 0 for a positive sample should cost -log(eps) = {expected:.4f}; "
           f"found {number(float(loss))}: the eps argument is not what clamps.", "eps_ignored",
           fix="probs.clamp(eps, 1 - eps), with the argument eps rather than a constant.")


@checks.of("bce_loss", rule="shape_mismatch")
def raises_ValueError_when_shapes_differ(bce_loss, num_samples=8, seed=0):
    probs, targets = _probs_and_targets(num_samples, seed)
    for p, t in ((probs, targets.reshape(-1)), (probs.reshape(-1), targets)):
        try:
            result = bce_loss(p, t)
        except ValueError:
            continue
        fail(f"bce_loss accepted probs of shape {shape_text(p.shape)} with targets of shape {shape_text(t.shape)} "
             f"and returned {describe(result)}. Broadcasting silently turns that pair into a ({num_samples}, "
             f"{num_samples}) matrix, and the loss into nonsense.", "broadcast_shape",
             fix="if probs.shape != targets.shape: raise ValueError(...)")


@checks.of("bce_loss", rule="differentiable")
def is_differentiable(bce_loss, num_samples=16, seed=0):
    probs, targets = _probs_and_targets(num_samples, seed)
    loss, (grad,) = probe(backward_through, bce_loss, (probs, targets), wrt=(0,))
    loss = as_mean_loss(loss, "bce_loss(probs, targets)", probs.shape)
    expect(loss.requires_grad, "bce_loss's result does not require grad: it was cut out of the graph (.item(), "
           ".detach() or a new torch.tensor(...)).", "detached", fix="Return the tensor expression itself.")
    expected = (probs - targets) / (probs * (1 - probs)) / num_samples
    expect(grad is not None and is_close(grad, expected, rtol=1e-3, atol=1e-5),
           "the gradient of bce_loss with respect to the probabilities is wrong.", "wrong_gradient")


# --- sgd_step -------------------------------------------------------------------


def _params_with_grads(seed: int, shapes=((4, 1), (1,))):
    """Parameters that require grad, with gradients of their own."""
    gen = torch.Generator().manual_seed(seed)
    params = [torch.randn(*shape, generator=gen).requires_grad_() for shape in shapes]
    _fill_grads(params, seed)
    return params


def _fill_grads(params, seed):
    gen = torch.Generator().manual_seed(seed + 1)
    loss = sum(((p - torch.randn(p.shape, generator=gen)) ** 2).sum() for p in params)
    loss.backward()


def _step(sgd_step, params, lr, callers: list | None = None):
    """``params`` after one ``sgd_step(params, lr)`` made where the learner's code runs (it changes them in
    place), as the container came back. ``callers``, when given, receives the caller's own tensors as they
    are afterwards (what every other reference to them sees)."""
    tensors = [keep(p) for p in params]  # each of the caller's tensors, where the learner's code runs
    theirs = keep(type(params)(tensors))
    try:
        sgd_step(theirs, lr)
    except RuntimeError as exc:
        if "leaf Variable that requires grad" in str(exc) or "in-place operation" in str(exc):
            fail("the update ran while autograd records (outside torch.no_grad()): PyTorch refuses an in-place "
                 "change of a leaf that requires grad then.", "update_in_graph",
                 fix="Put the update inside `with torch.no_grad():`.")
        raise
    if callers is not None:
        callers.extend(fetch(t) for t in tensors)
    return list(fetch(theirs))


# A recorded in-place update is refused by PyTorch as soon as it runs: the first check meets it.
@checks.of("sgd_step", rule=("update", "unrecorded"))
def moves_each_parameter_by_minus_lr_times_its_gradient(sgd_step, lr=0.1, seed=0):
    params = _params_with_grads(seed)
    before = [p.detach().clone() for p in params]
    expected = [(p - lr * p.grad).detach() for p in params]
    params = _step(sgd_step, params, lr)
    for i, (p, old, target) in enumerate(zip(params, before, expected)):
        if is_close(p, target, atol=1e-6):
            continue
        if is_close(p, old, atol=0, rtol=0):
            fail(f"parameter {i} did not change. `p = p - lr * p.grad` only rebinds the name p to a new tensor; the "
                 "caller's tensor stays as it was.", "not_in_place",
                 fix="Change the tensor itself in place: `p -= lr * p.grad` inside torch.no_grad().")
        fail(f"parameter {i} moved to values up to {biggest_gap(p, target):.3g} away from p - lr * p.grad.",
             "wrong_update")


@checks.of("sgd_step", rule="clear")
def clears_the_gradients_after_the_update(sgd_step, lr=0.1, seed=0):
    params = _step(sgd_step, _params_with_grads(seed), lr)
    for i, p in enumerate(params):
        grad = p.grad if p.is_leaf else None
        expect(grad is None or bool((grad == 0).all()),
               f"after sgd_step parameter {i}'s .grad still holds the old gradient. backward() adds to .grad, so the "
               "next step would follow the sum of every gradient so far.", "grads_not_zeroed",
               fix="Clear it after the update: p.grad.zero_() (or p.grad = None).")


@checks.of("sgd_step", rule=("unrecorded", "clear"))
def keeps_parameters_trainable_leaves_across_steps(sgd_step, lr=0.1, seed=0):
    params = _params_with_grads(seed)
    reference = [p.detach().clone().requires_grad_() for p in params]
    _fill_grads(reference, seed)
    for step in range(2):
        params = _step(sgd_step, params, lr)
        for i, p in enumerate(params):
            expect(p.grad_fn is None,
                   f"after step {step + 1}, parameter {i} is the result of a recorded operation, no longer a leaf: "
                   "the update went into the graph, and the next backward() will not fill its .grad.",
                   "update_in_graph", fix="Update in place under torch.no_grad(): p -= lr * p.grad.")
            expect(p.requires_grad,
                   f"after step {step + 1}, parameter {i} no longer requires grad: it was replaced by a new tensor "
                   "instead of being updated.", "not_in_place",
                   fix="Update in place under torch.no_grad(): p -= lr * p.grad.")
        _fill_grads(params, seed + 10 + step)
        with torch.no_grad():
            for p in reference:
                p -= lr * p.grad
                p.grad = None
        _fill_grads(reference, seed + 10 + step)
    expect(all(is_close(p, r, atol=1e-5) for p, r in zip(params, reference)),
           "two steps in a row did not match two steps with fresh gradients: gradients leak from one step into the "
           "next.", "grads_accumulate", fix="Clear each p.grad after its update.")


@checks.of("sgd_step", rule="update")
def moves_the_callers_own_tensors(sgd_step, lr=0.1, seed=0):
    params = _params_with_grads(seed, ((3, 1), (1,)))
    expected = [(p - lr * p.grad).detach() for p in params]
    callers: list = []
    listed = _step(sgd_step, params, lr, callers)
    for i, (p, mine, target) in enumerate(zip(listed, callers, expected)):
        if is_close(mine, target, atol=1e-6):
            continue
        if is_close(p, target, atol=1e-6):
            fail(f"the list now holds a new parameter {i} with the right values, but the caller's own tensor (W or b "
                 "in train_manual) did not move: every other reference to it still sees the old values.",
                 "not_in_place", fix="Change each tensor in place (p -= lr * p.grad under torch.no_grad()) instead "
                                     "of putting a new one into params.")
        fail(f"the caller's parameter {i} is up to {biggest_gap(mine, target):.3g} away from p - lr * p.grad.",
             "wrong_update")


_SHAPES = ((4, 1), (1,), (3, 2), (5,))


@checks.of("sgd_step", rule="every_param")
def updates_every_tensor_of_a_tuple_of_any_length(sgd_step, lr=0.1, seed=0, num_params=3):
    params = _params_with_grads(seed, _SHAPES[:num_params])
    expected = [(p - lr * p.grad).detach() for p in params]
    params = _step(sgd_step, tuple(params), lr)
    moved = [is_close(p, target, atol=1e-6) for p, target in zip(params, expected)]
    if not all(moved):
        fail(f"given a tuple of {num_params} parameters, sgd_step updated {sum(moved)} of them correctly (not "
             f"parameter {moved.index(False)}): it handles a fixed number of parameters.", "not_every_parameter",
             fix="Loop over whatever params holds: `for p in params:`.")
    expect(all(p.grad is None or bool((p.grad == 0).all()) for p in params),
           f"given a tuple of {num_params} parameters, sgd_step left a gradient uncleared.", "grads_not_zeroed")


# --- train_manual ---------------------------------------------------------------

FOUR = ("init_params", "forward", "bce_loss", "sgd_step")


def _train(train_manual, X, y, **settings):
    result = train_manual(X, y, **settings)
    return _trained(result, X, settings.get("epochs", 100))


def _trained(result, X, epochs):
    if type(result) not in (tuple, list) or len(result) != 3:
        fail(f"train_manual should return (W, b, losses); it returned {describe(result)}.", "wrong_return")
    W, b, losses = result
    W, b = as_tensor(W, "the returned W"), as_tensor(b, "the returned b")
    if type(losses) is not list:
        fail(f"losses should be a list of Python floats; it is {describe(losses)}.", "wrong_type",
             fix="losses = [] before the loop, and losses.append(loss.item()) in it.")
    expect(len(losses) == epochs, f"losses holds {len(losses)} values for epochs={epochs}; expected one per epoch.",
           "wrong_length")
    for value in losses:
        as_float(value, "each recorded loss")
    expect_shape(W, (X.shape[1], 1), "the returned W")
    expect_shape(b, (1,), "the returned b")
    return W.detach(), b.detach(), losses


def _other_data(num_samples: int, num_features: int, seed: int):
    """Labelled data unlike the notebook's: another number of samples and of features."""
    gen = torch.Generator().manual_seed(500 + seed)
    X = torch.randn(num_samples, num_features, generator=gen)
    y = ((X @ torch.randn(num_features, 1, generator=gen) + 0.3 * torch.randn(num_samples, 1, generator=gen)) > 0)
    return X, y.float()


@checks.of("train_manual", rule="returns")
def records_one_float_loss_per_epoch(train_manual, epochs=100, lr=0.1, seed=0):
    X, y = load_breast_cancer()
    _train(train_manual, X, y, epochs=epochs, lr=lr, seed=seed)


@checks.of("train_manual", rule="given_data")
def trains_on_the_X_and_y_it_is_given(train_manual, lr=0.1, seed=0):
    X, y = _other_data(48, 5, seed)
    try:
        result = train_manual(X, y, epochs=2, lr=lr, seed=seed)
    except (CheckFailure, NotImplementedError):
        raise
    except Exception as exc:
        fail(f"given 48 samples of 5 features, train_manual raised {getattr(exc, 'learner_type', type(exc).__name__)}: "
             f"{exc}. It trains on something else than the X and y it receives (a variable of the notebook?).",
             "ignores_given_data")
    if type(result) in (tuple, list) and len(result) == 3 and hasattr(result[0], "shape") \
            and tuple(result[0].shape) != (5, 1):
        fail(f"given 48 samples of 5 features, train_manual returned a W of shape {shape_text(result[0].shape)}: it "
             "trained on something else than the X and y it receives (a variable of the notebook?).",
             "ignores_given_data")
    _trained(result, X, 2)


@checks.of("train_manual", rule="uses_four")
def is_built_from_your_four_functions(train_manual, lr=0.1, seed=0):
    X, y = _other_data(40, 4, seed + 1)
    epochs = 3
    result, calls = probe(calls_to, train_manual, FOUR, (X, y), {"epochs": epochs, "lr": lr, "seed": seed})
    _trained(result, X, epochs)
    if calls is None:
        fail("train_manual is not a plain function of the notebook, so the check cannot see which functions it "
             "calls.", "not_built_from_four")
    unused = [name for name in FOUR if not calls.get(name)]
    expect(not unused,
           f"train_manual(epochs={epochs}) never called your {', '.join(f'`{n}`' for n in unused)}: it is to be "
           "built from your four functions, not from copies of them (a copy would not follow when you fix one).",
           "not_built_from_four", fix="Call init_params once, then forward, bce_loss and sgd_step in every epoch.")


def _blame(found: str, helpers: dict, names=FOUR, code: str | None = None, exercise: str = "train_manual") -> None:
    """Name the first of ``names`` (the learner's own functions) that fails its own checks as the cause."""
    for name in names:
        if name in helpers:
            cause = _failure_or_none(name, **helpers)
            if cause is not None:
                blame(exercise, found.rstrip("."), name, cause, code)


@checks.of("train_manual", rule="losses_measured")
def reports_the_losses_of_the_epochs_that_ran(train_manual, init_params, lr=0.1, seed=0):
    X, y = load_breast_cancer()
    k = 3
    W_k, b_k, short = _train(train_manual, X, y, epochs=k, lr=lr, seed=seed)
    *_, longer = _train(train_manual, X, y, epochs=k + 1, lr=lr, seed=seed)

    def loss_at(W, b) -> float:  # the loss the notebook states, at (W, b)
        p = torch.sigmoid(X.double() @ W.detach().double() + b.detach().double()).clamp(1e-7, 1 - 1e-7)
        return float(-(y * p.log() + (1 - y) * (1 - p).log()).mean())

    W0, b0 = _init(init_params, X.shape[1], seed)
    at_start = loss_at(W0, b0)
    if not math.isclose(short[0], at_start, rel_tol=1e-3, abs_tol=1e-4):
        fail(f"the first recorded loss is {short[0]:.5f}, but the loss of the starting point "
             f"init_params({X.shape[1]}, seed={seed}) is {at_start:.5f}: the first value must be the loss of the "
             "untrained model, measured by epoch 0's own forward pass, before its step.", "losses_not_measured",
             fix="In each epoch, record loss.item() of that epoch's forward pass.")
    after_k = loss_at(W_k, b_k)
    expect(math.isclose(longer[k], after_k, rel_tol=1e-3, abs_tol=1e-4),
           f"train_manual(epochs={k + 1}) records {longer[k]:.5f} for its last epoch, but the parameters that "
           f"train_manual(epochs={k}) returned have the loss {after_k:.5f}. The epoch after {k} steps must report the "
           "loss of those parameters: the losses are not measured where the parameters are, or the returned "
           "parameters are not the trained ones.", "losses_not_measured",
           fix="Record loss.item() of each epoch's forward pass, and return the W and b you trained.")
    expect(all(math.isclose(a, c, rel_tol=1e-5, abs_tol=1e-6) for a, c in zip(short, longer)),
           f"the first {k} losses of a {k + 1}-epoch run differ from those of a {k}-epoch run with the same seed: an "
           "epoch's loss cannot depend on how many epochs follow it.", "losses_not_measured")


@checks.of("train_manual", rule="one_step")
def each_epoch_takes_one_gradient_step_from_where_the_last_one_ended(train_manual, init_params, forward, bce_loss,
                                                                     sgd_step, lr=0.1, seed=0):
    X, y = load_breast_cancer()
    W0, b0 = _init(init_params, X.shape[1], seed)
    W0, b0 = W0.detach(), b0.detach()
    W1, b1, _ = _train(train_manual, X, y, epochs=1, lr=lr, seed=seed)
    W2, b2, _ = _train(train_manual, X, y, epochs=2, lr=lr, seed=seed)

    def gradient(W, b):  # of the stated loss at (W, b), as one backward() gives it
        W, b = W.clone().requires_grad_(), b.clone().requires_grad_()
        with torch.enable_grad():
            p = torch.sigmoid(X @ W + b).clamp(1e-7, 1 - 1e-7)
            (-(y * p.log() + (1 - y) * (1 - p).log()).mean()).backward()
        return W.grad, b.grad

    g0, g1 = gradient(W0, b0), gradient(W1, b1)
    helpers = {"init_params": init_params, "forward": forward, "bce_loss": bce_loss, "sgd_step": sgd_step}
    for label, W_before, b_before, W_after, b_after, grad, earlier in (
            ("the first epoch", W0, b0, W1, b1, g0, None), ("the second epoch", W1, b1, W2, b2, g1, g0)):
        step_W, step_b = W_before - lr * grad[0], b_before - lr * grad[1]
        if is_close(W_after, step_W, atol=1e-5, rtol=1e-4) and is_close(b_after, step_b, atol=1e-5, rtol=1e-4):
            continue
        if earlier is not None and is_close(W_after, W_before - lr * (grad[0] + earlier[0]), atol=1e-5, rtol=1e-4):
            found = ("the second epoch stepped along the sum of the first two gradients: the gradients are never "
                     "cleared, so each step follows all gradients so far.")
            _blame(found, helpers, ("sgd_step",), "grads_accumulate")
            fail(found, "grads_accumulate", fix="Clear the gradients after every step (your sgd_step does it).")
        start = "init_params(..., seed=seed)" if earlier is None else "the first epoch"
        found = (f"{label} moved W by up to {biggest_gap(W_after, step_W):.3g} away from one gradient step "
                 f"W - lr * W.grad at lr={lr}, from where {start} left it.")
        _blame(found, helpers, ("forward", "bce_loss", "sgd_step"))
        fail(f"{found} Each epoch takes exactly one step of gradient descent on the whole data, at this lr.",
             "not_gradient_descent",
             fix="Per epoch: forward on the whole X, bce_loss, backward(), one sgd_step([W, b], lr).")


@checks.of("train_manual", rule="seeded")
def the_seed_decides_the_starting_point(train_manual, init_params, lr=0.1, seed=0):
    X, y = load_breast_cancer()
    probe(torch.manual_seed, 1234)
    W1, _, first = _train(train_manual, X, y, epochs=1, lr=lr, seed=seed)
    probe(torch.manual_seed, 4321)
    W2, _, again = _train(train_manual, X, y, epochs=1, lr=lr, seed=seed)
    expect(is_close(W1, W2, atol=0, rtol=0) and first == again,
           f"two runs with seed={seed} trained different models: something else than init_params(..., seed=seed) "
           "is random.", "not_deterministic", fix="Start from init_params(X.shape[1], seed=seed), and draw nothing else.")
    W3, _, _ = _train(train_manual, X, y, epochs=1, lr=lr, seed=seed + 1)
    if is_close(W1, W3, atol=0, rtol=0):
        found = f"seed={seed} and seed={seed + 1} trained the same model."
        cause = _failure_or_none("init_params", init_params=init_params)
        if cause is not None:
            blame("train_manual", found.rstrip("."), "init_params", cause, "seed_ignored")
        fail(f"{found} The seed does not reach init_params.", "seed_ignored",
             fix="Pass the seed on: init_params(X.shape[1], seed=seed).")


@checks.of("train_manual", rule="learns")
def halves_the_loss_with_the_defaults(train_manual, forward, bce_loss, sgd_step, seed=0):
    X, y = load_breast_cancer()
    _, _, losses = _trained(train_manual(X, y, seed=seed), X, 100)
    expect(all(math.isfinite(v) for v in losses), "some recorded losses are nan or inf.", "not_finite")
    if losses[-1] > losses[0] / 2:
        found = f"with the defaults the loss went from {losses[0]:.4f} to {losses[-1]:.4f} in 100 epochs"
        _blame(found, {"forward": forward, "bce_loss": bce_loss, "sgd_step": sgd_step}, ("forward", "bce_loss",
                                                                                        "sgd_step"))
        fail(f"{found}; it should at least halve. Are the defaults epochs=100 and lr=0.1, and does each epoch step "
             "downhill?", "loss_not_decreasing")


@checks.of("train_manual", rule="learns")
def reaches_90_percent_training_accuracy_with_the_defaults(train_manual, seed=0):
    X, y = load_breast_cancer()
    W, b, _ = _trained(train_manual(X, y, seed=seed), X, 100)
    accuracy = float(((torch.sigmoid(X @ W + b) > 0.5).float() == y).float().mean())
    expect(accuracy >= 0.9, f"with the defaults the trained model classifies {accuracy:.1%} of the training set "
           "correctly; expected at least 90%.", "low_accuracy")


# --- challenge: fit_raw_measurements ------------------------------------------
#
# Graded by outcome: the learner designs the training (scaling, learning rate, epochs); the check trains on
# some tumours and measures the accuracy on others that the function never saw. The labels of those stay
# here, with the judge: predict receives the measurements only.

RAW_TARGET = 0.94
FIT_HELPERS = ("init_params", "forward", "bce_loss", "sgd_step", "train_manual")  # the root causes first


def raw_split(seed: int, scales: torch.Tensor | None = None):
    """(X_train, y_train, X_test, y_test): a seeded 80/20 split of the raw measurements,
    each column multiplied by ``scales`` when given (the same tumours measured in other units)."""
    X, y = load_breast_cancer_raw()
    if scales is not None:
        X = X * scales
    order = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed))
    cut = int(0.8 * len(X))
    return X[order[:cut]], y[order[:cut]], X[order[cut:]], y[order[cut:]]


def predictor(fit_raw_measurements, X_train, y_train):
    """The learner's predict function, trained on (X_train, y_train), and which of the learner's own
    functions the training called."""
    predict, calls = probe(calls_to, fit_raw_measurements, FIT_HELPERS, (X_train.clone(), y_train.clone()))
    if not is_callable(predict):
        fail(f"fit_raw_measurements should return a function predict(X_new); it returned {describe(predict)}.",
             "wrong_return")
    return predict, calls or {}


def probabilities(predict, X_new) -> torch.Tensor:
    probs = as_tensor(predict(X_new.clone()), "predict(X_new)")
    expect_shape(probs, (len(X_new), 1), "predict(X_new)", hint="One probability per tumour, as a column.")
    probs = probs.detach().float()
    expect(is_finite(probs) and float(probs.min()) >= 0 and float(probs.max()) <= 1,
           f"predict(X_new) holds values in [{float(probs.min()):.3g}, {float(probs.max()):.3g}]; probabilities lie "
           "in [0, 1]: these look like scores before the sigmoid.", "not_probabilities",
           fix="Return forward(...) of the new measurements, not X_new @ W + b.")
    return probs


def accuracy_of(probs: torch.Tensor, y: torch.Tensor) -> float:
    return float(((probs > 0.5).float() == y).float().mean())


def blame_what_it_used(found: str, calls: dict, helpers: dict) -> None:
    """Name the learner's own function that the training called and that fails its own checks, if any."""
    _blame(found, helpers, [name for name in FIT_HELPERS if calls.get(name)], exercise="fit_raw_measurements")


@checks.of("fit_raw_measurements", rule="predict")
def predict_returns_probabilities(fit_raw_measurements, seed=0):
    X_train, y_train, X_test, _ = raw_split(seed)
    predict, _ = predictor(fit_raw_measurements, X_train, y_train)
    probabilities(predict, X_test)


@checks.of("fit_raw_measurements", rule="per_sample")
def predicts_each_sample_on_its_own(fit_raw_measurements, seed=0):
    X_train, y_train, X_test, _ = raw_split(seed)
    predict, _ = predictor(fit_raw_measurements, X_train, y_train)
    batch = probabilities(predict, X_test[:8])
    alone = torch.cat([as_tensor(predict(X_test[i:i + 1].clone()), "predict(one tumour)").detach().float()
                       .reshape(-1, 1) for i in range(8)])
    gap = biggest_gap(alone, batch)
    expect(is_close(alone, batch, atol=1e-4),
           "predict gives a tumour another probability alone than in a batch of 8 ("
           + (f"up to {gap:.3g} apart" if math.isfinite(gap) else "alone, it gets nan") +
           "): it computes something from the batch itself, such as its mean and standard deviation.",
           "batch_dependent",
           fix="Compute every statistic predict needs from the training data, once, in fit_raw_measurements.")


@checks.of("fit_raw_measurements", rule="target")
def reaches_94_percent_on_held_out_tumours(fit_raw_measurements, train_manual, init_params, forward, bce_loss,
                                           sgd_step, seed=0):
    X_train, y_train, X_test, y_test = raw_split(seed)
    predict, calls = predictor(fit_raw_measurements, X_train, y_train)
    accuracy = accuracy_of(probabilities(predict, X_test), y_test)
    if accuracy < RAW_TARGET:
        found = (f"trained on 80% of the tumours (split seed {seed}), your model classifies {accuracy:.1%} of the "
                 f"other 20% correctly; the target is {RAW_TARGET:.0%}")
        blame_what_it_used(found, calls, {"train_manual": train_manual, "init_params": init_params,
                                          "forward": forward, "bce_loss": bce_loss, "sgd_step": sgd_step})
        fail(f"{found}. The raw columns range from fractions to thousands: do the columns reach the training on "
             "comparable scales, and does training run long enough?", "below_target")
