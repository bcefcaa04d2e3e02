"""The checks of 01_tensors, beyond what its cases say (autograder/cases/01_tensors.py, run by test_rules):
the wording of some messages, failures blamed on the exercise that caused them, the judge's own state
after a check that switched autograd off, and the challenge's demo drawing exactly the visible test's data."""

import nbformat
import torch

from autograder.runner import run_checks
from support import assert_accepted, assert_caught, solution_namespace, solution_path

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
    assert_accepted("fit_linear", namespace, instructor=True, seed=7)


def flat_noise(n, w, b, noise_std=0.0, seed=0):
    gen = torch.Generator().manual_seed(seed)
    w = torch.as_tensor(w, dtype=torch.float32).reshape(-1, 1)
    X = torch.randn(n, len(w), generator=gen)
    return X, X @ w + b + noise_std * torch.randn(n, generator=gen)


def test_the_broadcast_message_names_the_silent_matrix():
    result = assert_caught("make_linear_data", ns(make_linear_data=flat_noise), "broadcast_shape")
    assert "(100, 100)" in result.message and "(n, 1)" in result.message


def test_a_first_failure_keeps_its_exact_fix_to_itself(monkeypatch):
    from autograder import runner

    monkeypatch.setattr(runner, "_MET", {})  # a fresh session: other tests in this process met it already
    for attempt in range(1, runner.SHOW_FIX_AFTER + 1):
        result = assert_caught("make_linear_data", ns(make_linear_data=flat_noise), "broadcast_shape")
        assert "reshape" not in result.message
        assert bool(result.fix) == (attempt == runner.SHOW_FIX_AFTER), f"attempt {attempt}: {result.fix!r}"


def test_autograd_gradients_relying_on_an_unwritten_mse_says_so():
    def mse(pred, target):
        raise NotImplementedError()

    results = run_checks("autograd_gradients", ns(mse=mse))
    assert results[0].status == "not_implemented"
    assert "relies on `mse`" in results[0].message


def analytic_by_autograd(X, y, w, b):
    w_, b_ = w.clone().requires_grad_(), b.clone().requires_grad_()
    ((X @ w_ + b_ - y) ** 2).mean().backward()
    return w_.grad, b_.grad


def test_autograd_is_back_after_a_check_that_switched_it_off():
    assert_caught("analytic_gradients", ns(analytic_gradients=analytic_by_autograd), "used_autograd")
    w = torch.ones(2, requires_grad=True)
    (w * 3).sum().backward()
    assert w.grad.tolist() == [3.0, 3.0]
    assert torch.autograd.grad((w * 2).sum(), [w])[0].tolist() == [2.0, 2.0]
    assert "backward" in vars(torch.Tensor) and callable(torch.autograd._engine_run_backward)


# --- challenge: fit_linear ---


def test_the_demo_of_the_challenge_draws_the_visible_tests_problem():
    import importlib

    public = importlib.import_module("autograder.checks.01_tensors")
    nb = nbformat.read(solution_path(NB), as_version=4)
    demo = next(cell.source for cell in nb.cells if "drawn exactly as its visible test draws it" in cell.source)
    space = {"torch": torch}
    exec(compile(demo, "<demo>", "exec"), space)
    X, y = public.glitched_problem(seed=0, **public.FIT_PROBLEM)
    assert torch.equal(space["X_fit"], X) and torch.equal(space["y_fit"], y)
    w, b = torch.tensor([[1.5], [-2.0], [1.0]]), torch.tensor([0.5])
    problem = public.FIT_PROBLEM
    assert abs(space["score"](w, b) - public.error_ratio(w, b, problem["w"], problem["b"], problem["noise_std"])) < 1e-6


def analytic_uphill(X, y, w, b):
    r = X @ w + b - y
    return -2 / len(X) * X.T @ r, -2 / len(X) * r.sum(dim=0)


def test_a_fit_that_fails_because_of_its_own_analytic_gradients_blames_them():
    # Built in the notebook's namespace, so that it calls the learner's analytic_gradients by name.
    space = ns()
    exec(compile("def fit_linear(X, y):\n"
                 "    far = (y - y.median()).abs().flatten()\n"
                 "    keep = far <= 3 * 1.4826 * far.median()\n"
                 "    w, b = torch.zeros(X.shape[1], 1), torch.zeros(1)\n"
                 "    for _ in range(300):\n"
                 "        dw, db = analytic_gradients(X[keep], y[keep], w, b)\n"
                 "        w, b = w - 0.1 * dw, b - 0.1 * db\n"
                 "    return w, b\n", "<fit>", "exec"), space)
    assert_accepted("fit_linear", space, instructor=True, seed=7)
    space["analytic_gradients"] = analytic_uphill
    result = assert_caught("fit_linear", space, "analytic_gradients_broken")
    assert "your `analytic_gradients`" in result.message


def test_a_fit_that_does_not_use_a_broken_helper_is_not_told_it_does():
    space = ns(analytic_gradients=analytic_uphill)
    exec(compile("def fit_linear(X, y):\n"
                 "    coef = torch.linalg.lstsq(torch.cat([X, torch.ones(len(X), 1)], dim=1), y).solution\n"
                 "    return coef[:-1], coef[-1:, 0]\n", "<fit>", "exec"), space)
    result = assert_caught("fit_linear", space, "below_target")
    assert "analytic_gradients" not in result.message
