"""Checks for 02_manual_model: a logistic model written with tensors alone."""

from __future__ import annotations

import math

import torch
from torch import nn

from autograder.checks._support import (
    as_float,
    as_mean_loss,
    as_pair,
    as_tensor,
    biggest_gap,
    blame,
    failure_of,
    describe,
    expect_dtype,
    expect_shape,
    is_close,
    is_finite,
    number,
    shape_text,
    uniform_distance,
)
from autograder.checks._probes import backward_through
from autograder.data import load_breast_cancer, load_breast_cancer_raw
from autograder.learner import fetch, keep, probe
from autograder.registry import Checks
from autograder.results import expect, fail

checks = Checks("02_manual_model")


def _random_problem(num_samples: int, num_features: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(num_samples, num_features, generator=gen)
    W = torch.randn(num_features, 1, generator=gen) * 0.5
    b = torch.randn(1, generator=gen) * 0.5
    return X, W, b


# --- init_params ----------------------------------------------------------------
#
# Clauses of init_params (text and contract) -> the check that enforces each:
#   returns (W, b), W (num_features, 1), b (1,)               -> W_has_one_row_per_feature_and_b_one_value
#   float32 leaf tensors with requires_grad=True              -> parameters_are_float32_leaves_that_require_grad
#   W within ±1/sqrt(n); b zero or within the same range      -> values_lie_within_plus_minus_one_over_sqrt_n
#   W uniform over that range (not normal, not one-sided)     -> W_is_uniform_over_the_whole_range
#   same seed, same values; another seed, other values        -> same_seed_gives_same_values_and_another_seed_others
#   draws from its own torch.Generator(seed): global RNG intact -> leaves_the_global_random_stream_alone


def _init(init_params, num_features: int, seed: int):
    W, b = as_pair(init_params(num_features, seed=seed), "init_params")
    return as_tensor(W, "W"), as_tensor(b, "b")


@checks.of("init_params")
def W_has_one_row_per_feature_and_b_one_value(init_params, num_features=5, seed=0):
    W, b = _init(init_params, num_features, seed)
    if tuple(W.shape) == (1, num_features) and num_features > 1:
        fail(f"W has shape {shape_text(W.shape)}, nn.Linear's layout. Here the model computes X @ W, "
             f"so W needs one row per feature: shape ({num_features}, 1).", "weight_layout_transposed")
    if tuple(W.shape) == (num_features,):
        fail(f"W is 1-D with shape ({num_features},), so X @ W gives shape (N,) instead of (N, 1) "
             f"and the targets broadcast against it. Make W ({num_features}, 1).", "wrong_shape")
    expect_shape(W, (num_features, 1), "W")
    expect_shape(b, (1,), "b", hint="One bias for the one output.")


@checks.of("init_params")
def parameters_are_float32_leaves_that_require_grad(init_params, num_features=5, seed=0):
    W, b = _init(init_params, num_features, seed)
    for name, tensor in (("W", W), ("b", b)):
        expect_dtype(tensor, torch.float32, name)
        expect(tensor.requires_grad,
               f"{name} does not require grad, so backward() will never fill {name}.grad. "
               "Call .requires_grad_() on it (or pass requires_grad=True).", "no_requires_grad")
        expect(tensor.is_leaf,
               f"{name} is not a leaf tensor: it was computed from a tensor that already required grad "
               f"(for example torch.rand(..., requires_grad=True) * 2 - 1), so {name}.grad stays None. "
               "Compute the values first, then call .requires_grad_() on the result.", "not_leaf")


@checks.of("init_params")
def values_lie_within_plus_minus_one_over_sqrt_n(init_params, num_features=5, seed=0):
    for n in sorted({num_features, 1, 256}):
        bound = 1 / math.sqrt(n)
        W, b = _init(init_params, n, seed)
        W, b = W.detach(), b.detach()
        worst = float(W.abs().max())
        expect(worst <= bound + 1e-6,
               f"with {n} feature{'s' if n > 1 else ''} W holds {worst:.4f}, outside "
               f"[-{bound:.4f}, {bound:.4f}] = ±1/sqrt({n}).", "out_of_range")
        expect(float(b.abs().max()) <= bound + 1e-6,
               f"with {n} features b = {number(float(b.abs().max()))}; it should be 0 or within ±1/sqrt({n}).",
               "out_of_range")


@checks.of("init_params")
def W_is_uniform_over_the_whole_range(init_params, seed=0):
    n = 4096
    bound = 1 / math.sqrt(n)
    W, _ = _init(init_params, n, seed)
    W = W.detach().double()
    if float(W.min()) >= -1e-9:
        fail(f"with {n} features every weight is >= 0: torch.rand draws from [0, 1), so shift it to cover "
             f"[-{bound:.4f}, {bound:.4f}] as well: (torch.rand(...) * 2 - 1) * bound.", "not_uniform")
    at_edges = float(((W.abs() - bound).abs() < 1e-7 * bound + 1e-9).double().mean())
    distance = uniform_distance(W, -bound, bound)
    # For a uniform sample of 4096 values the distance exceeds 0.05 with probability below 1e-8;
    # a normal sample clamped to the range, or squeezed into its middle, lands far above it.
    if distance > 0.05:
        detail = (f" {at_edges:.0%} of the weights sit exactly on ±bound: that is what clamping a normal draw does."
                  if at_edges > 0.05 else "")
        fail(f"with {n} features the weights are not spread evenly over [-{bound:.4f}, {bound:.4f}]: their "
             f"cumulative distribution is up to {distance:.2f} away from the uniform one (at most 0.05 "
             f"expected).{detail} Draw uniformly: torch.rand gives [0, 1); stretch and shift it.", "not_uniform")


@checks.of("init_params")
def same_seed_gives_same_values_and_another_seed_others(init_params, num_features=5, seed=0):
    probe(torch.manual_seed, 1234)
    W1, b1 = _init(init_params, num_features, seed)
    probe(torch.manual_seed, 4321)
    W2, b2 = _init(init_params, num_features, seed)
    expect(is_close(W1, W2, atol=0, rtol=0) and is_close(b1, b2, atol=0, rtol=0),
           f"two calls with seed={seed} gave different values. Draw from torch.Generator().manual_seed(seed), "
           "passed as generator=... to torch.rand.", "not_deterministic")
    W3, _ = _init(init_params, num_features, seed + 1)
    expect(not is_close(W1, W3, atol=0, rtol=0),
           f"seed={seed} and seed={seed + 1} gave the same W: the seed argument is ignored.", "seed_ignored")


@checks.of("init_params")
def leaves_the_global_random_stream_alone(init_params, num_features=5, seed=0):
    probe(torch.manual_seed, 99)
    before = probe(torch.get_rng_state)
    _init(init_params, num_features, seed)
    expect(bool(torch.equal(before, probe(torch.get_rng_state))),
           "init_params changed PyTorch's global random state: it reseeded it (torch.manual_seed) or drew from it, "
           "so every other random number in the notebook shifts when init_params is called. Draw from your own "
           "torch.Generator().manual_seed(seed), passed as generator=... to torch.rand.", "global_rng")


# --- forward ------------------------------------------------------------------
#
# Clauses of forward -> checks:
#   sigmoid(X @ W + b), shape (N, 1), for any N and feature count  -> computes_sigmoid_of_X_W_plus_b_with_shape_N_by_1
#   keeps the graph: gradients reach W and b                       -> keeps_the_graph_so_gradients_reach_W_and_b


@checks.of("forward")
def computes_sigmoid_of_X_W_plus_b_with_shape_N_by_1(forward, num_samples=7, num_features=5, seed=0):
    X, W, b = _random_problem(num_samples, num_features, seed)
    out = as_tensor(forward(X, W, b), "forward(X, W, b)")
    expected = torch.sigmoid(X @ W + b)
    if tuple(out.shape) == (num_samples,):
        fail(f"forward returned shape ({num_samples},); expected ({num_samples}, 1). Keep the column: the "
             "targets are (N, 1), and (N,) against (N, 1) broadcasts to an (N, N) matrix in the loss.",
             "broadcast_shape")
    expect_shape(out, (num_samples, 1), "forward(X, W, b)")
    if is_close(out, X @ W + b, atol=1e-5):
        fail("forward returned X @ W + b, the logits: apply torch.sigmoid to turn them into probabilities.",
             "missing_sigmoid")
    if is_close(out, torch.sigmoid(torch.sigmoid(X @ W + b)), atol=1e-5):
        fail("forward applied the sigmoid twice.", "double_sigmoid")
    expect(is_close(out, expected, atol=1e-5),
           f"forward differs from sigmoid(X @ W + b) by up to {biggest_gap(out, expected):.3g}.", "wrong_values")


@checks.of("forward")
def keeps_the_graph_so_gradients_reach_W_and_b(forward, num_samples=7, num_features=5, seed=0):
    X, W, b = _random_problem(num_samples, num_features, seed)
    out, (W_grad, b_grad) = probe(backward_through, forward, (X, W, b), wrt=(1, 2))
    out = as_tensor(out, "forward(X, W, b)")
    expect(out.requires_grad,
           "the output of forward does not require grad, so no gradient can reach W and b. "
           "Do not detach, call .item()/.numpy() or use torch.no_grad() inside forward.", "detached")
    expect(W_grad is not None and b_grad is not None, "backward() through forward left W.grad or b.grad empty.",
           "detached")


# --- bce_loss ------------------------------------------------------------------
#
# Clauses of bce_loss -> checks:
#   the mean (not the sum) of the stated formula, a 0-dim tensor,
#     equal to nn.BCELoss within 1e-5 on probabilities in [0.001, 0.999] -> equals_nn_BCELoss_on_ordinary_probabilities
#   clamps to [eps, 1 - eps]: finite at exactly 0 or 1               -> stays_finite_when_a_probability_is_exactly_0_or_1
#   clamps with the eps it is given                                   -> clamps_with_the_eps_it_is_given
#   ValueError when the shapes differ, either way round               -> raises_ValueError_when_shapes_differ
#   differentiable (stays in the graph)                               -> is_differentiable


def _probs_and_targets(num_samples: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    probs = torch.rand(num_samples, 1, generator=gen) * 0.998 + 0.001
    targets = (torch.rand(num_samples, 1, generator=gen) > 0.5).float()
    return probs, targets


def _loss(bce_loss, probs, targets, **kwargs) -> torch.Tensor:
    return as_mean_loss(bce_loss(probs, targets, **kwargs), "bce_loss(probs, targets)", probs.shape)


@checks.of("bce_loss")
def equals_nn_BCELoss_on_ordinary_probabilities(bce_loss, num_samples=16, seed=0):
    probs, targets = _probs_and_targets(num_samples, seed)
    loss = _loss(bce_loss, probs, targets)
    expected = nn.BCELoss()(probs, targets)
    if is_close(loss, expected * num_samples, rtol=1e-4):
        fail(f"bce_loss gives {number(float(loss))}, {num_samples} times nn.BCELoss's {number(float(expected))}: "
             "it sums over the samples. Take the mean, so the loss (and the step size) does not grow with the batch.",
             "sum_not_mean")
    if is_close(loss, -expected, rtol=1e-4):
        fail("bce_loss has the wrong sign: cross-entropy is minus the mean log-likelihood.", "wrong_sign")
    expect(is_close(loss, expected, atol=1e-5),
           f"bce_loss gives {number(float(loss))}; nn.BCELoss gives {number(float(expected))} on the same "
           "probabilities. The formula is -mean(y * log(p) + (1 - y) * log(1 - p)).", "wrong_values")


@checks.of("bce_loss")
def stays_finite_when_a_probability_is_exactly_0_or_1(bce_loss):
    probs = torch.tensor([[0.0], [1.0], [0.5], [1.0]])
    targets = torch.tensor([[1.0], [0.0], [1.0], [1.0]])
    loss = _loss(bce_loss, probs, targets)
    expect(is_finite(loss),
           f"bce_loss returned {number(float(loss))} for a probability of exactly 0 (or 1) on the wrong target: "
           "log(0) is -inf. Clamp the probabilities to [eps, 1 - eps] before taking logs.", "missing_clamp")
    eps = 1e-7
    clamped = probs.clamp(eps, 1 - eps)
    expected = -(targets * clamped.log() + (1 - targets) * (1 - clamped).log()).mean()
    expect(is_close(loss, expected, rtol=1e-3, atol=1e-3),
           f"with the default eps=1e-7 the loss should be {number(float(expected))}, found {number(float(loss))}. "
           "Clamp with `eps` itself: probs.clamp(eps, 1 - eps).", "wrong_clamp")


@checks.of("bce_loss")
def clamps_with_the_eps_it_is_given(bce_loss, eps=1e-3):
    probs = torch.tensor([[0.0], [1.0]])
    targets = torch.tensor([[1.0], [0.0]])
    loss = _loss(bce_loss, probs, targets, eps=eps)
    expected = -math.log(eps)
    expect(is_close(loss, torch.tensor(expected), rtol=1e-3),
           f"with eps={eps} a probability of 0 for a positive sample should cost -log(eps) = {expected:.4f}; "
           f"found {number(float(loss))}. Use the eps argument rather than a constant.", "eps_ignored")


@checks.of("bce_loss")
def raises_ValueError_when_shapes_differ(bce_loss, num_samples=8, seed=0):
    probs, targets = _probs_and_targets(num_samples, seed)
    for p, t in ((probs, targets.reshape(-1)), (probs.reshape(-1), targets)):
        try:
            result = bce_loss(p, t)
        except ValueError:
            continue
        fail(f"bce_loss accepted probs of shape {shape_text(p.shape)} with targets of shape {shape_text(t.shape)} "
             f"and returned {describe(result)}. Broadcasting silently turns that pair into a ({num_samples}, "
             f"{num_samples}) matrix, and the loss into nonsense: compare the shapes and raise ValueError.",
             "broadcast_shape")


@checks.of("bce_loss")
def is_differentiable(bce_loss, num_samples=16, seed=0):
    probs, targets = _probs_and_targets(num_samples, seed)
    loss, (grad,) = probe(backward_through, bce_loss, (probs, targets), wrt=(0,))
    loss = as_mean_loss(loss, "bce_loss(probs, targets)", probs.shape)
    expect(loss.requires_grad, "bce_loss's result does not require grad: it must stay in the graph.", "detached")
    expected = (probs - targets) / (probs * (1 - probs)) / num_samples
    expect(grad is not None and is_close(grad, expected, rtol=1e-3, atol=1e-5),
           "the gradient of bce_loss with respect to the probabilities is wrong.", "wrong_gradient")


# --- sgd_step -------------------------------------------------------------------
#
# Clauses of sgd_step -> checks:
#   p moves by -lr * p.grad, in place                              -> moves_each_parameter_by_minus_lr_times_its_gradient
#   every tensor in params, a list or a tuple of any length        -> updates_every_tensor_of_a_tuple_of_any_length
#   then its gradient is cleared (zeros or None)                   -> clears_the_gradients_after_the_update
#   unrecorded: parameters stay leaves that require grad, and steps
#     in a row match steps with fresh gradients                    -> keeps_parameters_trainable_leaves_across_steps


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


def _step(sgd_step, params, lr):
    """``params`` after one ``sgd_step(params, lr)`` made where the learner's code runs (it changes them in
    place), as they came back: values, gradients, and whether each is still a leaf that requires grad."""
    theirs = keep(type(params)(params))
    try:
        sgd_step(theirs, lr)
    except RuntimeError as exc:
        if "leaf Variable that requires grad" in str(exc) or "in-place operation" in str(exc):
            fail("the update was recorded by autograd: PyTorch refuses an in-place change of a leaf that "
                 "requires grad. Put the update inside `with torch.no_grad():`.", "update_in_graph")
        raise
    return list(fetch(theirs))


@checks.of("sgd_step")
def moves_each_parameter_by_minus_lr_times_its_gradient(sgd_step, lr=0.1, seed=0):
    params = _params_with_grads(seed)
    before = [p.detach().clone() for p in params]
    expected = [(p - lr * p.grad).detach() for p in params]
    params = _step(sgd_step, params, lr)
    for i, (p, old, target) in enumerate(zip(params, before, expected)):
        if is_close(p, target, atol=1e-6):
            continue
        if is_close(p, old, atol=0, rtol=0):
            fail(f"parameter {i} did not change. `p = p - lr * p.grad` only rebinds the name p to a new "
                 "tensor; change the tensor itself in place: `p -= lr * p.grad` inside torch.no_grad().",
                 "not_in_place")
        fail(f"parameter {i} moved to values up to {biggest_gap(p, target):.3g} away from p - lr * p.grad.",
             "wrong_update")


@checks.of("sgd_step")
def clears_the_gradients_after_the_update(sgd_step, lr=0.1, seed=0):
    params = _step(sgd_step, _params_with_grads(seed), lr)
    for i, p in enumerate(params):
        expect(p.grad is None or bool((p.grad == 0).all()),
               f"after sgd_step parameter {i}'s .grad still holds the old gradient. backward() adds to .grad, "
               "so the next step would use the sum of every gradient so far. Clear it: p.grad.zero_() "
               "(or p.grad = None).", "grads_not_zeroed")


@checks.of("sgd_step")
def keeps_parameters_trainable_leaves_across_steps(sgd_step, lr=0.1, seed=0):
    params = _params_with_grads(seed)
    reference = [p.detach().clone().requires_grad_() for p in params]
    _fill_grads(reference, seed)
    for step in range(2):
        params = _step(sgd_step, params, lr)
        for i, p in enumerate(params):
            expect(p.grad_fn is None,
                   f"after step {step + 1}, parameter {i} is the result of a recorded operation, no longer a leaf: "
                   "the update went into the graph. Do it in place under torch.no_grad().", "update_in_graph")
            expect(p.requires_grad,
                   f"after step {step + 1}, parameter {i} no longer requires grad: it was replaced by a new tensor "
                   "instead of being updated in place (`p -= lr * p.grad` under torch.no_grad()).", "not_in_place")
        _fill_grads(params, seed + 10 + step)
        with torch.no_grad():
            for p in reference:
                p -= lr * p.grad
                p.grad = None
        _fill_grads(reference, seed + 10 + step)
    expect(all(is_close(p, r, atol=1e-5) for p, r in zip(params, reference)),
           "two steps in a row did not match two steps with fresh gradients: gradients leak from one step "
           "into the next.", "grads_accumulate")


_SHAPES = ((4, 1), (1,), (3, 2), (5,))


@checks.of("sgd_step")
def updates_every_tensor_of_a_tuple_of_any_length(sgd_step, lr=0.1, seed=0, num_params=3):
    params = _params_with_grads(seed, _SHAPES[:num_params])
    expected = [(p - lr * p.grad).detach() for p in params]
    params = _step(sgd_step, tuple(params), lr)
    moved = [is_close(p, target, atol=1e-6) for p, target in zip(params, expected)]
    if not all(moved):
        fail(f"given a tuple of {num_params} parameters, sgd_step updated {sum(moved)} of them correctly "
             f"(not parameter {moved.index(False)}). Loop over whatever params holds: `for p in params:`.",
             "not_every_parameter")
    expect(all(p.grad is None or bool((p.grad == 0).all()) for p in params),
           f"given a tuple of {num_params} parameters, sgd_step left a gradient uncleared.", "grads_not_zeroed")


# --- train_manual ---------------------------------------------------------------
#
# Clauses of train_manual -> the check that enforces each:
#   returns (W, b, losses), losses a list of `epochs` Python floats   -> records_one_float_loss_per_epoch
#   losses[e] is the loss of epoch e's forward pass, before its step;
#     the list reports the epochs that ran, nothing invented          -> reports_the_losses_of_the_epochs_that_ran
#   starts from init_params(num_features, seed): same seed, same
#     model; another seed, another model                              -> the_seed_decides_the_starting_point
#   last loss at most half the first                                  -> halves_the_loss
#   training accuracy on breast cancer at least 0.9                   -> reaches_90_percent_training_accuracy
#   each epoch: one full-batch gradient step (forward, bce_loss, backward, sgd_step at this lr)
#     from where the last one ended
#       -> each_epoch_takes_one_gradient_step_from_where_the_last_one_ended
#          (epochs 1 and 2 against the stated update rule p - lr * p.grad)
#   the same over all epochs, on the X and y it is given (any size)
#       -> instructor: follows_gradient_descent_step_by_step (a reference run, also on hidden data)


def _train(train_manual, epochs, lr, seed, X=None, y=None):
    if X is None:
        X, y = load_breast_cancer()
    result = train_manual(X, y, epochs=epochs, lr=lr, seed=seed)
    if type(result) not in (tuple, list) or len(result) != 3:
        fail(f"train_manual should return (W, b, losses); it returned {describe(result)}.", "wrong_return")
    W, b, losses = result
    W, b = as_tensor(W, "the returned W"), as_tensor(b, "the returned b")
    if type(losses) is not list:
        fail(f"losses should be a list of Python floats; it is {describe(losses)}.", "wrong_type")
    expect(len(losses) == epochs, f"losses holds {len(losses)} values for epochs={epochs}; expected one per epoch.",
           "wrong_length")
    for value in losses:
        as_float(value, "each recorded loss")
    expect_shape(W, (X.shape[1], 1), "the returned W")
    expect_shape(b, (1,), "the returned b")
    return X, y, W.detach(), b.detach(), losses


def stated_bce(X, y, W, b, eps=1e-7) -> float:
    """The notebook's formula: mean binary cross-entropy of sigmoid(X @ W + b), clamped to [eps, 1 - eps]."""
    with torch.no_grad():
        p = torch.sigmoid(X.double() @ W.detach().double() + b.detach().double()).clamp(eps, 1 - eps)
        return float(-(y * p.log() + (1 - y) * (1 - p).log()).mean())


@checks.of("train_manual")
def records_one_float_loss_per_epoch(train_manual, epochs=100, lr=0.1, seed=0):
    _train(train_manual, epochs, lr, seed)


@checks.of("train_manual")
def reports_the_losses_of_the_epochs_that_ran(train_manual, init_params, lr=0.1, seed=0):
    X, y = load_breast_cancer()
    k = 3
    *_, W_k, b_k, short = _train(train_manual, k, lr, seed, X, y)
    *_, longer = _train(train_manual, k + 1, lr, seed, X, y)
    W0, b0 = _init(init_params, X.shape[1], seed)
    at_start = stated_bce(X, y, W0, b0)
    if not math.isclose(short[0], at_start, rel_tol=1e-3, abs_tol=1e-4):
        fail(f"the first recorded loss is {short[0]:.5f}, but the loss of the starting point "
             f"init_params({X.shape[1]}, seed={seed}) is {at_start:.5f}. Record loss.item() of each epoch's own "
             "forward pass, before its step: the first value is the loss of the untrained model.",
             "losses_not_measured")
    after_k = stated_bce(X, y, W_k, b_k)
    expect(math.isclose(longer[k], after_k, rel_tol=1e-3, abs_tol=1e-4),
           f"train_manual(epochs={k + 1}) records {longer[k]:.5f} for its last epoch, but the parameters that "
           f"train_manual(epochs={k}) returned have the loss {after_k:.5f}. The epoch after {k} steps must report "
           "the loss of those parameters: record loss.item() of each epoch's forward pass, and return the "
           "parameters you trained.", "losses_not_measured")
    expect(all(math.isclose(a, c, rel_tol=1e-5, abs_tol=1e-6) for a, c in zip(short, longer)),
           f"the first {k} losses of a {k + 1}-epoch run differ from those of a {k}-epoch run with the same seed: "
           "an epoch's loss cannot depend on how many epochs follow it.", "losses_not_measured")


def _blame_sgd_step(found: str, sgd_step, code: str | None = None) -> None:
    """Name sgd_step as the cause of train_manual's failure when sgd_step fails its own checks."""
    cause = failure_of("sgd_step", sgd_step=sgd_step)
    if cause is not None:
        blame("train_manual", found.rstrip("."), "sgd_step", cause, code)


def _stated_gradient(X, y, W, b):
    """The gradient of the notebook's loss at (W, b), by autograd, as one backward() gives it."""
    W, b = (t.detach().clone().requires_grad_() for t in (W, b))
    with torch.enable_grad():
        p = torch.sigmoid(X @ W + b).clamp(1e-7, 1 - 1e-7)
        (-(y * p.log() + (1 - y) * (1 - p).log()).mean()).backward()
    return W.grad, b.grad


@checks.of("train_manual")
def each_epoch_takes_one_gradient_step_from_where_the_last_one_ended(train_manual, init_params, sgd_step, lr=0.1,
                                                                     seed=0):
    X, y = load_breast_cancer()
    W0, b0 = _init(init_params, X.shape[1], seed)
    W0, b0 = W0.detach(), b0.detach()
    *_, W1, b1, _ = _train(train_manual, 1, lr, seed, X, y)
    *_, W2, b2, _ = _train(train_manual, 2, lr, seed, X, y)
    g0, g1 = _stated_gradient(X, y, W0, b0), _stated_gradient(X, y, W1, b1)
    for label, W_before, b_before, W_after, b_after, grad, earlier in (
            ("the first epoch", W0, b0, W1, b1, g0, None), ("the second epoch", W1, b1, W2, b2, g1, g0)):
        step_W, step_b = W_before - lr * grad[0], b_before - lr * grad[1]
        if is_close(W_after, step_W, atol=1e-5, rtol=1e-4) and is_close(b_after, step_b, atol=1e-5, rtol=1e-4):
            continue
        if earlier is not None and is_close(W_after, W_before - lr * (grad[0] + earlier[0]), atol=1e-5, rtol=1e-4):
            found = ("the second epoch stepped along the sum of the first two gradients: the gradients are never "
                     "cleared, so each step follows all gradients so far.")
            _blame_sgd_step(found, sgd_step, "grads_accumulate")
            fail(f"{found} Clear them after every step.", "grads_accumulate")
        start = "init_params(..., seed=seed)" if earlier is None else "the first epoch"
        found = (f"{label} moved W by up to {biggest_gap(W_after, step_W):.3g} away from one gradient step "
                 f"W - lr * W.grad at lr={lr}, from where {start} left it.")
        _blame_sgd_step(found, sgd_step)
        fail(f"{found} Each epoch runs forward on the whole X, bce_loss, backward and one sgd_step with this lr.",
             "not_gradient_descent")


@checks.of("train_manual")
def the_seed_decides_the_starting_point(train_manual, init_params, lr=0.1, seed=0):
    X, y = load_breast_cancer()
    probe(torch.manual_seed, 1234)
    _, _, W1, b1, first = _train(train_manual, 1, lr, seed, X, y)
    probe(torch.manual_seed, 4321)
    _, _, W2, b2, again = _train(train_manual, 1, lr, seed, X, y)
    expect(is_close(W1, W2, atol=0, rtol=0) and first == again,
           f"two runs with seed={seed} trained different models: the starting point must come from "
           "init_params(num_features, seed=seed), and nothing else random.", "not_deterministic")
    _, _, W3, _, _ = _train(train_manual, 1, lr, seed + 1, X, y)
    if is_close(W1, W3, atol=0, rtol=0):
        found = f"seed={seed} and seed={seed + 1} trained the same model."
        cause = failure_of("init_params", init_params=init_params)
        if cause is not None:
            blame("train_manual", found.rstrip("."), "init_params", cause, "seed_ignored")
        fail(f"{found} Pass the seed on: init_params(X.shape[1], seed=seed).", "seed_ignored")


@checks.of("train_manual")
def halves_the_loss(train_manual, sgd_step, epochs=100, lr=0.1, seed=0):
    *_, losses = _train(train_manual, epochs, lr, seed)
    expect(all(math.isfinite(v) for v in losses), "some recorded losses are nan or inf.", "not_finite")
    if losses[-1] > losses[0] / 2:
        found = f"the loss went from {losses[0]:.4f} to {losses[-1]:.4f} in {epochs} epochs at lr={lr}."
        _blame_sgd_step(found, sgd_step)
        fail(f"{found} It should at least halve. Check that each epoch computes gradients, steps, and clears them.",
             "loss_not_decreasing")


@checks.of("train_manual")
def reaches_90_percent_training_accuracy(train_manual, epochs=100, lr=0.1, seed=0):
    X, y, W, b, _ = _train(train_manual, epochs, lr, seed)
    with torch.no_grad():
        accuracy = float(((torch.sigmoid(X @ W + b) > 0.5).float() == y).float().mean())
    expect(accuracy >= 0.9, f"the trained model classifies {accuracy:.1%} of the training set correctly; "
           "expected at least 90%.", "low_accuracy")


# --- challenge: fit_raw_measurements ------------------------------------------
#
# Graded by outcome: the learner designs the training (scaling, learning rate, epochs); the check
# trains on some tumours and measures the accuracy on others that the function never saw.
# Clauses -> checks:
#   returns a function predict(X_new) -> float probabilities (N, 1) in [0, 1]  -> predict_returns_probabilities
#   a tumour's probability does not depend on the batch it comes in          -> predicts_each_sample_on_its_own
#   accuracy at least 0.94 on held-out tumours (the notebook's split)        -> reaches_94_percent_on_held_out_tumours
#   the same on hidden splits, with some columns in other units              -> instructor: ..._on_hidden_splits

RAW_TARGET = 0.94


def raw_split(seed: int, scales: torch.Tensor | None = None):
    """(X_train, y_train, X_test, y_test): a seeded 80/20 split of the raw measurements,
    each column multiplied by ``scales`` when given (the same tumours measured in other units)."""
    X, y = load_breast_cancer_raw()
    if scales is not None:
        X = X * scales
    order = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed))
    cut = int(0.8 * len(X))
    return X[order[:cut]], y[order[:cut]], X[order[cut:]], y[order[cut:]]


