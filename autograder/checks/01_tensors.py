"""Checks for 01_tensors: synthetic data, a shape-safe MSE, and its gradient two ways.

Each check names the rule of its exercise's text that it enforces (``rule=``, the ids of the contract list
in the notebook). Nothing here computes what an exercise must return: the expected values are computed
inside the checks themselves, and a failure's exact fix goes into ``fix=``, shown only after repeated
failures.
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F

from autograder.checks._forbid import autograd_tools, call_without
from autograder.checks._probes import backward_through, calls_to
from autograder.checks._support import (
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
)
from autograder.learner import fetch, keep, probe
from autograder.registry import Checks
from autograder.results import CheckFailure, expect, fail

checks = Checks("01_tensors")


# --- make_linear_data -----------------------------------------------------------


def _integer_weights(d: int) -> list[int]:
    return [(i + 1) * (-1) ** i for i in range(d)]


def _data(make_linear_data, n, w, b, noise_std=0.0, seed=0):
    """Call make_linear_data and check the two shapes and dtypes every other check relies on."""
    try:
        result = make_linear_data(n, w, b, noise_std=noise_std, seed=seed)
    except RuntimeError as exc:
        if type(w) is list and all(type(v) is int for v in w) and "dtype" in str(exc).lower():
            fail(f"called with integer weights {w}, your code raised `{exc}`. A tensor made from Python ints is "
                 "an int64 tensor, and a matrix product refuses to mix it with float32 X.", "wrong_dtype",
                 fix="Convert w whatever form it has: torch.as_tensor(w, dtype=torch.float32).")
        raise
    X, y = as_pair(result, "make_linear_data")
    X, y = as_tensor(X, "X"), as_tensor(y, "y")
    d = len(w)
    expect_shape(X, (n, d), "X", hint=f"One row per sample and one column per weight ({d} weights).")
    if tuple(y.shape) in ((n,), (n, n)):
        fail(f"y has shape {shape_text(y.shape)}; expected the column ({n}, 1). "
             + ("X @ w with a 1-D w is 1-D: the column is lost in the product."
                if tuple(y.shape) == (n,) else
                "A column (n, 1) plus a 1-D (n,) tensor broadcasts to an (n, n) matrix: one of the two terms "
                "of y is 1-D."), "broadcast_shape",
             fix="Make w a column (d, 1) with w.reshape(-1, 1), and draw the noise with shape (n, 1).")
    expect_shape(y, (n, 1), "y")
    expect_dtype(X, torch.float32, "X")
    expect_dtype(y, torch.float32, "y")
    return X.detach(), y.detach()


def _noise(X, y, w, b) -> torch.Tensor:
    """y minus the line X @ w + b, in float64: the noise the learner's code added."""
    line = X.double() @ torch.tensor([float(v) for v in w], dtype=torch.float64).reshape(-1, 1) + b
    return y.double() - line


@checks.of("make_linear_data", rule="shapes")
def returns_float32_X_n_by_d_and_y_n_by_1(make_linear_data, n=100, w=(2.0, -3.0, 0.5), b=1.0, noise_std=0.1,
                                          seed=0):
    _data(make_linear_data, n, list(w), b, noise_std=noise_std, seed=seed)


@checks.of("make_linear_data", rule=("targets", "any_w"))
def y_is_X_w_plus_b_without_noise_whatever_form_w_takes(make_linear_data, n=100, w=(2.0, -3.0, 0.5), b=1.0,
                                                        seed=0):
    forms = {"a list of floats": [float(v) for v in w], "a tuple": tuple(float(v) for v in w),
             "a 1-D tensor": torch.tensor(w, dtype=torch.float32), "a list of ints": _integer_weights(len(w))}
    for label, form in forms.items():
        plain = form.tolist() if isinstance(form, torch.Tensor) else list(form)
        X, y = _data(make_linear_data, n, form, b, noise_std=0.0, seed=seed)
        off = _noise(X, y, plain, b)
        if bool((off + b).abs().max() < 1e-4) and b != 0:
            fail(f"with w given as {label}, y equals X @ w: the bias b = {b} is missing.", "missing_bias",
                 fix="y = X @ w + b + noise.")
        expect(bool(off.abs().max() < 1e-4),
               f"with w given as {label} and noise_std=0, y differs from X @ w + b by up to "
               f"{float(off.abs().max()):.3g}; without noise the targets are exactly X @ w + b.", "wrong_values")


