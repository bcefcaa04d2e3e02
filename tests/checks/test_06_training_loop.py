"""The checks of 06_training_loop beyond its cases (autograder/cases/06_training_loop.py, run by test_rules): the
wording of messages, what the probes leave behind, the speed of the checks, that the public module keeps no
reference, and that the challenge's demo prints the score its visible test measures."""

import importlib
import inspect

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import pytest  # noqa: E402

from autograder import cases  # noqa: E402
from autograder.learner import InProcess, Learner, talking_to  # noqa: E402
from autograder.runner import run_checks  # noqa: E402
from support import assert_accepted, assert_caught, case_namespace, solution_namespace, solution_path  # noqa: E402

NB = "06_training_loop"
EXERCISES = ("make_loaders", "train_one_epoch", "evaluate", "fit", "plot_history", "predicted_higher_loss",
             "standardized_loaders", "training_settings")
public = importlib.import_module("autograder.checks.06_training_loop")


def ns(**replacements):
    return solution_namespace(NB, **replacements)


def with_case(exercise, name):
    return case_namespace(NB, exercise, name)


def test_the_solution_passes_every_test_call_of_the_notebook():
    namespace = ns()
    for exercise in EXERCISES:
        for call in cases.test_calls(NB, exercise):
            assert_accepted(exercise, namespace, instructor=call.hidden, **call.inputs)


def test_no_public_check_module_keeps_a_reference_epoch_or_a_reference_split():
    source = inspect.getsource(public)
    assert not hasattr(public, "_reference_epoch")
    assert "torch.randperm(len(X)" not in source
    assert "torch.optim.SGD(params" not in source


@pytest.mark.parametrize("seed", range(3))
def test_the_solution_fit_reaches_the_digits_target_for_other_seeds(seed):
    results = run_checks("fit", ns(), {"epochs": 4, "seed": seed}, hidden=True)  # the digits run is an instructor check
    assert all(r.passed for r in results), [(r.check, r.message) for r in results if not r.passed]


def test_every_check_takes_a_few_seconds_at_most():
    namespace = ns()
    for exercise in EXERCISES:
        run_checks(exercise, namespace)  # warm up
        for result in run_checks(exercise, namespace):
            assert result.seconds < 5, f"{result.check} took {result.seconds} s"


def test_the_rounding_message_names_round_and_both_sizes():
    result = assert_caught("make_loaders", with_case("make_loaders", "int() rounds down"), "wrong_val_size")
    assert "round(" in result.message and "30" in result.message and "31" in result.message


def test_the_unweighted_mean_message_gives_the_batch_sizes():
    result = assert_caught("train_one_epoch", with_case("train_one_epoch", "mean of batch means"), "unweighted_mean")
    assert "16, 16, 8" in result.message


def test_the_last_batchs_loss_is_told_about_the_mean_not_the_loss_function():
    result = assert_caught("train_one_epoch", with_case("train_one_epoch", "the last batch's loss"), "last_batch_only")
    assert "last batch" in result.message and "loss_fn" not in result.message


def test_a_broken_evaluate_is_named_as_the_cause_of_fits_wrong_validation_loss():
    result = assert_caught("fit", with_case("fit", "a broken evaluate, named as the cause"), "evaluate_broken")
    assert "fit's validation loss or accuracy is wrong because your `evaluate`" in result.message
    assert "plain mean of the batches" in result.message


def test_a_broken_train_one_epoch_is_named_as_the_cause_of_fits_wrong_training_loss():
    result = assert_caught("fit", with_case("fit", "a broken train_one_epoch, named as the cause"),
                           "train_one_epoch_broken")
    assert "fit's training loss is wrong because your `train_one_epoch`" in result.message


def test_the_plt_mistake_is_told_where_pyplot_draws():
    result = assert_caught("plot_history", with_case("plot_history", "plt. into the last axes"), "wrong_axes")
    assert "the last one created" in result.message


def test_the_checks_leave_no_figure_open_and_tqdm_as_it_was():
    from tqdm import std

    before, init = set(plt.get_fignums()), std.tqdm.__init__
    run_checks("plot_history", ns())
    run_checks("plot_history", with_case("plot_history", "no labels"))
    run_checks("fit", with_case("fit", "always shows its bar"))
    assert set(plt.get_fignums()) == before and std.tqdm.__init__ is init


@pytest.fixture(scope="module")
def notebook_cells():
    return {cell.get("id"): cell.source for cell in nbformat.read(solution_path(NB), as_version=4).cells}


def test_the_challenge_demo_prints_the_score_the_visible_test_measures(notebook_cells):
    namespace = ns()
    exec(notebook_cells["code-42"].split("\n\nwith skip_if_unfinished")[0], namespace)
    demo = namespace["one_epoch"](namespace["training_settings"]())
    learner = Learner(InProcess(namespace))
    with talking_to(learner), learner.session():
        measured = public.settings_validation_loss(*(learner.name(name) for name in (
            "training_settings", "make_loaders", "fit")), split_seed=0, width=32, model_seed=0)
    assert demo == pytest.approx(measured, abs=1e-5)


def test_the_leak_demo_shows_the_leak_of_the_given_helper_and_none_after_the_repair(notebook_cells, capsys):
    given = with_case("standardized_loaders", "the colleague's helper, unrepaired")
    exec(notebook_cells["code-leak-demo"], given)
    assert "changed 1438 of the 1438 training inputs" in capsys.readouterr().out
    repaired = ns()
    exec(notebook_cells["code-leak-demo"], repaired)
    exec(notebook_cells["code-leak-after"], repaired)
    assert "changed 0 of the 1438 training inputs" in capsys.readouterr().out.splitlines()[-1]
