"""The checks of 08_regularization, beyond what its cases say (autograder/cases/08_regularization.py: every
rule's planted mistakes and the correct alternatives, run by test_rules.py): the hidden inputs, what the
instructor's checks add to the public ones, and the wording of a few messages."""

import importlib
import inspect

import nbformat
import torch
from torch import nn

from autograder.cases import cases_of
from support import assert_accepted, assert_caught, solution_namespace, solution_path

NB = "08_regularization"


def ns(**replacements):
    return solution_namespace(NB, **replacements)


def planted(exercise, name):
    """The namespace of the solutions with one planted case of the cases module in place."""
    case = next(c for c in cases_of(NB) if c.exercise == exercise and c.name == name)
    namespace = ns()
    exec(compile(case.code, f"<{name}>", "exec"), namespace)
    return namespace


def test_the_solutions_pass_with_the_hidden_inputs_and_others():
    namespace = ns()
    assert_accepted("inverted_dropout", namespace, num_rows=300, num_cols=700, p=0.6, seed=11, instructor=True)
    assert_accepted("inverted_dropout", namespace, num_rows=1000, num_cols=90, p=0.05, seed=4, instructor=True)
    assert_accepted("RegularizedMLP", namespace, num_features=20, hidden_units=6, num_classes=4, p_drop=0.35, seed=3,
                    instructor=True)
    assert_accepted("RegularizedMLP", namespace, num_samples=2, num_features=5, hidden_units=3, num_classes=7,
                    p_drop=0.6, seed=9, instructor=True)
    assert_accepted("predict", namespace, num_samples=40, num_features=9, num_classes=5, seed=8, instructor=True)
    assert_accepted("predict", namespace, num_samples=1, num_features=3, num_classes=2, seed=2, instructor=True)
    assert_accepted("DeepDropoutMLP", namespace, num_features=9, width=12, hidden_layers=3, num_classes=5,
                    p_drop=0.4, seed=2, instructor=True)
    assert_accepted("DeepDropoutMLP", namespace, hidden_layers=1, p_drop=0.6, seed=7)


def test_the_public_module_holds_no_reference_answer():
    source = inspect.getsource(importlib.import_module("autograder.checks.08_regularization"))
    assert "def _eval_reference" not in source and "def _train_reference" not in source
    assert "_expected_classes" not in source and "GRADER_SEED" not in source


def test_the_missing_scale_message_talks_about_the_mean():
    result = assert_caught("inverted_dropout", planted("inverted_dropout", "no scale"), "missing_dropout_scale")
    assert "mean" in result.message and "(1 - p)" in result.message


def test_dead_weight_is_named_and_its_cause_pointed_at_without_the_fix():
    result = assert_caught("RegularizedMLP", planted("RegularizedMLP", "a bias before the batch norm"), "dead_weight")
    assert "network.0.bias" in result.message and "batch norm" in result.message
    assert "bias=False" not in result.message, "the exact fix waits for repeated failures"


def test_a_mode_left_changed_is_named_by_layer():
    result = assert_caught("predict", planted("predict", "the top-level mode alone"), "mode_not_restored")
    assert "frozen" in result.message and "its BatchNorm1d (eval -> train)" in result.message


class ShiftedInEval(nn.Module):
    """Right in train mode, and in eval mode deterministic, batch-independent and using its running statistics,
    but adding a constant to every logit: only a comparison with the reference composition tells."""

    def __init__(self, num_features, hidden, num_classes, p_drop=0.5):
        super().__init__()
        self.network = nn.Sequential(nn.Linear(num_features, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(),
                                     nn.Dropout(p_drop), nn.Linear(hidden, num_classes))

    def forward(self, x):
        return self.network(x) + (0 if self.training else 0.25)


def test_the_instructor_checks_compare_with_the_reference_network():
    assert_accepted("RegularizedMLP", ns(RegularizedMLP=ShiftedInEval))
    assert_caught("RegularizedMLP", ns(RegularizedMLP=ShiftedInEval), "wrong_order", instructor=True)


def predict_by_hand_softmax_threshold(model, X):
    """Right on the probe model (one class far ahead), wrong on a real network: the first class above 0.3."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            probs = torch.softmax(model(X), dim=1)
    finally:
        for module, mode in modes:
            module.training = mode
    return (probs > 0.3).long().argmax(dim=1)


def test_the_instructor_check_compares_predict_with_a_real_network():
    assert_accepted("predict", ns(predict=predict_by_hand_softmax_threshold))
    assert_caught("predict", ns(predict=predict_by_hand_softmax_threshold), "wrong_classes", instructor=True)


def test_the_challenge_demo_shows_the_visible_test_s_data():
    """The notebook's cell after train_despite_noise draws exactly the split and noise the visible test uses."""
    public = importlib.import_module("autograder.checks.08_regularization")
    X_noisy, y_noisy, X_clean, y_clean = public.noisy_split(0)
    namespace = ns()
    source = next(c for c in nbformat.read(solution_path(NB), as_version=4).cells if c.get("id") == "code-challenge").source
    demo = source[:source.index("def clean_accuracy")]
    exec(compile(demo, "<demo>", "exec"), namespace)
    assert torch.equal(namespace["X_noisy"], X_noisy) and torch.equal(namespace["y_noisy"], y_noisy)
    assert torch.equal(namespace["X_clean"], X_clean) and torch.equal(namespace["y_clean"], y_clean)
