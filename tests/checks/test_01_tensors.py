"""The checks of 01_tensors: real mistakes are caught with the right
diagnosis, and correct answers written another way are accepted."""

import pytest
import torch
import torch.nn.functional as F

from autograder.runner import run_checks
from support import assert_accepted, assert_caught, solution_namespace

NB = "01_tensors"


def ns(**replacements):
    return solution_namespace(NB, **replacements)


def test_the_solutions_pass_with_default_and_fresh_inputs():
    namespace = ns()
    for exercise in ("make_linear_data", "mse", "autograd_gradients", "analytic_gradients"):
        assert_accepted(exercise, namespace)
    assert_accepted("make_linear_data", namespace, n=57, w=(1.5, -2.0, 0.0, 4.0, 0.25), b=-0.5, noise_std=0.3, seed=9)
    assert_accepted("mse", namespace, num_samples=41, seed=6)
    assert_accepted("autograd_gradients", namespace, num_samples=33, num_features=6, seed=4)
    assert_accepted("analytic_gradients", namespace, num_samples=29, num_features=7, seed=8)
    assert_accepted("fit_linear", namespace, instructor=True)


# --- make_linear_data ---


def data_with_matmul_and_normal(n, w, b, noise_std=0.0, seed=0):
    gen = torch.Generator()
    gen.manual_seed(seed)
    w = torch.tensor([float(v) for v in w])[:, None]
    X = torch.normal(0.0, 1.0, size=(n, len(w)), generator=gen)
    y = torch.matmul(X, w) + b + torch.normal(0.0, 1.0, size=(n, 1), generator=gen) * noise_std
    return X, y


def data_flat(n, w, b, noise_std=0.0, seed=0):
    gen = torch.Generator().manual_seed(seed)
    w = torch.as_tensor(w, dtype=torch.float32)
    X = torch.randn(n, len(w), generator=gen)
    return X, X @ w + b + noise_std * torch.randn(n, generator=gen)


def data_flat_noise(n, w, b, noise_std=0.0, seed=0):
    gen = torch.Generator().manual_seed(seed)
    w = torch.as_tensor(w, dtype=torch.float32).reshape(-1, 1)
    X = torch.randn(n, len(w), generator=gen)
    return X, X @ w + b + noise_std * torch.randn(n, generator=gen)


def data_global_seed(n, w, b, noise_std=0.0, seed=0):
    torch.manual_seed(seed)
    w = torch.as_tensor(w, dtype=torch.float32).reshape(-1, 1)
    X = torch.randn(n, len(w))
    return X, X @ w + b + noise_std * torch.randn(n, 1)


def data_uniform(n, w, b, noise_std=0.0, seed=0):
    gen = torch.Generator().manual_seed(seed)
    w = torch.as_tensor(w, dtype=torch.float32).reshape(-1, 1)
    X = torch.rand(n, len(w), generator=gen)
    return X, X @ w + b + noise_std * torch.randn(n, 1, generator=gen)


def data_unseeded(n, w, b, noise_std=0.0, seed=0):
    gen = torch.Generator()  # a fresh generator starts from the same default seed every time
    w = torch.as_tensor(w, dtype=torch.float32).reshape(-1, 1)
    X = torch.randn(n, len(w), generator=gen)
    return X, X @ w + b + noise_std * torch.randn(n, 1, generator=gen)


def data_int_weights(n, w, b, noise_std=0.0, seed=0):
    gen = torch.Generator().manual_seed(seed)
    w = torch.tensor(w).reshape(-1, 1)
    X = torch.randn(n, len(w), generator=gen)
    return X, X @ w + b + noise_std * torch.randn(n, 1, generator=gen)


def data_no_bias(n, w, b, noise_std=0.0, seed=0):
    gen = torch.Generator().manual_seed(seed)
    w = torch.as_tensor(w, dtype=torch.float32).reshape(-1, 1)
    X = torch.randn(n, len(w), generator=gen)
    return X, X @ w + noise_std * torch.randn(n, 1, generator=gen)


def data_variance(n, w, b, noise_std=0.0, seed=0):
    gen = torch.Generator().manual_seed(seed)
    w = torch.as_tensor(w, dtype=torch.float32).reshape(-1, 1)
    X = torch.randn(n, len(w), generator=gen)
    return X, X @ w + b + noise_std ** 2 * torch.randn(n, 1, generator=gen)


def data_reseeding_per_call(n, w, b, noise_std=0.0, seed=0):
    w = torch.as_tensor(w, dtype=torch.float32).reshape(-1, 1)
    X = torch.randn(n, len(w), generator=torch.Generator().manual_seed(torch.seed() % 1000))
    return X, X @ w + b + noise_std * torch.randn(n, 1)


