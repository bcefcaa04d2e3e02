"""Instructor checks for 07_devices_checkpoints: the prediction's answer, and the challenge on digits the
learner never sees. Never shipped to students (see autograder/registry.py)."""

from __future__ import annotations

import importlib

import torch

from autograder.registry import Checks
from autograder.results import expect

checks = Checks("07_devices_checkpoints", instructor=True)
public = importlib.import_module("autograder.checks.07_devices_checkpoints")

GRADER_SEED = 31_337
GRADER_VAL_FRACTION = 0.3
# The grader's digits are unlike the notebook's: mirrored left to right, their classes named otherwise.
GRADER_NAMES = torch.tensor([6, 2, 9, 0, 4, 8, 1, 5, 3, 7])


@checks.of("resume_prediction", rule="matches_the_run")
def predicts_what_the_runs_show(resume_prediction):
    answer = resume_prediction()
    expect(isinstance(answer, str) and answer.strip().lower() == "b",
           f"you predicted {answer!r}; the runs show that B alone ends on A's weights: B got Adam's running "
           "averages back, while C's fresh Adam took other steps from the same weights.", "wrong_prediction")


def _mirrored(X: torch.Tensor) -> torch.Tensor:
    return X.reshape(-1, 8, 8).flip(-1).reshape(-1, 64).contiguous()


@checks.of("train_tiny_model", rule=("accuracy", "given_data_only"))
def reaches_the_target_within_the_byte_budget_on_the_graders_digits(train_tiny_model):
    X, y, held_X, held_y = public.tiny_split(GRADER_SEED, GRADER_VAL_FRACTION)
    public.tiny_outcome(train_tiny_model, _mirrored(X), GRADER_NAMES[y], _mirrored(held_X), GRADER_NAMES[held_y],
                        "the grader's own digits, mirrored, with other class names", check_state=False)
