"""Instructor checks for 03_nn_module: the challenge on circles the notebook never shows.
They never ship to students."""

from __future__ import annotations

import importlib

from autograder.registry import Checks
from autograder.results import expect

checks = Checks("03_nn_module", instructor=True)
public = importlib.import_module("autograder.checks.03_nn_module")

# Other centres and radii inside the square, some circles small (few points inside), some large.
_HIDDEN_CIRCLES = (((-0.5, 0.4), 0.9, 11), ((0.6, 0.6), 1.4, 23))


@checks.of("CircleClassifier")
def reaches_95_percent_on_hidden_circles(CircleClassifier):
    for centre, radius, seed in _HIDDEN_CIRCLES:
        accuracy = public.circle_accuracy(CircleClassifier, centre, radius, seed)
        expect(accuracy >= public.CIRCLE_TARGET,
               f"on another circle (centre {centre}, radius {radius}) your model, trained by train_module, classifies "
               f"{accuracy:.1%} of new points correctly; the target is {public.CIRCLE_TARGET:.0%}. The design must "
               "learn where the circle is, not know it.", "below_target")
