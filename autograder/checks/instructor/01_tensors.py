"""Instructor checks for 01_tensors: the challenge on problems the notebook never shows.
They never ship to students, and run in the judge's process while a class is graded."""

from __future__ import annotations

import importlib

from autograder.registry import Checks
from autograder.results import fail

checks = Checks("01_tensors", instructor=True)
public = importlib.import_module("autograder.checks.01_tensors")

# Other column counts, sizes, weights, biases, noise levels and shares of glitches (5% to 15%).
_HIDDEN_PROBLEMS = (
    dict(num_samples=300, w=(1.5, -0.5, 4.0, 0.25, -2.0, 1.0), b=5.0, noise_std=0.3, glitch_rate=0.15),
    dict(num_samples=350, w=(-1.0, 2.5), b=-3.0, noise_std=1.0, glitch_rate=0.05),
    dict(num_samples=500, w=(0.8, -0.4, 0.3, 1.2), b=0.5, noise_std=2.0, glitch_rate=0.12),
)


@checks.of("fit_linear", rule=("given_data", "target"))
def comes_close_to_the_true_line_on_other_problems(fit_linear, mse, autograd_gradients, analytic_gradients, seed=0):
    helpers = dict(mse=mse, autograd_gradients=autograd_gradients, analytic_gradients=analytic_gradients)
    for i, problem in enumerate(_HIDDEN_PROBLEMS):
        X, y = public.glitched_problem(seed=1000 + 37 * seed + i, **problem)
        w, b, calls = public.fitted_line(fit_linear, X, y, helpers, unlike_the_notebook=True)
        ratio = public.error_ratio(w, b, problem["w"], problem["b"], problem["noise_std"])
        if ratio > public.FIT_TARGET:
            found = (f"on a problem with {X.shape[1]} columns, {len(X)} samples and {problem['glitch_rate']:.0%} glitches, your "
                     f"line's expected squared error on new samples is {ratio:.3g} times the noise variance; the "
                     f"target is at most {public.FIT_TARGET}")
            public.blame_what_it_used(found, calls, **helpers)
            fail(f"{found}. A fixed threshold, learning rate or number of steps tuned to the notebook's problem does "
                 "not suit every problem: derive them from the data you receive.", "below_target")
