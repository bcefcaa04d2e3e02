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
    describe,
    expect_dtype,
    expect_shape,
    is_close,
    is_finite,
    number,
    shape_text,
)
from autograder.data import load_breast_cancer
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
def values_are_uniform_in_plus_minus_one_over_sqrt_n(init_params, num_features=5, seed=0):
    for n in (num_features, 256):
        bound = 1 / math.sqrt(n)
        W, b = _init(init_params, n, seed)
        W, b = W.detach(), b.detach()
        worst = float(W.abs().max())
        expect(worst <= bound + 1e-6,
               f"with {n} features W holds {worst:.4f}, outside [-{bound:.4f}, {bound:.4f}] = ±1/sqrt({n}).",
               "out_of_range")
        expect(float(b.abs().max()) <= bound + 1e-6,
               f"with {n} features b = {number(float(b.abs().max()))}; it should be 0 or within ±1/sqrt({n}).",
               "out_of_range")
    # 256 draws from the whole range land on both sides of zero and spread out.
    expect(float(W.min()) < -0.5 * bound and float(W.max()) > 0.5 * bound,
           f"with 256 features W stays in [{float(W.min()):.4f}, {float(W.max()):.4f}], not spread over "
           f"[-{bound:.4f}, {bound:.4f}]. torch.rand draws from [0, 1): scale it to [-bound, bound] with "
           "(torch.rand(...) * 2 - 1) * bound.", "not_uniform")


@checks.of("init_params")
def same_seed_gives_same_values_and_another_seed_others(init_params, num_features=5, seed=0):
    torch.manual_seed(1234)
    W1, b1 = _init(init_params, num_features, seed)
    torch.manual_seed(4321)
    W2, b2 = _init(init_params, num_features, seed)
    expect(is_close(W1, W2, atol=0, rtol=0) and is_close(b1, b2, atol=0, rtol=0),
           f"two calls with seed={seed} gave different values. Draw from a torch.Generator seeded with `seed` "
           "(or call torch.manual_seed(seed) first).", "not_deterministic")
    W3, _ = _init(init_params, num_features, seed + 1)
    expect(not is_close(W1, W3, atol=0, rtol=0),
           f"seed={seed} and seed={seed + 1} gave the same W: the seed argument is ignored.", "seed_ignored")


# --- forward ------------------------------------------------------------------


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
    W.requires_grad_()
    b.requires_grad_()
    out = as_tensor(forward(X, W, b), "forward(X, W, b)")
    expect(out.requires_grad,
           "the output of forward does not require grad, so no gradient can reach W and b. "
           "Do not detach, call .item()/.numpy() or use torch.no_grad() inside forward.", "detached")
    out.sum().backward()
    expect(W.grad is not None and b.grad is not None, "backward() through forward left W.grad or b.grad empty.",
           "detached")


# --- bce_loss ------------------------------------------------------------------


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
    try:
        result = bce_loss(probs, targets.reshape(-1))
    except ValueError:
        return
    fail(f"bce_loss accepted probs of shape ({num_samples}, 1) with targets of shape ({num_samples},) and "
         f"returned {describe(result)}. Broadcasting silently turns that pair into a ({num_samples}, {num_samples}) "
         "matrix, and the loss into nonsense: compare the shapes and raise ValueError.", "broadcast_shape")


@checks.of("bce_loss")
def is_differentiable(bce_loss, num_samples=16, seed=0):
    probs, targets = _probs_and_targets(num_samples, seed)
    probs.requires_grad_()
    loss = _loss(bce_loss, probs, targets)
    expect(loss.requires_grad, "bce_loss's result does not require grad: it must stay in the graph.", "detached")
    loss.backward()
    expected = (probs.detach() - targets) / (probs.detach() * (1 - probs.detach())) / num_samples
    expect(probs.grad is not None and is_close(probs.grad, expected, rtol=1e-3, atol=1e-5),
           "the gradient of bce_loss with respect to the probabilities is wrong.", "wrong_gradient")


# --- sgd_step -------------------------------------------------------------------


def _params_with_grads(seed: int, shapes=((4, 1), (1,))):
    gen = torch.Generator().manual_seed(seed)
    params = [torch.randn(*shape, generator=gen).requires_grad_() for shape in shapes]
    _fill_grads(params, seed)
    return params


def _fill_grads(params, seed):
    gen = torch.Generator().manual_seed(seed + 1)
    loss = sum(((p - torch.randn(p.shape, generator=gen)) ** 2).sum() for p in params)
    loss.backward()