def data_no_noise(n, w, b, noise_std=0.0, seed=0):
    gen = torch.Generator().manual_seed(seed)
    w = torch.as_tensor(w, dtype=torch.float32).reshape(-1, 1)
    X = torch.randn(n, len(w), generator=gen)
    return X, X @ w + b


def data_float64(n, w, b, noise_std=0.0, seed=0):
    gen = torch.Generator().manual_seed(seed)
    w = torch.as_tensor(w, dtype=torch.float64).reshape(-1, 1)
    X = torch.randn(n, len(w), generator=gen, dtype=torch.float64)
    return X, X @ w + b + noise_std * torch.randn(n, 1, generator=gen, dtype=torch.float64)


def data_uniform_with_unit_spread(n, w, b, noise_std=0.0, seed=0):
    gen = torch.Generator().manual_seed(seed)
    w = torch.as_tensor(w, dtype=torch.float32).reshape(-1, 1)
    X = (torch.rand(n, len(w), generator=gen) * 2 - 1) * 3 ** 0.5  # mean 0, std 1, but flat
    return X, X @ w + b + noise_std * torch.randn(n, 1, generator=gen)


def data_uniform_noise(n, w, b, noise_std=0.0, seed=0):
    gen = torch.Generator().manual_seed(seed)
    w = torch.as_tensor(w, dtype=torch.float32).reshape(-1, 1)
    X = torch.randn(n, len(w), generator=gen)
    return X, X @ w + b + noise_std * (torch.rand(n, 1, generator=gen) * 2 - 1) * 3 ** 0.5


def data_two_generators(n, w, b, noise_std=0.0, seed=0):
    w = torch.as_tensor(w, dtype=torch.float32).reshape(-1, 1)
    X = torch.randn(n, len(w), generator=torch.Generator().manual_seed(seed))
    noise = torch.randn(n, 1, generator=torch.Generator().manual_seed(seed))
    return X, X @ w + b + noise_std * noise


def test_make_linear_data_with_matmul_and_torch_normal_is_accepted():
    assert_accepted("make_linear_data", ns(make_linear_data=data_with_matmul_and_normal))


@pytest.mark.parametrize("wrong, code", [
    (data_flat, "broadcast_shape"),
    (data_flat_noise, "broadcast_shape"),
    (data_global_seed, "global_rng"),
    (data_uniform, "not_normal"),
    (data_unseeded, "seed_ignored"),
    (data_int_weights, "wrong_dtype"),
    (data_no_bias, "missing_bias"),
    (data_variance, "wrong_noise"),
    (data_no_noise, "noise_ignored"),
    (data_reseeding_per_call, "not_deterministic"),
    (data_float64, "wrong_dtype"),
    (data_uniform_with_unit_spread, "not_normal"),
    (data_uniform_noise, "wrong_noise"),
    (data_two_generators, "noise_reuses_X"),
])
def test_make_linear_data_mistakes_are_diagnosed(wrong, code):
    assert_caught("make_linear_data", ns(make_linear_data=wrong), code)


def test_the_broadcast_message_names_the_silent_matrix():
    result = assert_caught("make_linear_data", ns(make_linear_data=data_flat_noise), "broadcast_shape")
    assert "(100, 100)" in result.message and "(n, 1)" in result.message


# --- mse ---


def mse_functional(pred, target):
    if pred.shape != target.shape:
        raise ValueError("shapes differ")
    return F.mse_loss(pred, target)


def mse_pow_numel(pred, target):
    if tuple(pred.shape) != tuple(target.shape):
        raise ValueError(f"{pred.shape} vs {target.shape}")
    return (pred - target).pow(2).sum() / pred.numel()


def mse_broadcasts(pred, target):
    return ((pred - target) ** 2).mean()


def mse_assert(pred, target):
    assert pred.shape == target.shape, "shapes differ"
    return ((pred - target) ** 2).mean()


def mse_sum(pred, target):
    if pred.shape != target.shape:
        raise ValueError("shapes differ")
    return ((pred - target) ** 2).sum()


def mse_unreduced(pred, target):
    if pred.shape != target.shape:
        raise ValueError("shapes differ")
    return (pred - target) ** 2


def mse_rmse(pred, target):
    if pred.shape != target.shape:
        raise ValueError("shapes differ")
    return ((pred - target) ** 2).mean().sqrt()


