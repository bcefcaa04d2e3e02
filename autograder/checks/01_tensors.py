"""Checks for 01_tensors: synthetic data, a shape-safe MSE, and its gradient two ways."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from autograder.checks._forbid import autograd_tools, call_without
from autograder.checks._probes import backward_through
from autograder.checks._support import (
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
)
from autograder.learner import fetch, keep, probe
from autograder.registry import Checks
from autograder.results import CheckFailure, expect, fail

checks = Checks("01_tensors")


# --- make_linear_data -----------------------------------------------------------
#
# Clauses of make_linear_data (text and contract) -> the check that enforces each:
#   returns (X, y): X float32 (n, d), y float32 (n, 1)              -> returns_float32_X_n_by_d_and_y_n_by_1
#   w a list of ints or floats, a tuple or a 1-D tensor; without noise
#     y is exactly X @ w + b                                         -> y_is_X_w_plus_b_without_noise_whatever_form_w_takes
#   X from a standard normal                                          -> X_is_drawn_from_a_standard_normal
#   same seed, identical data; another seed, other data              -> the_same_seed_gives_the_same_data_and_another_seed_other_data
#   drawn from a torch.Generator seeded by seed: the global random
#     stream is left alone                                            -> leaves_the_global_random_stream_alone
#   Gaussian noise of standard deviation noise_std, one value per
#     sample, independent of X                                        -> adds_noise_with_the_given_standard_deviation
#                                                                        adds_noise_that_is_normal_and_independent_of_X


def _integer_weights(d: int) -> list[int]:
    return [(i + 1) * (-1) ** i for i in range(d)]


def _data(make_linear_data, n, w, b, noise_std=0.0, seed=0):
    """Call make_linear_data and check the two shapes and dtypes every other check relies on."""
    try:
        result = make_linear_data(n, w, b, noise_std=noise_std, seed=seed)
    except RuntimeError as exc:
        if type(w) is list and all(type(v) is int for v in w) and "dtype" in str(exc).lower():
            fail(f"called with integer weights {w}, your code raised `{exc}`. torch.tensor of Python ints is an "
                 "int64 tensor, and a matrix product refuses to mix it with float32 X. Convert w with "
                 "dtype=torch.float32.", "wrong_dtype")
        raise
    X, y = as_pair(result, "make_linear_data")
    X, y = as_tensor(X, "X"), as_tensor(y, "y")
    d = len(w)
    expect_shape(X, (n, d), "X", hint=f"One row per sample and one column per weight ({d} weights).")
    if tuple(y.shape) in ((n,), (n, n)):
        fail(f"y has shape {shape_text(y.shape)}; expected the column ({n}, 1). "
             + ("A 1-D w makes X @ w 1-D: reshape w to (d, 1)."
                if tuple(y.shape) == (n,) else
                "A column (n, 1) plus a 1-D (n,) tensor broadcasts to an (n, n) matrix: make w a column (d, 1) "
                "and draw the noise with shape (n, 1)."), "broadcast_shape")
    expect_shape(y, (n, 1), "y")
    expect_dtype(X, torch.float32, "X")
    expect_dtype(y, torch.float32, "y")
    return X.detach(), y.detach()


def _exact_targets(X, w, b):
    return X.double() @ torch.tensor(w, dtype=torch.float64).reshape(-1, 1) + b


@checks.of("make_linear_data")
def returns_float32_X_n_by_d_and_y_n_by_1(make_linear_data, n=100, w=(2.0, -3.0, 0.5), b=1.0, noise_std=0.1,
                                          seed=0):
    _data(make_linear_data, n, list(w), b, noise_std=noise_std, seed=seed)


@checks.of("make_linear_data")
def y_is_X_w_plus_b_without_noise_whatever_form_w_takes(make_linear_data, n=100, w=(2.0, -3.0, 0.5), b=1.0,
                                                        seed=0):
    forms = {"a list of floats": [float(v) for v in w], "a tuple": tuple(float(v) for v in w),
             "a 1-D tensor": torch.tensor(w, dtype=torch.float32), "a list of ints": _integer_weights(len(w))}
    for label, form in forms.items():
        plain = form.tolist() if isinstance(form, torch.Tensor) else list(form)
        X, y = _data(make_linear_data, n, form, b, noise_std=0.0, seed=seed)
        expected = _exact_targets(X, plain, b)
        if is_close(y, expected - b, atol=1e-4, rtol=1e-5) and b != 0:
            fail(f"with w given as {label}, y equals X @ w without the bias b = {b}. Add b.", "missing_bias")
        expect(is_close(y, expected, atol=1e-4, rtol=1e-5),
               f"with w given as {label} and noise_std=0, y differs from X @ w + b by up to "
               f"{biggest_gap(y, expected):.3g}. Without noise the targets are exactly X @ w + b.", "wrong_values")


@checks.of("make_linear_data")
def X_is_drawn_from_a_standard_normal(make_linear_data, seed=0):
    n = 4000
    X, _ = _data(make_linear_data, n, [1.0, -1.0], 0.0, seed=seed)
    mean, std = float(X.mean()), float(X.std())
    if -0.05 < float(X.min()) and float(X.max()) < 1.05:
        fail(f"X lies in [{float(X.min()):.2f}, {float(X.max()):.2f}]: that is torch.rand (uniform on [0, 1)). "
             "Draw X with torch.randn, a standard normal.", "not_normal")
    expect(abs(mean) < 0.1 and 0.9 < std < 1.1,
           f"over {n} samples X has mean {mean:.3f} and standard deviation {std:.3f}; a standard normal has 0 and 1. "
           "Draw X with torch.randn and do not scale or shift it.", "not_normal")
    within = _share_within_one(X)
    expect(abs(within - _NORMAL_WITHIN_ONE) < 0.03,
           f"{within:.1%} of X's values lie within one standard deviation of the mean; for a normal distribution it "
           f"is {_NORMAL_WITHIN_ONE:.1%}. Mean and spread are right, but the shape is not bell-like: draw with "
           "torch.randn.", "not_normal")


# For a normal distribution 68.3% of the values lie within one standard deviation of the mean
# (a uniform one of the same spread has 57.7%). Over 4000+ values a normal sample lands within
# 0.03 of it with probability above 0.9999.
_NORMAL_WITHIN_ONE = 0.6827


def _share_within_one(values: torch.Tensor) -> float:
    v = values.double().flatten()
    return float(((v - v.mean()).abs() < v.std()).double().mean())


@checks.of("make_linear_data")
def the_same_seed_gives_the_same_data_and_another_seed_other_data(make_linear_data, n=100, w=(2.0, -3.0, 0.5),
                                                                   b=1.0, noise_std=0.1, seed=0):
    probe(torch.manual_seed, 1234)
    X1, y1 = _data(make_linear_data, n, list(w), b, noise_std=noise_std, seed=seed)
    probe(torch.manual_seed, 4321)
    X2, y2 = _data(make_linear_data, n, list(w), b, noise_std=noise_std, seed=seed)
    expect(is_close(X1, X2, atol=0, rtol=0) and is_close(y1, y2, atol=0, rtol=0),
           f"two calls with seed={seed} gave different data. Draw X and the noise from "
           "torch.Generator().manual_seed(seed), passed as generator=... to torch.randn.", "not_deterministic")
    X3, _ = _data(make_linear_data, n, list(w), b, noise_std=noise_std, seed=seed + 1)
    expect(not is_close(X1, X3, atol=0, rtol=0),
           f"seed={seed} and seed={seed + 1} gave the same X: the seed argument is ignored.", "seed_ignored")


@checks.of("make_linear_data")
def leaves_the_global_random_stream_alone(make_linear_data, n=100, w=(2.0, -3.0, 0.5), b=1.0, noise_std=0.1,
                                          seed=0):
    probe(torch.manual_seed, 99)
    before = probe(torch.get_rng_state)
    _data(make_linear_data, n, list(w), b, noise_std=noise_std, seed=seed)
    expect(bool(torch.equal(before, probe(torch.get_rng_state))),
           "make_linear_data changed PyTorch's global random state: it reseeded or drew from the global generator, "
           "so every other random number in the notebook shifts when it is called. Draw from your own "
           "torch.Generator().manual_seed(seed), passed as generator=... to torch.randn.", "global_rng")


@checks.of("make_linear_data")
def adds_noise_with_the_given_standard_deviation(make_linear_data, noise_std=0.1, seed=0):
    n, w, b = 4000, [2.0, -3.0, 0.5], 1.0
    for sigma in sorted({noise_std, 0.5}):
        X, y = _data(make_linear_data, n, w, b, noise_std=sigma, seed=seed)
        noise = (y.double() - _exact_targets(X, w, b)).flatten()
        found = float(noise.std())
        if found < 1e-4 and float(noise.abs().max()) < 1e-4:
            fail(f"with noise_std={sigma}, y is exactly X @ w + b: no noise was added.", "noise_ignored")
        if found < 1e-4:
            fail(f"with noise_std={sigma} every sample got the same noise value {float(noise[0]):.4f}. Draw one value "
                 "per sample: noise_std * torch.randn(n, 1, generator=...).", "wrong_noise")
        if abs(found - sigma ** 2) < 0.1 * sigma ** 2 and sigma != 1:
            fail(f"with noise_std={sigma} the noise has standard deviation {found:.4f}, which is noise_std squared: "
                 "noise_std is a standard deviation, so multiply torch.randn(...) by noise_std itself.", "wrong_noise")
        expect(abs(found - sigma) < 0.1 * sigma and abs(float(noise.mean())) < 0.1 * sigma + 1e-3,
               f"with noise_std={sigma} the noise (y - X @ w - b) has mean {float(noise.mean()):.4f} and standard "
               f"deviation {found:.4f}; expected about 0 and {sigma}. Add noise_std * torch.randn(n, 1, ...).",
               "wrong_noise")


@checks.of("make_linear_data")
def adds_noise_that_is_normal_and_independent_of_X(make_linear_data, seed=0):
    n, w, b = 4000, [2.0, -3.0, 0.5], 1.0
    X, y = _data(make_linear_data, n, w, b, noise_std=0.5, seed=seed)
    noise = (y.double() - _exact_targets(X, w, b)).flatten()
    within = _share_within_one(noise)
    expect(abs(within - _NORMAL_WITHIN_ONE) < 0.03,
           f"{within:.1%} of the noise values lie within one standard deviation of their mean; for Gaussian noise "
           f"it is {_NORMAL_WITHIN_ONE:.1%}. Draw the noise with torch.randn.", "wrong_noise")
    first_column = X[:, 0].double()
    flat_start = X.double().flatten()[:n]
    for label, values in (("the first column of X", first_column), ("the first values drawn for X", flat_start)):
        corr = float(torch.corrcoef(torch.stack([noise, values]))[0, 1])
        expect(abs(corr) < 0.2,
               f"the noise is correlated with {label} (correlation {corr:.2f}): it repeats numbers already used for "
               "X, as a second generator seeded with the same seed does. Draw X and then the noise from one "
               "generator, so the noise is new numbers.", "noise_reuses_X")


# --- mse --------------------------------------------------------------------------
#
# Clauses of mse -> checks:
#   the mean (not sum, not root, not abs) of squared differences, a 0-dim tensor -> equals_the_mean_of_squared_differences
#   ValueError when pred.shape != target.shape, either way round        -> raises_ValueError_for_N_against_N_by_1
#   any two tensors of the same shape are fine (1-D, several columns)   -> works_for_any_pair_of_matching_shapes
#   differentiable: stays in the graph with the right gradient          -> is_differentiable


def _columns(num_samples: int, seed: int, shape=None):
    gen = torch.Generator().manual_seed(seed)
    shape = shape or (num_samples, 1)
    return torch.randn(*shape, generator=gen), torch.randn(*shape, generator=gen)


def _mse(mse, pred, target) -> torch.Tensor:
    return as_mean_loss(mse(pred, target), "mse(pred, target)", pred.shape)


@checks.of("mse")
def equals_the_mean_of_squared_differences(mse, num_samples=16, seed=0):
    pred, target = _columns(num_samples, seed)
    loss = _mse(mse, pred, target)
    expected = F.mse_loss(pred, target)
    if is_close(loss, expected * num_samples, rtol=1e-4):
        fail(f"mse gives {number(float(loss))}, {num_samples} times the mean {number(float(expected))}: it sums over "
             "the samples. Take the mean, so the loss does not grow with the batch size.", "sum_not_mean")
    if is_close(loss, expected.sqrt(), rtol=1e-4):
        fail("mse returns the square root of the mean squared error (RMSE). Leave out the square root.", "rmse")
    if is_close(loss, (pred - target).abs().mean(), rtol=1e-4):
        fail("mse returns the mean absolute difference: square the differences instead of taking abs.",
             "not_squared")
    expect(is_close(loss, expected, atol=1e-6),
           f"mse gives {number(float(loss))}; the mean of the squared differences is {number(float(expected))}.",
           "wrong_values")


@checks.of("mse")
def raises_ValueError_for_N_against_N_by_1(mse, num_samples=8, seed=0):
    pred, target = _columns(num_samples, seed)
    for a, b in ((pred.flatten(), target), (pred, target.flatten())):
        try:
            result = mse(a, b)
        except ValueError:
            continue
        except CheckFailure:
            raise
        except Exception as exc:
            fail(f"mse raised {type(exc).__name__} for pred {shape_text(a.shape)} against target "
                 f"{shape_text(b.shape)}; the exercise asks for ValueError: "
                 "`raise ValueError(...)` when pred.shape != target.shape.", "wrong_exception")
        fail(f"mse accepted pred of shape {shape_text(a.shape)} with target of shape {shape_text(b.shape)} and "
             f"returned {describe(result)}. Broadcasting silently turns that pair into a ({num_samples}, "
             f"{num_samples}) matrix, and the loss into nonsense: compare the shapes and raise ValueError.",
             "broadcast_shape")


@checks.of("mse")
def works_for_any_pair_of_matching_shapes(mse, num_samples=16, seed=0):
    for shape in ((num_samples,), (num_samples, 3)):
        pred, target = _columns(num_samples, seed, shape)
        try:
            loss = _mse(mse, pred, target)
        except ValueError as exc:
            fail(f"mse raised ValueError (`{exc}`) for pred and target of the same shape {shape_text(shape)}. "
                 "Raise only when the shapes differ: the mean squared error of any two same-shaped tensors is "
                 "defined.", "rejects_matching_shapes")
        expected = F.mse_loss(pred, target)
        expect(is_close(loss, expected, atol=1e-6),
               f"for pred and target of shape {shape_text(shape)} mse gives {number(float(loss))}; expected "
               f"{number(float(expected))}. Only a shape mismatch is an error.", "wrong_values")


@checks.of("mse")
def is_differentiable(mse, num_samples=16, seed=0):
    pred, target = _columns(num_samples, seed)
    loss, (grad,) = probe(backward_through, mse, (pred, target), wrt=(0,))
    loss = as_mean_loss(loss, "mse(pred, target)", pred.shape)
    expect(loss.requires_grad, "mse's result does not require grad: it must stay in the graph (no .item(), no "
           ".detach(), no torch.tensor(...) around the result).", "detached")
    expected = 2 * (pred - target) / num_samples
    expect(grad is not None and is_close(grad, expected, atol=1e-6),
           "the gradient of mse with respect to pred is wrong.", "wrong_gradient")


# --- autograd_gradients and analytic_gradients -------------------------------------
#
# Clauses of autograd_gradients -> checks:
#   (dw, db) shaped like w (d, 1) and b (1,)                           -> returns_gradients_shaped_like_w_and_b
#   the gradient of mse(X @ w + b, y), for any N and d; a wrong one
#     caused by the learner's mse names mse                           -> match_the_gradient_of_the_mean_squared_error
#   plain w and b: no requires_grad flipped, no .grad left, values kept -> leave_plain_w_and_b_as_they_were
#   w and b that require grad and hold a .grad: ignored and kept       -> ignore_and_keep_the_gradients_the_caller_already_has
# Clauses of analytic_gradients -> checks:
#   (dw, db) shaped like w and b                                       -> returns_gradients_shaped_like_w_and_b
#   2/N X^T r and 2/N sum(r), equal to autograd's gradient             -> match_the_gradient_autograd_computes
#   without autograd                                                   -> work_without_autograd


def _problem(num_samples: int, num_features: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(num_samples, num_features, generator=gen)
    y = X @ torch.randn(num_features, 1, generator=gen) + 0.3 + 0.1 * torch.randn(num_samples, 1, generator=gen)
    w = torch.randn(num_features, 1, generator=gen) * 0.5
    b = torch.randn(1, generator=gen) * 0.5
    return X, y, w, b


def _reference(problem):
    """The stated closed form, in float64. It takes the problem as one tuple, so that it cannot stand in
    for an exercise's (X, y, w, b) signature."""
    X, y, w, b = (t.detach().double() for t in problem)
    r = X @ w + b - y
    return 2 / len(X) * X.T @ r, 2 / len(X) * r.sum(dim=0)