def _step(sgd_step, params, lr):
    try:
        sgd_step(params, lr)
    except RuntimeError as exc:
        if "leaf Variable that requires grad" in str(exc) or "in-place operation" in str(exc):
            fail("the update was recorded by autograd: PyTorch refuses an in-place change of a leaf that "
                 "requires grad. Put the update inside `with torch.no_grad():`.", "update_in_graph")
        raise


@checks.of("sgd_step")
def moves_each_parameter_by_minus_lr_times_its_gradient(sgd_step, lr=0.1, seed=0):
    params = _params_with_grads(seed)
    before = [p.detach().clone() for p in params]
    expected = [(p - lr * p.grad).detach() for p in params]
    _step(sgd_step, params, lr)
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
    params = _params_with_grads(seed)
    _step(sgd_step, params, lr)
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
        _step(sgd_step, params, lr)
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


# --- train_manual ---------------------------------------------------------------


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
    return X, y, W, b, losses


@checks.of("train_manual")
def records_one_float_loss_per_epoch(train_manual, epochs=100, lr=0.1, seed=0):
    _train(train_manual, epochs, lr, seed)


@checks.of("train_manual")
def halves_the_loss(train_manual, epochs=100, lr=0.1, seed=0):
    *_, losses = _train(train_manual, epochs, lr, seed)
    expect(all(math.isfinite(v) for v in losses), "some recorded losses are nan or inf.", "not_finite")
    expect(losses[-1] <= losses[0] / 2,
           f"the loss went from {losses[0]:.4f} to {losses[-1]:.4f}; after {epochs} epochs at lr={lr} it should at "
           "least halve. Check that each epoch computes gradients, steps, and clears them.", "loss_not_decreasing")


@checks.of("train_manual")
def reaches_90_percent_training_accuracy(train_manual, epochs=100, lr=0.1, seed=0):
    X, y, W, b, _ = _train(train_manual, epochs, lr, seed)
    expect_shape(W, (X.shape[1], 1), "the returned W")
    with torch.no_grad():
        accuracy = float(((torch.sigmoid(X @ W + b) > 0.5).float() == y).float().mean())
    expect(accuracy >= 0.9, f"the trained model classifies {accuracy:.1%} of the training set correctly; "
           "expected at least 90%.", "low_accuracy")


def _descend(X, y, W, b, epochs: int, lr: float, clear_gradients: bool = True):
    """Plain full-batch gradient descent from (W, b), as the exercise describes it."""
    W = W.detach().clone().requires_grad_()
    b = b.detach().clone().requires_grad_()
    for _ in range(epochs):
        probs = torch.sigmoid(X @ W + b).clamp(1e-7, 1 - 1e-7)
        loss = -(y * probs.log() + (1 - y) * (1 - probs).log()).mean()
        loss.backward()
        with torch.no_grad():
            for p in (W, b):
                p -= lr * p.grad
                if clear_gradients:
                    p.grad.zero_()
    return W.detach(), b.detach()


@checks.of("train_manual")
def follows_gradient_descent_step_by_step(train_manual, init_params, epochs=100, lr=0.1, seed=0):
    X, y, W, b, _ = _train(train_manual, epochs, lr, seed)
    W0, b0 = _init(init_params, X.shape[1], seed)
    expect_shape(W, tuple(W0.shape), "the returned W")
    W_ref, b_ref = _descend(X, y, W0, b0, epochs, lr)
    if is_close(W, W_ref, atol=2e-3, rtol=1e-3) and is_close(b, b_ref, atol=2e-3, rtol=1e-3):
        return
    W_acc, b_acc = _descend(X, y, W0, b0, epochs, lr, clear_gradients=False)
    if is_close(W, W_acc, atol=2e-3, rtol=1e-3):
        fail("the trained weights are those of gradient descent whose gradients are never cleared: each step "
             "followed the sum of all gradients so far. Clear them after every step (in sgd_step).",
             "grads_accumulate")
    fail(f"starting from init_params(..., seed={seed}), {epochs} epochs of gradient descent at lr={lr} should "
         f"end with W within 0.002 of the reference; yours is up to {biggest_gap(W, W_ref):.3g} away. Check that "
         "every epoch runs forward, bce_loss, backward and sgd_step once, on the whole data set, with this lr.",
         "not_gradient_descent")
