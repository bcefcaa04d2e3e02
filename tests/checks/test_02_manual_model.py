"""The checks of 02_manual_model, beyond what its cases say (autograder/cases/02_manual_model.py, run by
test_rules): the wording of some messages, failures blamed on the exercise that caused them, unwritten and
missing exercises, and the learner's namespace as it was after the checks that watch its functions."""

import subprocess
import sys
from pathlib import Path

import torch

from autograder.runner import run_checks
from support import assert_accepted, assert_caught, solution_namespace

NB = "02_manual_model"


def ns(**replacements):
    return solution_namespace(NB, **replacements)


def test_the_solutions_pass_with_default_and_fresh_inputs():
    namespace = ns()
    for exercise in ("init_params", "forward", "bce_loss", "sgd_step"):
        assert_accepted(exercise, namespace)
    assert_accepted("init_params", namespace, num_features=13, seed=7)
    assert_accepted("forward", namespace, num_samples=31, num_features=17, seed=3)
    assert_accepted("sgd_step", namespace, lr=0.03, seed=5, num_params=4)
    assert_accepted("train_manual", namespace, instructor=True, epochs=60, lr=0.2, seed=3, num_samples=150,
                    num_features=7)
    assert_accepted("fit_raw_measurements", namespace, instructor=True, seed=17)


def test_the_seed_checks_still_work_after_pytorch_rewraps_manual_seed():
    """An optimizer's first step loads torch._dynamo, which replaces torch.manual_seed with a wrapper of
    torch.random.manual_seed; the checks that probe the seed must still run it in the learner's process
    (a learner's own check after any training in the notebook). In a fresh process: the judge's own
    process (this one, once anything imported it) wraps manual_seed differently."""
    script = (
        "import sys, torch\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})\n"
        "weight = torch.nn.Parameter(torch.zeros(2))\n"
        "optimizer = torch.optim.SGD([weight], lr=0.1)\n"
        "weight.sum().backward()\n"
        "optimizer.step()\n"
        "assert torch.manual_seed is not torch.random.manual_seed, 'PyTorch no longer rewraps manual_seed'\n"
        "from support import assert_accepted, solution_namespace\n"
        f"assert_accepted('init_params', solution_namespace({NB!r}))\n"
        "print('accepted')\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "accepted" in done.stdout, done.stderr[-3000:]


# --- init_params ---


def test_a_clamped_normal_draw_is_told_its_values_pile_up_on_the_edges():
    def init_params(num_features, seed=0):
        g = torch.Generator().manual_seed(seed)
        a = num_features ** -0.5
        return torch.randn(num_features, 1, generator=g).clamp(-a, a).requires_grad_(), torch.zeros(1, requires_grad=True)

    result = assert_caught("init_params", ns(init_params=init_params), "not_uniform")
    assert "exactly on ±a" in result.message and "clamping" in result.message


def test_the_transposed_layout_message_gives_the_expected_shape():
    def init_params(num_features, seed=0):
        g = torch.Generator().manual_seed(seed)
        return (torch.rand(1, num_features, generator=g) - 0.5).requires_grad_(), torch.zeros(1, requires_grad=True)

    result = assert_caught("init_params", ns(init_params=init_params), "weight_layout_transposed", num_features=13)
    assert "(13, 1)" in result.message and "(1, 13)" in result.message


def test_a_range_too_wide_is_told_the_width_it_should_have_without_the_formula():
    def init_params(num_features, seed=0):
        g = torch.Generator().manual_seed(seed)
        return (torch.rand(num_features, 1, generator=g) * 2 - 1).requires_grad_(), torch.zeros(1, requires_grad=True)

    result = assert_caught("init_params", ns(init_params=init_params), "out_of_range")
    assert "±0.4472" in result.message and "sqrt" not in result.message


# --- forward ---


def test_forward_that_crashes_names_the_line_that_raised():
    def forward(X, W, b):
        return 0.5 * (1 + torch.tanh((X @ W.T + b) / 2))

    first = run_checks("forward", ns(forward=forward))[0]
    assert first.status == "error"
    assert "X @ W.T + b" in first.message and "RuntimeError" in first.message


def test_the_sigmoids_are_back_after_the_check_that_switched_them_off():
    assert_caught("forward", ns(forward=lambda X, W, b: torch.sigmoid(X @ W + b)), "used_library_sigmoid")
    z = torch.tensor([0.0])
    assert torch.sigmoid(z).item() == 0.5 and z.sigmoid().item() == 0.5 and torch.nn.Sigmoid()(z).item() == 0.5
    assert "sigmoid" not in vars(torch.Tensor)


# --- sgd_step and train_manual ---


def sgd_step_without_zeroing(params, lr):
    with torch.no_grad():
        for p in params:
            p -= lr * p.grad


def test_train_manual_with_accumulating_gradients_blames_sgd_step():
    result = assert_caught("train_manual", ns(sgd_step=sgd_step_without_zeroing), "grads_accumulate")
    assert "your `sgd_step`" in result.message and "backward() adds to .grad" in result.message


def test_the_hidden_reference_run_also_blames_sgd_step():
    results = run_checks("train_manual", ns(sgd_step=sgd_step_without_zeroing), hidden=True)
    reference = [r for r in results if r.check == "follows_gradient_descent_step_by_step"][0]
    assert reference.code == "grads_accumulate" and "your `sgd_step`" in reference.message


def test_train_manual_with_an_init_params_that_ignores_the_seed_blames_init_params():
    def init_params(num_features, seed=0):
        g = torch.Generator().manual_seed(0)
        a = num_features ** -0.5
        return ((torch.rand(num_features, 1, generator=g) * 2 - 1) * a).requires_grad_(), torch.zeros(1, requires_grad=True)

    result = assert_caught("train_manual", ns(init_params=init_params), "seed_ignored")
    assert "your `init_params`" in result.message


def test_the_watched_functions_are_the_learners_own_again_after_the_checks():
    namespace = ns()
    before = {name: namespace[name] for name in ("init_params", "forward", "bce_loss", "sgd_step", "train_manual")}
    assert_accepted("train_manual", namespace)
    assert {name: namespace[name] for name in before} == before


def test_an_unwritten_exercise_is_reported_once_and_the_rest_skipped():
    def init_params(num_features, seed=0):
        raise NotImplementedError()

    results = run_checks("init_params", ns(init_params=init_params))
    assert results[0].status == "not_implemented"
    assert {r.status for r in results[1:]} == {"skipped"}


def test_a_train_manual_whose_own_functions_are_unwritten_says_which():
    def bce_loss(probs, targets, eps=1e-7):
        raise NotImplementedError()

    results = run_checks("train_manual", ns(bce_loss=bce_loss))
    assert results[0].status == "not_implemented" and "relies on `bce_loss`" in results[0].message


def test_a_missing_name_says_which_cell_to_run():
    namespace = ns()
    del namespace["forward"]
    result = assert_caught("forward", namespace, "not_defined")
    assert "`forward` is not defined" in result.message


# --- challenge: fit_raw_measurements ---


def test_a_challenge_that_fails_because_of_the_learners_sgd_step_blames_it():
    def sgd_step(params, lr):
        with torch.no_grad():
            for p in params:
                p += lr * p.grad
                p.grad.zero_()

    result = assert_caught("fit_raw_measurements", ns(sgd_step=sgd_step), "sgd_step_broken")
    assert "your `sgd_step`" in result.message and "94%" in result.message