def _gradients(function, name, X, y, w, b):
    dw, db = as_pair(function(X, y, w, b), name)
    if dw is None or db is None:
        fail(f"{name} returned None for {'dw' if dw is None else 'db'}: the .grad of a tensor that is not a leaf stays "
             "empty. A copy made with w.clone() of a tensor that requires grad is part of the graph, not a leaf: "
             "make the copy with w.detach().clone().requires_grad_().", "not_leaf")
    dw, db = as_tensor(dw, "dw"), as_tensor(db, "db")
    d = X.shape[1]
    if tuple(dw.shape) == (d,):
        fail(f"dw has shape ({d},); expected ({d}, 1), the shape of w.", "wrong_shape")
    expect_shape(dw, (d, 1), "dw", hint="It must have the shape of w.")
    if tuple(db.shape) in ((), (1, 1)):
        fail(f"db has shape {shape_text(db.shape) if db.dim() else '() (0-dim)'}; expected (1,), the shape of b. "
             "Sum the residual column with .sum(dim=0), or reshape the result to (1,).", "wrong_shape")
    expect_shape(db, (1,), "db", hint="It must have the shape of b.")
    return dw.detach(), db.detach()


def _compare(name, dw, db, X, y, w, b):
    ref_dw, ref_db = _reference((X, y, w, b))
    n = len(X)
    if is_close(dw, ref_dw, rtol=1e-4, atol=1e-5) and is_close(db, ref_db, rtol=1e-4, atol=1e-5):
        return
    if is_close(dw, n * ref_dw, rtol=1e-4, atol=1e-4):
        fail(f"{name} gives {n} times the expected gradient: the loss behind it sums the squared residuals instead of "
             "averaging them. Use the mean.", "sum_not_mean")
    if is_close(dw, ref_dw / 2, rtol=1e-4, atol=1e-5):
        fail(f"{name} gives half the expected gradient: the derivative of r² is 2r, so the factor is 2/N.",
             "missing_factor_two")
    if is_close(dw, -ref_dw, rtol=1e-4, atol=1e-5):
        fail(f"{name} has the wrong sign: with residuals r = X @ w + b - y the gradient is +2/N X^T r "
             "(y - X @ w - b would need a minus sign).", "wrong_sign")
    fail(f"{name} differs from the gradient of the mean squared error by up to "
         f"{max(biggest_gap(dw, ref_dw), biggest_gap(db, ref_db)):.3g}. Expected dw = 2/N X^T r and "
         "db = 2/N sum(r), with r = X @ w + b - y.", "wrong_values")