@checks.of("make_linear_data", rule="normal_X")
def X_is_drawn_from_a_standard_normal(make_linear_data, seed=0):
    n = 4000
    X, _ = _data(make_linear_data, n, [1.0, -1.0], 0.0, seed=seed)
    mean, std = float(X.mean()), float(X.std())
    if -0.05 < float(X.min()) and float(X.max()) < 1.05:
        fail(f"X lies in [{float(X.min()):.2f}, {float(X.max()):.2f}]: that is a uniform draw on [0, 1), not a "
             "standard normal.", "not_normal", fix="Draw X with torch.randn.")
    expect(abs(mean) < 0.1 and 0.9 < std < 1.1,
           f"over {n} samples X has mean {mean:.3f} and standard deviation {std:.3f}; a standard normal has 0 and 1. "
           "X is scaled or shifted, or drawn from another distribution.", "not_normal",
           fix="Draw X with torch.randn and leave it as it comes.")
    within = _share_within_one(X)
    expect(abs(within - _NORMAL_WITHIN_ONE) < 0.03,
           f"{within:.1%} of X's values lie within one standard deviation of the mean; for a normal distribution it "
           f"is {_NORMAL_WITHIN_ONE:.1%}. Mean and spread are right, but the shape is not bell-like.", "not_normal",
           fix="Draw X with torch.randn.")


# For a normal distribution 68.3% of the values lie within one standard deviation of the mean
# (a uniform one of the same spread has 57.7%). Over 4000+ values a normal sample lands within
# 0.03 of it with probability above 0.9999.
_NORMAL_WITHIN_ONE = 0.6827


def _share_within_one(values: torch.Tensor) -> float:
    v = values.double().flatten()
    return float(((v - v.mean()).abs() < v.std()).double().mean())


@checks.of("make_linear_data", rule="seeded")
def the_same_seed_gives_the_same_data_and_another_seed_other_data(make_linear_data, n=100, w=(2.0, -3.0, 0.5),
                                                                   b=1.0, noise_std=0.1, seed=0):
    probe(torch.manual_seed, 1234)
    X1, y1 = _data(make_linear_data, n, list(w), b, noise_std=noise_std, seed=seed)
    probe(torch.manual_seed, 4321)
    X2, y2 = _data(make_linear_data, n, list(w), b, noise_std=noise_std, seed=seed)
    expect(is_close(X1, X2, atol=0, rtol=0) and is_close(y1, y2, atol=0, rtol=0),
           f"two calls with seed={seed} gave different data: something random does not come from a generator "
           "seeded with seed.", "not_deterministic",
           fix="generator = torch.Generator().manual_seed(seed), passed as generator=generator to every torch.randn.")
    X3, _ = _data(make_linear_data, n, list(w), b, noise_std=noise_std, seed=seed + 1)
    expect(not is_close(X1, X3, atol=0, rtol=0),
           f"seed={seed} and seed={seed + 1} gave the same X: the seed argument is ignored.", "seed_ignored",
           fix="Seed the generator with the seed argument: torch.Generator().manual_seed(seed).")


@checks.of("make_linear_data", rule="global_rng")
def leaves_the_global_random_stream_alone(make_linear_data, n=100, w=(2.0, -3.0, 0.5), b=1.0, noise_std=0.1,
                                          seed=0):
    probe(torch.manual_seed, 99)
    before = probe(torch.get_rng_state)
    _data(make_linear_data, n, list(w), b, noise_std=noise_std, seed=seed)
    expect(bool(torch.equal(before, probe(torch.get_rng_state))),
           "make_linear_data changed PyTorch's global random state: it reseeded it or drew from it, so every other "
           "random number in the notebook shifts when it is called.", "global_rng",
           fix="Draw from your own torch.Generator().manual_seed(seed), passed as generator=... to torch.randn, and "
               "never call torch.manual_seed.")