def mse_abs(pred, target):
    if pred.shape != target.shape:
        raise ValueError("shapes differ")
    return (pred - target).abs().mean()


def mse_item(pred, target):
    if pred.shape != target.shape:
        raise ValueError("shapes differ")
    return torch.tensor(((pred - target) ** 2).mean().item())


def mse_columns_only(pred, target):
    if pred.dim() != 2 or pred.shape != target.shape:
        raise ValueError("expected two columns of the same shape")
    return ((pred - target) ** 2).mean()


@pytest.mark.parametrize("right", [mse_functional, mse_pow_numel])
def test_mse_written_differently_is_accepted(right):
    assert_accepted("mse", ns(mse=right))


@pytest.mark.parametrize("wrong, code", [
    (mse_broadcasts, "broadcast_shape"),
    (mse_assert, "wrong_exception"),
    (mse_sum, "sum_not_mean"),
    (mse_unreduced, "not_reduced"),
    (mse_rmse, "rmse"),
    (mse_abs, "not_squared"),
    (mse_item, "detached"),
    (mse_columns_only, "rejects_matching_shapes"),
])
def test_mse_mistakes_are_diagnosed(wrong, code):
    assert_caught("mse", ns(mse=wrong), code)


# --- autograd_gradients ---


def autograd_with_autograd_grad(X, y, w, b):
    w_, b_ = w.detach().requires_grad_(True), b.detach().requires_grad_(True)
    loss = ((torch.matmul(X, w_) + b_ - y) ** 2).mean()
    dw, db = torch.autograd.grad(loss, (w_, b_))
    return dw, db


def autograd_on_the_callers_tensors(X, y, w, b):
    w.requires_grad_(True)
    b.requires_grad_(True)
    loss = ((X @ w + b - y) ** 2).mean()
    loss.backward()
    return w.grad, b.grad


def autograd_restoring_flags_but_accumulating(X, y, w, b):
    was = (w.requires_grad, b.requires_grad)
    w.requires_grad_(True)
    b.requires_grad_(True)
    ((X @ w + b - y) ** 2).mean().backward()
    dw, db = w.grad.clone(), b.grad.clone()
    if not was[0]:
        w.requires_grad_(False)
        w.grad = None
    if not was[1]:
        b.requires_grad_(False)
        b.grad = None
    return dw, db


def autograd_sum(X, y, w, b):
    w_, b_ = w.detach().clone().requires_grad_(), b.detach().clone().requires_grad_()
    ((X @ w_ + b_ - y) ** 2).sum().backward()
    return w_.grad, b_.grad


def autograd_flat(X, y, w, b):
    w_, b_ = w.detach().clone().requires_grad_(), b.detach().clone().requires_grad_()
    ((X @ w_ + b_ - y) ** 2).mean().backward()
    return w_.grad.flatten(), b_.grad


def autograd_clone_without_detach(X, y, w, b):
    w_, b_ = w.clone().requires_grad_(), b.clone().requires_grad_()
    ((X @ w_ + b_ - y) ** 2).mean().backward()
    return w_.grad, b_.grad


def test_a_copy_that_is_not_a_leaf_is_explained():
    namespace = ns(autograd_gradients=autograd_clone_without_detach)
    results = run_checks("autograd_gradients", namespace)
    stale = [r for r in results if r.check == "ignore_and_keep_the_gradients_the_caller_already_has"][0]
    assert stale.code == "not_leaf" and "detach()" in stale.message


def test_autograd_gradients_with_torch_autograd_grad_is_accepted():
    assert_accepted("autograd_gradients", ns(autograd_gradients=autograd_with_autograd_grad))


@pytest.mark.parametrize("wrong, code", [
    (autograd_on_the_callers_tensors, "requires_grad_flipped"),
    (autograd_restoring_flags_but_accumulating, "grads_accumulate"),
    (autograd_sum, "sum_not_mean"),
    (autograd_flat, "wrong_shape"),
])
def test_autograd_gradients_mistakes_are_diagnosed(wrong, code):
    assert_caught("autograd_gradients", ns(autograd_gradients=wrong), code)


def test_autograd_gradients_failing_because_of_a_summing_mse_blames_mse():
    result = assert_caught("autograd_gradients", ns(mse=mse_sum), "mse_broken")
    assert "your `mse`" in result.message and "Fix `mse` first" in result.message


def test_autograd_gradients_relying_on_an_unwritten_mse_says_so():
    def mse(pred, target):
        raise NotImplementedError()

    results = run_checks("autograd_gradients", ns(mse=mse))
    assert results[0].status == "not_implemented"
    assert "relies on `mse`" in results[0].message