@checks.of("autograd_gradients")
def returns_gradients_shaped_like_w_and_b(autograd_gradients, num_samples=20, num_features=3, seed=0):
    X, y, w, b = _problem(num_samples, num_features, seed)
    _gradients(autograd_gradients, "autograd_gradients", X, y, w, b)


@checks.of("autograd_gradients")
def match_the_gradient_of_the_mean_squared_error(autograd_gradients, mse, num_samples=20, num_features=3, seed=0):
    X, y, w, b = _problem(num_samples, num_features, seed)
    dw, db = _gradients(autograd_gradients, "autograd_gradients", X, y, w, b)
    try:
        _compare("autograd_gradients", dw, db, X, y, w, b)
    except CheckFailure as failure:
        cause = failure_of("mse", mse=mse)
        if cause is not None:
            blame("autograd_gradients", "autograd_gradients differs from the gradient of the mean squared error",
                  "mse", cause)
        raise failure


@checks.of("autograd_gradients")
def leave_plain_w_and_b_as_they_were(autograd_gradients, num_samples=20, num_features=3, seed=0):
    X, y, w, b = _problem(num_samples, num_features, seed)
    theirs = keep(w), keep(b)  # the caller's w and b, where the learner's code runs
    _gradients(autograd_gradients, "autograd_gradients", X, y, *theirs)
    for name, tensor, old in (("w", fetch(theirs[0]), w), ("b", fetch(theirs[1]), b)):
        expect(not tensor.requires_grad,
               f"after the call the caller's {name} requires grad: your code flipped it on. Work on a copy: "
               f"{name}.detach().clone().requires_grad_().", "requires_grad_flipped")
        expect(tensor.grad is None,
               f"after the call the caller's {name} has a .grad: the gradient was left behind on their tensor. Work "
               f"on a copy: {name}.detach().clone().requires_grad_().", "grad_left_behind")
        expect(is_close(tensor, old, atol=0, rtol=0), f"the caller's {name} changed its values.", "inputs_modified")


