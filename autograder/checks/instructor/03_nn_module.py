"""Instructor checks for 03_nn_module: the challenge on circles the notebook never shows, and the value of
the prediction. They never ship to students."""

from __future__ import annotations

import importlib

from autograder.registry import Checks
from autograder.results import expect

checks = Checks("03_nn_module", instructor=True)
public = importlib.import_module("autograder.checks.03_nn_module")

# Other centres and radii in the ranges the notebook states (centres within ±0.6, radii 0.9 to 1.4):
# one small circle (few points inside), one large.
_HIDDEN_CIRCLES = (((-0.5, 0.4), 0.9, 11), ((0.6, 0.6), 1.4, 23))

# count_parameters(Mixed()): linear 4·2 + 2, scale 2; the plain tensor `shift` is not registered and the
# frozen layer does not count by default.
_MIXED_COUNT = 12


@checks.of("CircleClassifier", rule="other_circles")
def reaches_95_percent_on_hidden_circles(CircleClassifier, seed=0):
    for centre, radius, circle_seed in _HIDDEN_CIRCLES:
        accuracy = public.circle_accuracy(CircleClassifier, centre, radius, circle_seed + seed)
        expect(accuracy >= public.CIRCLE_TARGET,
               f"on another circle (centre {centre}, radius {radius}) your model, trained by train_module, classifies "
               f"{accuracy:.1%} of new points correctly; the target is {public.CIRCLE_TARGET:.0%}. The design must "
               "learn where the circle is, not know it.", "below_target")


@checks.of("predict_mixed_count", rule="right")
def is_what_count_parameters_gives(predict_mixed_count):
    value = predict_mixed_count()
    expect(value == _MIXED_COUNT,
           f"your prediction was {value!r}; count_parameters(Mixed()) gives {_MIXED_COUNT}. The cell after your "
           "prediction shows which tensors count.", "wrong_prediction")