# --- analytic_gradients ---


def analytic_with_matmul(X, y, w, b):
    r = torch.matmul(X, w) + b - y
    return torch.matmul(X.T, r) * (2 / len(X)), (2 * r.mean()).reshape(1)


def analytic_by_autograd(X, y, w, b):
    w_, b_ = w.clone().requires_grad_(), b.clone().requires_grad_()
    ((X @ w_ + b_ - y) ** 2).mean().backward()
    return w_.grad, b_.grad


def analytic_swallowing_the_stop(X, y, w, b):
    try:
        return analytic_by_autograd(X, y, w, b)
    except Exception:
        r = X @ w + b - y
        return X.T @ r * 2 / len(X), r.sum(dim=0) * 2 / len(X)


def analytic_without_two(X, y, w, b):
    r = X @ w + b - y
    return X.T @ r / len(X), r.sum(dim=0) / len(X)


def analytic_without_mean(X, y, w, b):
    r = X @ w + b - y
    return 2 * X.T @ r, 2 * r.sum(dim=0)


def analytic_zero_dim_db(X, y, w, b):
    r = X @ w + b - y
    return 2 / len(X) * X.T @ r, 2 / len(X) * r.sum()


def analytic_wrong_sign(X, y, w, b):
    r = y - X @ w - b
    return 2 / len(X) * X.T @ r, 2 / len(X) * r.sum(dim=0)


def test_analytic_gradients_with_matmul_and_mean_is_accepted():
    assert_accepted("analytic_gradients", ns(analytic_gradients=analytic_with_matmul))


@pytest.mark.parametrize("wrong, code", [
    (analytic_by_autograd, "used_autograd"),
    (analytic_swallowing_the_stop, "used_autograd"),
    (analytic_without_two, "missing_factor_two"),
    (analytic_without_mean, "sum_not_mean"),
    (analytic_zero_dim_db, "wrong_shape"),
    (analytic_wrong_sign, "wrong_sign"),
])
def test_analytic_gradients_mistakes_are_diagnosed(wrong, code):
    assert_caught("analytic_gradients", ns(analytic_gradients=wrong), code)


def test_autograd_is_back_after_a_check_that_switched_it_off():
    assert_caught("analytic_gradients", ns(analytic_gradients=analytic_by_autograd), "used_autograd")
    w = torch.ones(2, requires_grad=True)
    (w * 3).sum().backward()
    assert w.grad.tolist() == [3.0, 3.0]
    assert torch.autograd.grad((w * 2).sum(), [w])[0].tolist() == [2.0, 2.0]
    assert "backward" in vars(torch.Tensor) and callable(torch.autograd._engine_run_backward)


# --- challenge: fit_linear ---


def fit_by_least_squares(X, y):
    A = torch.cat([X, torch.ones(len(X), 1)], dim=1)
    coef = torch.linalg.lstsq(A, y).solution
    return coef[:-1], coef[-1:, 0]


def _descend(X, y, steps, lr):
    w, b = torch.zeros(X.shape[1], 1), torch.zeros(1)
    for _ in range(steps):
        r = X @ w + b - y
        w, b = w - lr * 2 / len(X) * X.T @ r, b - lr * 2 / len(X) * r.sum(dim=0)
    return w, b


def fit_plain_descent(X, y):
    return _descend(X, y, 300, 0.1)


def fit_tuned_to_the_visible_problem(X, y):
    """A learning rate small enough for the visible largest scale (10), and steps enough for it."""
    return _descend(X, y, 2000, 0.004)


def fit_flat_w(X, y):
    w, b = fit_by_least_squares(X, y)
    return w.flatten(), b


def fit_scalar_b(X, y):
    w, b = fit_by_least_squares(X, y)
    return w, b[0]


def test_fit_linear_by_least_squares_is_accepted():
    assert_accepted("fit_linear", ns(fit_linear=fit_by_least_squares), instructor=True)


@pytest.mark.parametrize("wrong, code", [
    (fit_plain_descent, "not_finite"),
    (fit_flat_w, "wrong_shape"),
    (fit_scalar_b, "wrong_shape"),
])
def test_fit_linear_mistakes_are_diagnosed(wrong, code):
    assert_caught("fit_linear", ns(fit_linear=wrong), code)


def test_a_fit_tuned_to_the_visible_problem_fails_the_hidden_ones():
    namespace = ns(fit_linear=fit_tuned_to_the_visible_problem)
    assert_accepted("fit_linear", namespace)
    assert_caught("fit_linear", namespace, "below_target", instructor=True)