@checks.of("autograd_gradients")
def ignore_and_keep_the_gradients_the_caller_already_has(autograd_gradients, num_samples=20, num_features=3,
                                                         seed=0):
    X, y, w, b = _problem(num_samples, num_features, seed)
    w.requires_grad_()
    b.requires_grad_()
    w.grad, b.grad = torch.full_like(w, 5.0), torch.full_like(b, 5.0)
    theirs = keep(w), keep(b)  # the caller's w and b, where the learner's code runs
    dw, db = _gradients(autograd_gradients, "autograd_gradients", X, y, *theirs)
    ref_dw, ref_db = _reference((X, y, w, b))
    if is_close(dw, ref_dw + 5.0, rtol=1e-4, atol=1e-4):
        fail("the caller's w already held a gradient (w.grad = 5 everywhere) and your result is that plus the new "
             "gradient: backward() adds to .grad. Compute on fresh copies (w.detach().clone().requires_grad_()) or "
             "use torch.autograd.grad.", "grads_accumulate")
    _compare("autograd_gradients (with w and b that already require grad)", dw, db, X, y, w, b)
    for name, tensor in (("w", fetch(theirs[0])), ("b", fetch(theirs[1]))):
        expect(tensor.requires_grad, f"after the call the caller's {name} no longer requires grad.",
               "requires_grad_flipped")
        expect(tensor.grad is not None and bool((tensor.grad == 5.0).all()),
               f"the caller's {name}.grad held 5 everywhere before the call and something else after it: your code "
               f"changed the caller's gradient. Compute on a copy: {name}.detach().clone().requires_grad_().",
               "grad_left_behind")


