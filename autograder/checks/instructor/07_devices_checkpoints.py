"""Instructor checks for 07_devices_checkpoints: the challenge on a split the learner never sees.
Never shipped to students (see autograder/registry.py)."""

from __future__ import annotations

import importlib

from autograder.registry import Checks

checks = Checks("07_devices_checkpoints", instructor=True)
public = importlib.import_module("autograder.checks.07_devices_checkpoints")

GRADER_SEED = 31_337
GRADER_VAL_FRACTION = 0.3


@checks.of("train_tiny_model")
def reaches_the_target_within_the_byte_budget_on_the_graders_split(train_tiny_model):
    public.tiny_outcome(train_tiny_model, GRADER_SEED, GRADER_VAL_FRACTION, "the grader's own split")
