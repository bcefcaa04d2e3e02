"""Instructor checks for 01_tensors: the challenge on problems the notebook never shows.
They never ship to students."""

from __future__ import annotations

import importlib

from autograder.registry import Checks
from autograder.results import expect

checks = Checks("01_tensors", instructor=True)
public = importlib.import_module("autograder.checks.01_tensors")

# Other sizes, column scales from 0.1 to 10 in another order, a large bias, other seeds.
_HIDDEN_PROBLEMS = (
    dict(num_samples=300, w=(1.5, -0.5, 4.0, 0.25, -2.0, 1.0), b=5.0, scales=(0.1, 1.0, 0.3, 10.0, 3.0, 1.0),
         noise_std=0.3, seed=31),
    dict(num_samples=250, w=(-1.0, 2.5), b=-3.0, scales=(5.0, 0.2), noise_std=1.0, seed=47),
)


@checks.of("fit_linear")
def predicts_new_samples_almost_as_well_as_the_truth_on_hidden_problems(fit_linear):
    for problem in _HIDDEN_PROBLEMS:
        ratio = public.error_ratio(fit_linear, **problem)
        expect(ratio <= public.FIT_TARGET,
               f"on a problem with {len(problem['w'])} columns of scales {problem['scales']} and bias {problem['b']}, "
               f"your line's mean squared error on new samples is {ratio:.3g} times the noise variance; the target is "
               f"at most {public.FIT_TARGET}. Fit whatever data you are given: no fixed learning rate or number of "
               "steps suits every scale.", "below_target")