@checks.of("analytic_gradients")
def returns_gradients_shaped_like_w_and_b(analytic_gradients, num_samples=20, num_features=3, seed=0):  # noqa: F811
    X, y, w, b = _problem(num_samples, num_features, seed)
    _gradients(analytic_gradients, "analytic_gradients", X, y, w, b)


@checks.of("analytic_gradients")
def match_the_gradient_autograd_computes(analytic_gradients, num_samples=20, num_features=3, seed=0):
    X, y, w, b = _problem(num_samples, num_features, seed)
    dw, db = _gradients(analytic_gradients, "analytic_gradients", X, y, w, b)
    _compare("analytic_gradients", dw, db, X, y, w, b)
    # Autograd on the same problem, as the notebook compares them.
    w_, b_ = w.clone().requires_grad_(), b.clone().requires_grad_()
    with torch.enable_grad():
        F.mse_loss(X @ w_ + b_, y).backward()
    expect(is_close(dw, w_.grad, atol=1e-5) and is_close(db, b_.grad, atol=1e-5),
           "analytic_gradients differs from autograd's gradient.", "wrong_values")


@checks.of("analytic_gradients")
def work_without_autograd(analytic_gradients, num_samples=20, num_features=3, seed=0):
    X, y, w, b = _problem(num_samples, num_features, seed)
    why = ("this exercise computes the gradient from the formula, by hand. Use the residuals r = X @ w + b - y: "
           "dw = 2/N X^T r, db = 2/N r.sum(dim=0).")
    found = probe(call_without, autograd_tools, "analytic_gradients", why, "used_autograd", analytic_gradients,
                  X, y, w, b)
    dw, db = _gradients(lambda *args: found, "analytic_gradients", X, y, w, b)
    _compare("analytic_gradients", dw, db, X, y, w, b)


