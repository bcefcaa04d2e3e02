"""The checks of 09_capstone beyond what its cases say (autograder/cases/09_capstone.py: every rule's planted
mistakes and the correct alternatives, run by test_rules.py): the test calls of the notebook, that the public
module keeps no answer, the wording of a few messages, what the instructor's checks add, the challenge's clock
and held-out digits, and that the challenge's demo measures what its visible test measures."""

import importlib
import inspect

import nbformat
import torch
import torch.nn.functional as F
from torch import nn

from autograder import cases
from autograder.data import load_digits
from autograder.runner import run_checks
from support import assert_accepted, assert_caught, case_namespace, solution_namespace, solution_path

NB = "09_capstone"
EXERCISES = ("conv_prediction", "DigitsCNN", "train_digits", "confusion_matrix", "to_images", "train_small_cnn")
public = importlib.import_module("autograder.checks.09_capstone")


def ns(**replacements):
    return solution_namespace(NB, **replacements)


def with_case(exercise, name):
    return case_namespace(NB, exercise, name)


def test_the_solution_passes_every_test_call_of_the_notebook():
    namespace = ns()
    for exercise in EXERCISES:
        calls = cases.test_calls(NB, exercise)
        assert calls, exercise
        for call in calls:
            assert_accepted(exercise, namespace, instructor=call.hidden, **call.inputs)


def test_the_public_module_holds_no_reference_answer():
    source = inspect.getsource(public)
    assert "_reference" not in source and "GRADER_SEED" not in source and "PREDICTED_LAYER" not in source
    assert "1168" not in source and "13, 13" not in source, "the prediction's answer stays with the instructor"
    assert "counts[t, p] += 1" not in source, "the real network's counts are the instructor's"
    assert "permute(0, 3, 1, 2)" not in source, "the repair's answer is not in the public checks"


def test_the_checks_change_no_state_of_the_notebook_they_check():
    namespace = ns()
    seeded_state = torch.get_rng_state()
    for exercise in ("DigitsCNN", "confusion_matrix", "to_images"):
        run_checks(exercise, namespace)
    assert torch.equal(torch.get_rng_state(), seeded_state)


def test_the_budget_message_names_the_big_layer_without_the_fix():
    result = assert_caught("DigitsCNN", with_case("DigitsCNN", "no pooling before a wide Linear"),
                           "too_many_parameters")
    assert "50,000" in result.message and "Linear(4096, 128)" in result.message
    assert "MaxPool2d" not in result.message, "the exact fix waits for repeated failures"


def test_numbers_kept_in_buffers_are_named_where_they_are():
    result = assert_caught("train_small_cnn", with_case("train_small_cnn", "the Linear head kept in buffers (issue 22)"),
                           "numbers_outside_parameters")
    assert "head_weight (2,560)" in result.message and "2,000" in result.message


def test_the_transposed_images_message_says_where_a_pixel_lands_not_how_to_fix_it():
    result = assert_caught("to_images", with_case("to_images", "the given code"), "transposed")
    assert "row k % 8, column k // 8" in result.message
    assert "permute" not in result.message


def test_a_broken_DigitsCNN_is_named_when_train_digits_fails():
    result = assert_caught("train_digits", with_case("train_digits", "a DigitsCNN whose flatten mixes images, blamed"),
                           "DigitsCNN_broken")
    assert "DigitsCNN" in result.message


def test_a_model_short_of_the_target_is_told_in_counts_not_a_rounded_percentage():
    result = assert_caught("train_digits", with_case("train_digits", "a learning rate far too small"), "low_accuracy")
    assert "of the 359 digits" in result.message and "expected at least 342 (95%)" in result.message
    assert "DigitsCNN design" in result.message and "lr=0.01" not in result.message


def confusion_by_softmax_threshold(model, loader, num_classes=10):
    """Right on the public checks' model (one class far ahead), wrong on a real network: the first class whose
    probability is above 0.3, else class 0."""
    model.eval()
    matrix = torch.zeros(num_classes, num_classes, dtype=torch.long)
    with torch.no_grad():
        for inputs, targets in loader:
            predictions = (torch.softmax(model(inputs), dim=1) > 0.3).long().argmax(dim=1)
            for t, p in zip(targets.tolist(), predictions.tolist()):
                matrix[t, p] += 1
    return matrix


def test_the_instructor_check_counts_the_predictions_of_a_real_network():
    namespace = ns(confusion_matrix=confusion_by_softmax_threshold)
    assert_accepted("confusion_matrix", namespace)
    assert_caught("confusion_matrix", namespace, "wrong_counts", instructor=True, num_samples=37, num_classes=4,
                  batch_size=5, seed=5)


def test_the_challenge_measures_cpu_time(monkeypatch):
    monkeypatch.setattr(public, "CHALLENGE_CPU_SECONDS", 0.01)
    result = assert_caught("train_small_cnn", ns(), "over_time_budget")
    assert "10 s" not in result.message and "0.01 s" in result.message


def test_the_hidden_challenge_uses_digits_of_its_own():
    """A design that has memorised the visible split's held-out digits passes the visible test only."""
    _, _, held_images, held_labels = public.visible_split(0)

    class Lookup(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 1, bias=False)
            nn.init.ones_(self.conv.weight)

        def forward(self, x):
            x = self.conv(x)
            match = ((x.flatten(1)[:, None, :] - held_images.flatten(1)[None]).abs().sum(-1) < 1e-4).float()
            return match @ F.one_hot(held_labels, 10).float() * 10 + x.flatten(1)[:, :10] * 1e-3

    namespace = ns()
    namespace["train_small_cnn"] = lambda images, labels: Lookup()
    assert_accepted("train_small_cnn", namespace)
    assert_caught("train_small_cnn", namespace, "below_target", instructor=True)


def test_the_visible_split_is_the_split_of_make_loaders():
    namespace = ns()
    X, y = load_digits()
    train_loader, val_loader = namespace["make_loaders"](X.reshape(-1, 1, 8, 8), y, seed=0)
    images, labels, held_images, held_labels = public.visible_split(0)
    assert torch.equal(held_images, torch.cat([inputs for inputs, _ in val_loader]))
    assert torch.equal(held_labels, torch.cat([targets for _, targets in val_loader]))
    assert len(labels) == len(train_loader.dataset)


def test_the_challenge_demo_measures_the_visible_test_s_split():
    """The cell after train_small_cnn trains on the same samples and measures on the same held-out digits as
    the visible test."""
    code = [c.source for c in nbformat.read(solution_path(NB), as_version=4).cells if c.cell_type == "code"]
    made = next(line for source in code for line in source.splitlines() if line.startswith("images = "))
    demo = next(source for source in code if "train_small_cnn(images[training]" in source)
    namespace = ns()
    exec(compile(made + "\n" + demo[:demo.index("with skip_if_unfinished")], "<demo>", "exec"), namespace)
    images, labels, held_images, held_labels = public.visible_split(0)
    assert torch.equal(namespace["images"][namespace["training"]], images)
    assert torch.equal(namespace["y"][namespace["training"]], labels)
    assert torch.equal(namespace["images"][namespace["held_out"]], held_images)
    assert torch.equal(namespace["y"][namespace["held_out"]], held_labels)