@checks.of("make_linear_data", rule="noise")
def adds_noise_with_the_given_standard_deviation(make_linear_data, noise_std=0.1, seed=0):
    n, w, b = 4000, [2.0, -3.0, 0.5], 1.0
    for sigma in sorted({noise_std, 0.5}):
        X, y = _data(make_linear_data, n, w, b, noise_std=sigma, seed=seed)
        noise = _noise(X, y, w, b).flatten()
        found = float(noise.std())
        if found < 1e-4 and float(noise.abs().max()) < 1e-4:
            fail(f"with noise_std={sigma}, y is exactly X @ w + b: no noise was added.", "noise_ignored",
                 fix="Add noise_std * torch.randn(n, 1, generator=generator).")
        if found < 1e-4:
            fail(f"with noise_std={sigma} every sample got the same noise value {float(noise[0]):.4f}; each sample "
                 "needs a value of its own.", "wrong_noise", fix="Draw the noise with shape (n, 1).")
        if abs(found - sigma ** 2) < 0.1 * sigma ** 2 and sigma != 1:
            fail(f"with noise_std={sigma} the noise has standard deviation {found:.4f}, which is noise_std squared: "
                 "noise_std is already a standard deviation, not a variance.", "wrong_noise",
                 fix="Multiply torch.randn(...) by noise_std itself.")
        expect(abs(found - sigma) < 0.1 * sigma and abs(float(noise.mean())) < 0.1 * sigma + 1e-3,
               f"with noise_std={sigma} the noise (y - X @ w - b) has mean {float(noise.mean()):.4f} and standard "
               f"deviation {found:.4f}; expected about 0 and {sigma}.", "wrong_noise",
               fix="Add noise_std * torch.randn(n, 1, generator=generator).")


@checks.of("make_linear_data", rule="noise")
def adds_noise_that_is_normal_and_independent_of_X(make_linear_data, seed=0):
    n, w, b = 4000, [2.0, -3.0, 0.5], 1.0
    X, y = _data(make_linear_data, n, w, b, noise_std=0.5, seed=seed)
    noise = _noise(X, y, w, b).flatten()
    within = _share_within_one(noise)
    expect(abs(within - _NORMAL_WITHIN_ONE) < 0.03,
           f"{within:.1%} of the noise values lie within one standard deviation of their mean; for Gaussian noise "
           f"it is {_NORMAL_WITHIN_ONE:.1%}.", "wrong_noise", fix="Draw the noise with torch.randn.")
    first_column = X[:, 0].double()
    flat_start = X.double().flatten()[:n]
    for label, values in (("the first column of X", first_column), ("the first values drawn for X", flat_start)):
        corr = float(torch.corrcoef(torch.stack([noise, values]))[0, 1])
        expect(abs(corr) < 0.2,
               f"the noise is correlated with {label} (correlation {corr:.2f}): it repeats numbers already used for "
               "X, as a second generator seeded with the same seed does.", "noise_reuses_X",
               fix="Draw X and then the noise from one generator, so the noise is new numbers.")


@checks.of("make_linear_data", rule="draw_order")
def draws_X_first_then_the_noise_from_one_generator(make_linear_data, n=100, w=(2.0, -3.0, 0.5), b=1.0,
                                                     noise_std=0.1, seed=0):
    X, y = _data(make_linear_data, n, list(w), b, noise_std=noise_std, seed=seed)
    d = len(w)
    stream = torch.Generator().manual_seed(seed)
    first = torch.randn(n, d, generator=stream)
    then = torch.randn(n, 1, generator=stream)
    if not torch.equal(X, first):
        stream = torch.Generator().manual_seed(seed)
        noise_first = torch.randn(n, 1, generator=stream)
        if torch.equal(X, torch.randn(n, d, generator=stream)):
            fail(f"X holds the numbers that come after the first {n} of the generator: the noise was drawn before X. "
                 "The notebook's printed numbers come from X first, then the noise.", "wrong_draw_order",
                 fix="X = torch.randn(n, d, generator=generator) first, then the noise.")
        del noise_first
        fail(f"X is not the first {n} x {d} numbers that torch.randn draws from torch.Generator().manual_seed({seed}) "
             "(a (d, n) draw transposed, another distribution, or a generator not seeded with seed give other "
             "numbers).", "wrong_draw_order", fix="X = torch.randn(n, d, generator=generator) before anything else.")
    noise = _noise(X, y, list(w), b)
    expect(is_close(noise, noise_std * then.double(), atol=1e-5, rtol=1e-4),
           f"X is right, but the noise is not noise_std times the next {n} x 1 numbers of the same generator "
           "(drawn with another shape, from another generator, or something else drawn in between).",
           "wrong_draw_order", fix="noise = noise_std * torch.randn(n, 1, generator=generator), right after X.")