def _predictor(fit_raw_measurements, X_train, y_train):
    predict = fit_raw_measurements(X_train.clone(), y_train.clone())
    if not callable(predict):
        fail(f"fit_raw_measurements should return a function predict(X_new); it returned {describe(predict)}.",
             "wrong_return")
    return predict


def _probabilities(predict, X_new) -> torch.Tensor:
    with torch.no_grad():
        probs = as_tensor(predict(X_new.clone()), "predict(X_new)")
    expect_shape(probs, (len(X_new), 1), "predict(X_new)", hint="One probability per tumour, as a column.")
    probs = probs.detach().float()
    expect(is_finite(probs) and float(probs.min()) >= 0 and float(probs.max()) <= 1,
           f"predict(X_new) holds values in [{float(probs.min()):.3g}, {float(probs.max()):.3g}]; probabilities lie "
           "in [0, 1] (apply the sigmoid).", "not_probabilities")
    return probs


def held_out_accuracy(fit_raw_measurements, seed: int, scales: torch.Tensor | None = None) -> float:
    X_train, y_train, X_test, y_test = raw_split(seed, scales)
    probs = _probabilities(_predictor(fit_raw_measurements, X_train, y_train), X_test)
    return float(((probs > 0.5).float() == y_test).float().mean())


@checks.of("fit_raw_measurements")
def predict_returns_probabilities(fit_raw_measurements, seed=0):
    X_train, y_train, X_test, _ = raw_split(seed)
    _probabilities(_predictor(fit_raw_measurements, X_train, y_train), X_test)


