"""The checks of 05_loss_optim beyond its cases (autograder/cases/05_loss_optim.py, run by test_rules): the
wording of messages, what the probes leave behind, that the public module computes no answer, and that the
challenge's demo prints the score its visible test measures."""

import importlib
import inspect

import nbformat
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from autograder import cases
from autograder.checks._probes import StepRecorder
from autograder.runner import run_checks
from support import assert_accepted, assert_caught, case_namespace, solution_namespace, solution_path

NB = "05_loss_optim"
public = importlib.import_module("autograder.checks.05_loss_optim")


def ns(**replacements):
    return solution_namespace(NB, **replacements)


def case(exercise, name):
    return next(c for c in cases.cases_of(NB) if c.exercise == exercise and c.name == name)


def with_case(exercise, name):
    return case_namespace(NB, exercise, name)


def test_the_solution_passes_every_test_call_of_the_notebook():
    namespace = ns()
    for exercise in ("softmax_cross_entropy", "DigitsClassifier", "make_optimizer", "training_step",
                     "predicted_start_loss", "train_with_momentum", "fast_optimizer"):
        for call in cases.test_calls(NB, exercise):
            assert_accepted(exercise, namespace, instructor=call.hidden, **call.inputs)


def test_no_public_helper_runs_a_reference_training_step_or_builds_the_answers_optimizer():
    source = inspect.getsource(public)
    assert not hasattr(public, "_reference_steps") and not hasattr(public, "_sgd_run")
    assert "torch.optim.SGD(" not in source.replace("torch.optim.SGD)", "")
    assert "math.log(10)" not in source  # the prediction's value lives with the instructor


def test_the_built_in_message_names_the_tool_that_was_called():
    result = assert_caught("softmax_cross_entropy", with_case("softmax_cross_entropy", "F.log_softmax"), "used_builtin")
    assert "`F.log_softmax`" in result.message


def test_the_built_ins_are_back_after_the_checks_even_when_the_learners_code_raised():
    def crashing(logits, targets):
        raise ZeroDivisionError("a bug of its own")

    assert_caught("softmax_cross_entropy", with_case("softmax_cross_entropy", "swallows the stop"), "used_builtin")
    results = run_checks("softmax_cross_entropy", ns(softmax_cross_entropy=crashing))
    assert results[0].status == "error" and "ZeroDivisionError" in results[0].message
    logits, targets = torch.randn(5, 3), torch.tensor([0, 1, 2, 1, 0])
    expected = (torch.logsumexp(logits, 1) - logits[torch.arange(5), targets]).mean()
    assert torch.allclose(F.cross_entropy(logits, targets), expected)
    assert torch.allclose(nn.CrossEntropyLoss()(logits, targets), expected)
    for log_probs in (torch.log_softmax(logits, 1), F.log_softmax(logits, 1), logits.log_softmax(1),
                      torch.special.log_softmax(logits, 1), nn.LogSoftmax(dim=1)(logits)):
        assert torch.allclose(F.nll_loss(log_probs, targets), expected)
    assert "log_softmax" not in vars(torch.Tensor)


def test_the_missing_bias_message_is_off_by_the_ten_outputs():
    result = assert_caught("DigitsClassifier", with_case("DigitsClassifier", "no bias"), "missing_bias")
    assert "2400 parameters" in result.message and "expected 2410" in result.message


def test_a_step_that_never_steps_is_told_about_the_step_not_the_loss():
    result = assert_caught("training_step", with_case("training_step", "never steps"), "no_update")
    assert "step" in result.message and "loss_fn" not in result.message


def test_a_message_names_the_cause_and_keeps_the_exact_fix_for_after_repeated_failures():
    namespace = with_case("training_step", "never clears")
    first = assert_caught("training_step", namespace, "grads_accumulate")
    assert "backward() adds into .grad" in first.message and "zero_grad" not in first.message and not first.fix
    for _ in range(3):
        again = assert_caught("training_step", namespace, "grads_accumulate")
    assert "zero_grad" in again.fix


def test_the_recorder_supports_step_with_a_closure_and_returns_its_loss():
    weight = nn.Parameter(torch.tensor([1.0, -2.0]))
    recorder = StepRecorder([weight], lr=0.5)

    def closure():
        recorder.zero_grad()
        loss = (weight ** 2).sum()
        loss.backward()
        return loss

    assert recorder.step(closure).item() == 5.0
    (step,) = recorder.record
    assert torch.equal(step["grads"][0], torch.tensor([2.0, -4.0]))
    assert torch.equal(weight.detach(), torch.tensor([0.0, 0.0]))


def test_a_broken_training_step_is_named_as_the_cause_when_the_challenge_misses_its_target():
    result = assert_caught("fast_optimizer", with_case("fast_optimizer", "training_step never clears"),
                           "training_step_broken")
    assert "because your `training_step`" in result.message and "Fix `training_step` first" in result.message


def test_the_repair_names_a_broken_make_optimizer_as_the_cause():
    result = assert_caught("train_with_momentum", with_case("train_with_momentum", "make_optimizer forgets the momentum"),
                           "make_optimizer_broken")
    assert "because your `make_optimizer`" in result.message


@pytest.fixture(scope="module")
def notebook_cells():
    return {cell.get("id"): cell.source for cell in nbformat.read(solution_path(NB), as_version=4).cells}


def test_the_challenge_demo_prints_the_score_the_visible_test_measures(notebook_cells):
    namespace = ns()
    exec(notebook_cells["code-44"].split("\n\nwith skip_if_unfinished")[0], namespace)
    demo = namespace["challenge_run"](namespace["fast_optimizer"])
    from autograder.learner import InProcess, Learner, talking_to

    learner = Learner(InProcess(namespace))
    with talking_to(learner), learner.session():
        measured = public.fast_validation_loss(learner.name("fast_optimizer"), learner.name("training_step"),
                                               split_seed=0, width=32, model_seed=0)
    assert demo == pytest.approx(measured, abs=1e-6)