# --- mse --------------------------------------------------------------------------


def _columns(num_samples: int, seed: int, shape=None):
    gen = torch.Generator().manual_seed(seed)
    shape = shape or (num_samples, 1)
    return torch.randn(*shape, generator=gen), torch.randn(*shape, generator=gen)


def _mse(mse, pred, target) -> torch.Tensor:
    return as_mean_loss(mse(pred, target), "mse(pred, target)", pred.shape).detach()


@checks.of("mse", rule="mean")
def equals_the_mean_of_squared_differences(mse, num_samples=16, seed=0):
    pred, target = _columns(num_samples, seed)
    loss = _mse(mse, pred, target)
    expected = ((pred.double() - target.double()) ** 2).mean()
    if is_close(loss, expected * num_samples, rtol=1e-4):
        fail(f"mse gives {number(float(loss))}, {num_samples} times the mean {number(float(expected))}: it sums over "
             "the samples, so the loss grows with the batch size.", "sum_not_mean", fix="Use .mean(), not .sum().")
    if is_close(loss, expected.sqrt(), rtol=1e-4):
        fail("mse returns the square root of the mean squared error (RMSE), not the mean squared error.", "rmse",
             fix="Leave out the square root.")
    if is_close(loss, (pred.double() - target.double()).abs().mean(), rtol=1e-4):
        fail("mse returns the mean absolute difference: the differences are not squared.", "not_squared",
             fix="((pred - target) ** 2).mean()")
    expect(is_close(loss, expected, atol=1e-6),
           f"mse gives {number(float(loss))}; the mean of the squared differences is {number(float(expected))}.",
           "wrong_values")


def _mismatches(num_samples, seed):
    pred, target = _columns(num_samples, seed)
    return ((pred.flatten(), target), (pred, target.flatten()))


def _raise_for(mse, a, b) -> ValueError | None:
    """The ValueError mse raises for a and b (None when it raised nothing); other exceptions are a failure."""
    try:
        result = mse(a, b)
    except ValueError as error:
        return error
    except CheckFailure:
        raise
    except Exception as exc:
        fail(f"mse raised {type(exc).__name__} for pred {shape_text(a.shape)} against target {shape_text(b.shape)}; "
             "the exercise asks for a ValueError (an assert gives AssertionError, which `python -O` even skips).",
             "wrong_exception", fix="if pred.shape != target.shape: raise ValueError(...)")
    fail(f"mse accepted pred of shape {shape_text(a.shape)} with target of shape {shape_text(b.shape)} and "
         f"returned {describe(result)}. Broadcasting silently turns that pair into a ({len(a)}, {len(a)}) matrix, "
         "and the loss into nonsense.", "broadcast_shape",
         fix="Compare pred.shape with target.shape and raise ValueError when they differ.")


@checks.of("mse", rule="shape_mismatch")
def raises_ValueError_for_N_against_N_by_1(mse, num_samples=8, seed=0):
    for a, b in _mismatches(num_samples, seed):
        _raise_for(mse, a, b)


def _names_shape(message: str, shape) -> bool:
    dims = [int(d) for d in shape]
    forms = {shape_text(dims), str(dims), str(tuple(dims))}
    if len(dims) > 1:  # 8x1, 8 x 1, 8×1 (a 1-D shape written so is a bare number, which proves nothing)
        forms |= {sep.join(map(str, dims)) for sep in ("x", " x ", "×", " × ")}
    text = message.replace("torch.Size(", "")
    return any(re.search(r"(?<![\d.])" + re.escape(form) + r"(?![\d])", text) for form in forms)