# --- challenge: fit_linear ------------------------------------------------------
#
# Graded by outcome: the learner chooses how to fit (a closed form, gradient descent with the gradients
# of this notebook, rescaled columns, ...); the check fits on one sample and measures the error on new
# samples of the same source. Clauses -> checks:
#   returns (w, b): float tensors (d, 1) and (1,), finite              -> returns_w_and_b_shaped_for_the_data
#   mean squared error on new samples at most 1.1 times the noise
#     variance, on the notebook's problem                              -> predicts_new_samples_almost_as_well_as_the_truth
#   the same on hidden problems (other sizes, scales, bias, seeds)     -> instructor: ..._on_hidden_problems

FIT_TARGET = 1.1  # times the noise variance: the best possible is about 1.0 (plus d/n for estimating)
# The notebook's problem: columns of very different scales, as measurements in different units have.
FIT_PROBLEM = dict(w=(2.0, -3.0, 0.5), b=1.0, scales=(1.0, 10.0, 0.1), noise_std=0.5, seed=0)


def scaled_problem(num_samples: int, w, b: float, scales, noise_std: float, seed: int):
    """(X, y): standard normal columns multiplied by ``scales``, y = X @ w + b + noise."""
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(num_samples, len(w), generator=gen) * torch.tensor(scales, dtype=torch.float32)
    y = X @ torch.tensor(w, dtype=torch.float32).reshape(-1, 1) + b
    return X, y + noise_std * torch.randn(num_samples, 1, generator=gen)