@checks.of("fit_raw_measurements")
def predicts_each_sample_on_its_own(fit_raw_measurements, seed=0):
    X_train, y_train, X_test, _ = raw_split(seed)
    predict = _predictor(fit_raw_measurements, X_train, y_train)
    batch = _probabilities(predict, X_test[:8])
    with torch.no_grad():
        alone = [predict(X_test[i:i + 1].clone()) for i in range(8)]
    alone = torch.cat([as_tensor(p, "predict(one tumour)").detach().float().reshape(-1, 1) for p in alone])
    expect(is_close(alone, batch, atol=1e-4),
           f"predict gives a tumour another probability alone than in a batch of 8 (up to "
           f"{biggest_gap(alone, batch):.3g} apart): it computes something from the batch itself, such as its mean "
           "and standard deviation. Everything predict needs must come from the training data.", "batch_dependent")


@checks.of("fit_raw_measurements")
def reaches_94_percent_on_held_out_tumours(fit_raw_measurements, seed=0):
    accuracy = held_out_accuracy(fit_raw_measurements, seed)
    expect(accuracy >= RAW_TARGET,
           f"trained on 80% of the tumours (split seed {seed}), your model classifies {accuracy:.1%} of the other "
           f"20% correctly; the target is {RAW_TARGET:.0%}. The raw columns range from fractions to thousands: "
           "look at the hints.", "below_target")