@checks.of("mse", rule="names_shapes")
def the_error_names_both_shapes(mse, num_samples=8, seed=0):
    for a, b in _mismatches(num_samples, seed):
        error = _raise_for(mse, a, b)
        message = str(error)
        expect(_names_shape(message, a.shape) and _names_shape(message, b.shape),
               f"for pred {shape_text(a.shape)} against target {shape_text(b.shape)} mse raised ValueError(\"{message[:120]}\"), "
               "which does not say both shapes: whoever meets the error needs to see what clashed.", "shapes_unnamed",
               fix='raise ValueError(f"pred has shape {tuple(pred.shape)} but target has shape {tuple(target.shape)}")')


@checks.of("mse", rule="any_shape")
def works_for_any_pair_of_matching_shapes(mse, num_samples=16, seed=0):
    for shape in ((num_samples,), (num_samples, 3)):
        pred, target = _columns(num_samples, seed, shape)
        try:
            loss = _mse(mse, pred, target)
        except ValueError as exc:
            fail(f"mse raised ValueError (`{exc}`) for pred and target of the same shape {shape_text(shape)}. "
                 "The mean squared error of any two same-shaped tensors is defined: only a mismatch is an error.",
                 "rejects_matching_shapes", fix="Raise only when pred.shape != target.shape.")
        expected = ((pred.double() - target.double()) ** 2).mean()
        expect(is_close(loss, expected, atol=1e-6),
               f"for pred and target of shape {shape_text(shape)} mse gives {number(float(loss))}; expected "
               f"{number(float(expected))}.", "wrong_values")


@checks.of("mse", rule="differentiable")
def is_differentiable(mse, num_samples=16, seed=0):
    pred, target = _columns(num_samples, seed)
    loss, (grad,) = probe(backward_through, mse, (pred, target), wrt=(0,))
    loss = as_mean_loss(loss, "mse(pred, target)", pred.shape)
    expect(loss.requires_grad, "mse's result does not require grad: it was cut out of the graph (by .item(), "
           ".detach() or a new torch.tensor(...)), so no gradient can flow back through it.", "detached",
           fix="Return the tensor expression itself: ((pred - target) ** 2).mean().")
    expected = 2 * (pred - target) / num_samples
    expect(grad is not None and is_close(grad, expected, atol=1e-6),
           "the gradient of mse with respect to pred is wrong.", "wrong_gradient")


# --- autograd_gradients and analytic_gradients -------------------------------------