def _fitted(fit_linear, X, y):
    w, b = as_pair(fit_linear(X.clone(), y.clone()), "fit_linear")
    w, b = as_tensor(w, "the returned w"), as_tensor(b, "the returned b")
    d = X.shape[1]
    expect_shape(w, (d, 1), "the returned w", hint="One weight per column of X, as a column.")
    expect_shape(b, (1,), "the returned b")
    w, b = w.detach().double(), b.detach().double()
    expect(is_finite(w) and is_finite(b),
           "fit_linear returned nan or inf: if you used gradient descent, the steps grew instead of shrinking "
           "(a learning rate too large for the largest column?).", "not_finite")
    return w, b


def error_ratio(fit_linear, num_samples: int, w, b: float, scales, noise_std: float, seed: int) -> float:
    """Mean squared error of the fitted line on 2000 new samples, as a multiple of the noise variance."""
    X, y = scaled_problem(num_samples, w, b, scales, noise_std, seed)
    w_fit, b_fit = _fitted(fit_linear, X, y)
    X_new, y_new = scaled_problem(2000, w, b, scales, noise_std, seed + 1000)
    error = float(((X_new.double() @ w_fit + b_fit - y_new.double()) ** 2).mean())
    return error / noise_std ** 2


@checks.of("fit_linear")
def returns_w_and_b_shaped_for_the_data(fit_linear, num_samples=200):
    problem = dict(FIT_PROBLEM)
    X, y = scaled_problem(num_samples, problem["w"], problem["b"], problem["scales"], problem["noise_std"],
                          problem["seed"])
    _fitted(fit_linear, X, y)


@checks.of("fit_linear")
def predicts_new_samples_almost_as_well_as_the_truth(fit_linear, num_samples=200):
    ratio = error_ratio(fit_linear, num_samples, **FIT_PROBLEM)
    expect(ratio <= FIT_TARGET,
           f"on new samples of the notebook's problem your line's mean squared error is {ratio:.3g} times the noise "
           f"variance; the target is at most {FIT_TARGET}. (The true w and b score about 1.) Look at the hints.",
           "below_target")