def _problem(num_samples: int, num_features: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(num_samples, num_features, generator=gen)
    y = X @ torch.randn(num_features, 1, generator=gen) + 0.3 + 0.1 * torch.randn(num_samples, 1, generator=gen)
    w = torch.randn(num_features, 1, generator=gen) * 0.5
    b = torch.randn(1, generator=gen) * 0.5
    return X, y, w, b


def _gradients(function, name, X, y, w, b):
    dw, db = as_pair(function(X, y, w, b), name)
    if dw is None or db is None:
        fail(f"{name} returned None for {'dw' if dw is None else 'db'}: the .grad of a tensor that is not a leaf of "
             "the graph stays empty, and a copy made with .clone() of a tensor that requires grad is such a tensor.",
             "not_leaf", fix="Make each copy a new leaf: w.detach().clone().requires_grad_().")
    dw, db = as_tensor(dw, "dw"), as_tensor(db, "db")
    d = X.shape[1]
    if tuple(dw.shape) == (d,):
        fail(f"dw has shape ({d},); expected ({d}, 1), the shape of w.", "wrong_shape")
    expect_shape(dw, (d, 1), "dw", hint="It must have the shape of w.")
    if tuple(db.shape) in ((), (1, 1)):
        fail(f"db has shape {shape_text(db.shape) if db.dim() else '() (0-dim)'}; expected (1,), the shape of b.",
             "wrong_shape", fix="Sum the residual column with .sum(dim=0), or reshape the result to (1,).")
    expect_shape(db, (1,), "db", hint="It must have the shape of b.")
    return dw.detach(), db.detach()


def _compare(name, dw, db, expected, n):
    """Fail unless (dw, db) is ``expected`` (computed by the check), naming the classic slips."""
    ref_dw, ref_db = expected
    if is_close(dw, ref_dw, rtol=1e-4, atol=1e-5) and is_close(db, ref_db, rtol=1e-4, atol=1e-5):
        return
    if is_close(dw, n * ref_dw, rtol=1e-4, atol=1e-4):
        fail(f"{name} gives {n} times the expected gradient: the loss behind it sums the squared residuals instead of "
             "averaging them.", "sum_not_mean", fix="Use the mean: the factor is 2/N.")
    if is_close(dw, ref_dw / 2, rtol=1e-4, atol=1e-5):
        fail(f"{name} gives half the expected gradient: the derivative of r² is 2r.", "missing_factor_two",
             fix="The factor is 2/N.")
    if is_close(dw, -ref_dw, rtol=1e-4, atol=1e-5):
        fail(f"{name} has the wrong sign: with residuals r = X @ w + b - y the gradient points along +X^T r.",
             "wrong_sign", fix="r = X @ w + b - y; dw = 2/N X^T r (with y - X @ w - b, put a minus sign in front).")
    fail(f"{name} differs from the gradient of the mean squared error by up to "
         f"{max(biggest_gap(dw, ref_dw), biggest_gap(db, ref_db)):.3g}. Expected dw = 2/N X^T r and "
         "db = 2/N sum(r), with r = X @ w + b - y.", "wrong_values")


@checks.of("autograd_gradients", rule="shapes")
def returns_gradients_shaped_like_w_and_b(autograd_gradients, num_samples=20, num_features=3, seed=0):
    X, y, w, b = _problem(num_samples, num_features, seed)
    _gradients(autograd_gradients, "autograd_gradients", X, y, w, b)


@checks.of("autograd_gradients", rule="gradient")
def match_the_gradient_of_the_mean_squared_error(autograd_gradients, mse, num_samples=20, num_features=3, seed=0):
    X, y, w, b = _problem(num_samples, num_features, seed)
    dw, db = _gradients(autograd_gradients, "autograd_gradients", X, y, w, b)
    r = X.double() @ w.double() + b.double() - y.double()
    try:
        _compare("autograd_gradients", dw, db, (2 / num_samples * X.double().T @ r, 2 / num_samples * r.sum(dim=0)),
                 num_samples)
    except CheckFailure as failure:
        cause = _failure_or_none("mse", mse=mse)
        if cause is not None:
            blame("autograd_gradients", "autograd_gradients differs from the gradient of the mean squared error",
                  "mse", cause)
        raise failure


@checks.of("autograd_gradients", rule="plain_untouched")
def leave_plain_w_and_b_as_they_were(autograd_gradients, num_samples=20, num_features=3, seed=0):
    X, y, w, b = _problem(num_samples, num_features, seed)
    theirs = keep(w), keep(b)  # the caller's w and b, where the learner's code runs
    _gradients(autograd_gradients, "autograd_gradients", X, y, *theirs)
    for name, tensor, old in (("w", fetch(theirs[0]), w), ("b", fetch(theirs[1]), b)):
        expect(not tensor.requires_grad,
               f"after the call the caller's {name} requires grad: your code switched it on, on their tensor.",
               "requires_grad_flipped", fix=f"Work on a copy: {name}.detach().clone().requires_grad_().")
        expect(tensor.grad is None,
               f"after the call the caller's {name} has a .grad: the gradient was left behind on their tensor.",
               "grad_left_behind", fix=f"Work on a copy: {name}.detach().clone().requires_grad_().")
        expect(is_close(tensor, old, atol=0, rtol=0), f"the caller's {name} changed its values.", "inputs_modified")


@checks.of("autograd_gradients", rule="training_untouched")
def ignore_and_keep_the_gradients_the_caller_already_has(autograd_gradients, num_samples=20, num_features=3,
                                                         seed=0):
    X, y, w, b = _problem(num_samples, num_features, seed)
    w.requires_grad_()
    b.requires_grad_()
    w.grad, b.grad = torch.full_like(w, 5.0), torch.full_like(b, 5.0)
    theirs = keep(w), keep(b)  # the caller's w and b, where the learner's code runs
    dw, db = _gradients(autograd_gradients, "autograd_gradients", X, y, *theirs)
    r = X.double() @ w.detach().double() + b.detach().double() - y.double()
    expected = (2 / num_samples * X.double().T @ r, 2 / num_samples * r.sum(dim=0))
    if is_close(dw, expected[0] + 5.0, rtol=1e-4, atol=1e-4):
        fail("the caller's w already held a gradient (w.grad = 5 everywhere) and your result is that plus the new "
             "gradient: backward() adds to .grad, it does not replace it.", "grads_accumulate",
             fix="Compute on fresh copies (w.detach().clone().requires_grad_()), or use torch.autograd.grad.")
    _compare("autograd_gradients (with w and b that already require grad)", dw, db, expected, num_samples)
    for name, tensor in (("w", fetch(theirs[0])), ("b", fetch(theirs[1]))):
        expect(tensor.requires_grad, f"after the call the caller's {name} no longer requires grad.",
               "requires_grad_flipped", fix=f"Work on a copy: {name}.detach().clone().requires_grad_().")
        expect(tensor.grad is not None and bool((tensor.grad == 5.0).all()),
               f"the caller's {name}.grad held 5 everywhere before the call and something else after it: your code "
               "changed the caller's gradient.", "grad_left_behind",
               fix=f"Compute on a copy: {name}.detach().clone().requires_grad_().")


@checks.of("analytic_gradients", rule="shapes")
def returns_gradients_shaped_like_w_and_b(analytic_gradients, num_samples=20, num_features=3, seed=0):  # noqa: F811
    X, y, w, b = _problem(num_samples, num_features, seed)
    _gradients(analytic_gradients, "analytic_gradients", X, y, w, b)


@checks.of("analytic_gradients", rule="formula")
def match_the_gradient_autograd_computes(analytic_gradients, num_samples=20, num_features=3, seed=0):
    X, y, w, b = _problem(num_samples, num_features, seed)
    dw, db = _gradients(analytic_gradients, "analytic_gradients", X, y, w, b)
    # Autograd on the same problem, as the notebook compares them.
    w_, b_ = w.clone().double().requires_grad_(), b.clone().double().requires_grad_()
    with torch.enable_grad():
        F.mse_loss(X.double() @ w_ + b_, y.double()).backward()
    _compare("analytic_gradients", dw, db, (w_.grad, b_.grad), num_samples)


@checks.of("analytic_gradients", rule="no_autograd")
def work_without_autograd(analytic_gradients, num_samples=20, num_features=3, seed=0):
    X, y, w, b = _problem(num_samples, num_features, seed)
    why = "this exercise computes the gradient from the formula, with tensor operations only."
    found = probe(call_without, autograd_tools, "analytic_gradients", why, "used_autograd", analytic_gradients,
                  X, y, w, b)
    _gradients(lambda *args: found, "analytic_gradients", X, y, w, b)


# --- challenge: fit_linear ------------------------------------------------------
#
# Graded by outcome: the learner chooses how to fit a line to data in which some targets are glitches
# (a robust loss, finding and dropping the glitches, ...). The check fits on one sample and measures the
# line's expected squared error on new, clean samples of the same source (exactly: the columns are
# independent standard normals, so it is noise variance + |w - w_true|² + (b - b_true)²).

FIT_TARGET = 1.15  # times the noise variance: the true line scores 1.0, least squares scores tens
# The notebook's problem (the visible test draws it with the seed it is given, 0 by default).
FIT_PROBLEM = dict(num_samples=400, w=(2.0, -3.0, 0.5), b=1.0, noise_std=0.5, glitch_rate=0.1)


def glitched_problem(num_samples: int, w, b: float, noise_std: float, glitch_rate: float, seed: int):
    """(X, y): standard normal columns, y = X @ w + b + noise, except that a share ``glitch_rate`` of the
    targets are glitches: readings 5 to 40 times the clean targets' spread away from b, above or below."""
    gen = torch.Generator().manual_seed(seed)
    glitched = torch.randperm(num_samples, generator=gen)[:max(1, round(glitch_rate * num_samples))]
    X = torch.randn(num_samples, len(w), generator=gen)
    w_true = torch.tensor(w, dtype=torch.float32).reshape(-1, 1)
    y = X @ w_true + b + noise_std * torch.randn(num_samples, 1, generator=gen)
    spread = (float((w_true ** 2).sum()) + noise_std ** 2) ** 0.5
    size = (5 + 35 * torch.rand(len(glitched), 1, generator=gen)) * spread
    sign = torch.where(torch.rand(len(glitched), 1, generator=gen) < 0.5, -1.0, 1.0)
    y[glitched] = b + sign * size
    return X, y


def error_ratio(w_fit: torch.Tensor, b_fit: torch.Tensor, w, b: float, noise_std: float) -> float:
    """The expected squared error of the line (w_fit, b_fit) on new clean samples, in noise variances."""
    gap = w_fit.double().flatten() - torch.tensor(w, dtype=torch.float64)
    return 1 + (float((gap ** 2).sum()) + (float(b_fit.double().flatten()[0]) - b) ** 2) / noise_std ** 2


FIT_HELPERS = ("mse", "autograd_gradients", "analytic_gradients")


def fitted_line(fit_linear, X, y, helpers: dict, unlike_the_notebook=False):
    """The learner's fit of (X, y), checked for shape and finiteness, and which of the learner's own
    gradient functions it called (``helpers``: those functions, to blame one that fails its own checks).
    ``unlike_the_notebook``: (X, y) has another number of columns than any problem of the notebook, so a w
    of another length was fitted to something else."""
    result, calls = probe(calls_to, fit_linear, FIT_HELPERS, (X.clone(), y.clone()))
    w, b = as_pair(result, "fit_linear")
    w, b = as_tensor(w, "the returned w"), as_tensor(b, "the returned b")
    d = X.shape[1]
    if unlike_the_notebook and w.dim() and w.shape[0] != d:
        fail(f"given {len(X)} samples of {d} columns, fit_linear returned a w of shape {shape_text(w.shape)}: it "
             "fitted something else than the X and y it received (a variable of the notebook?).",
             "ignores_given_data")
    expect_shape(w, (d, 1), "the returned w", hint="One weight per column of X, as a column.")
    expect_shape(b, (1,), "the returned b")
    w, b = w.detach().double(), b.detach().double()
    if not (is_finite(w) and is_finite(b)):
        found = "fit_linear returned nan or inf"
        blame_what_it_used(found, calls or {}, **helpers)
        fail(f"{found}: if it descends, its steps grew instead of shrinking.", "not_finite")
    return w, b, calls or {}


def blame_what_it_used(found: str, calls: dict, **helpers) -> None:
    """Name the learner's own function that the fit called and that fails its own checks, if any."""
    for name in FIT_HELPERS:
        if not calls.get(name):
            continue
        cause = _failure_or_none(name, **helpers)
        if cause is not None:
            blame("fit_linear", found, name, cause)


def _failure_or_none(exercise: str, **objects):
    try:
        return failure_of(exercise, **objects)
    except NotImplementedError:
        return None


@checks.of("fit_linear", rule="returns")
def returns_w_and_b_shaped_for_the_data(fit_linear, mse, autograd_gradients, analytic_gradients, seed=0):
    X, y = glitched_problem(seed=seed, **FIT_PROBLEM)
    fitted_line(fit_linear, X, y, dict(mse=mse, autograd_gradients=autograd_gradients,
                                       analytic_gradients=analytic_gradients))


@checks.of("fit_linear", rule="target")
def comes_close_to_the_true_line_despite_the_glitches(fit_linear, mse, autograd_gradients, analytic_gradients,
                                                       seed=0):
    X, y = glitched_problem(seed=seed, **FIT_PROBLEM)
    helpers = dict(mse=mse, autograd_gradients=autograd_gradients, analytic_gradients=analytic_gradients)
    w, b, calls = fitted_line(fit_linear, X, y, helpers)
    ratio = error_ratio(w, b, FIT_PROBLEM["w"], FIT_PROBLEM["b"], FIT_PROBLEM["noise_std"])
    if ratio > FIT_TARGET:
        found = (f"on the notebook's problem (seed {seed}) your line's expected squared error on new samples is "
                 f"{ratio:.3g} times the noise variance; the target is at most {FIT_TARGET}")
        blame_what_it_used(found, calls, **helpers)
        fail(f"{found}. The glitches still pull the line: a squared error lets a few huge residuals outweigh "
             "hundreds of ordinary ones.", "below_target")
