"""Instructor checks for 04_sequential: comparisons with a reference MLP, the challenge on spirals the
learner never sees, and the value of the prediction. Never shipped to students (see autograder.registry)."""

from __future__ import annotations

import importlib

import torch
from torch import nn

from autograder.checks._support import biggest_gap, is_close
from autograder.learner import is_instance, probe, seeded
from autograder.registry import Checks
from autograder.results import expect

checks = Checks("04_sequential", instructor=True)
public = importlib.import_module("autograder.checks.04_sequential")

# Seeds of the challenge's hidden spirals: other draws of the same distribution than the notebook's.
_HIDDEN_SPIRALS = (7919, 104729)

# The networks of the prediction whose boundary is a straight line: a stack of Linear layers with no
# activation between them is one linear map (a and c); a sigmoid between layers bends it (b), as a ReLU does (d).
_STRAIGHT = "ac"


def _reference_mlp(sizes, activation=nn.ReLU) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        if i:
            layers.append(activation())
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
    return nn.Sequential(*layers)


@checks.of("make_mlp", rule="runs_in_order")
def matches_a_reference_mlp_with_the_same_weights(make_mlp, sizes=(6, 5, 4, 3), num_samples=8, seed=0):
    for activation in (nn.ReLU, nn.Tanh):
        probe(torch.random.manual_seed, seed)
        network = public._mlp(make_mlp, list(sizes), activation=activation)
        with seeded(seed):
            reference = _reference_mlp(sizes, activation)
        learner_linears = [m for m in network.modules() if is_instance(m, nn.Linear)]
        X = public._inputs(num_samples, sizes[0], seed)
        out = network(X)
        with torch.no_grad():
            for ref, learner in zip([m for m in reference if isinstance(m, nn.Linear)], learner_linears):
                weight, bias = public._weights(learner)
                ref.weight.copy_(weight)
                ref.bias.copy_(bias)
            expected = reference(X)
        expect(is_close(out, expected),
               f"with activation=nn.{activation.__name__}, make_mlp({list(sizes)}) computes something else than "
               f"Linear, {activation.__name__}, ..., Linear with the same weights (gap up to "
               f"{biggest_gap(out, expected):.3g}).", "wrong_values")


@checks.of("spiral_classifier", rule="other_spirals")
def separates_spirals_it_never_saw(spiral_classifier, seed=0):
    train_seed, test_seed = _HIDDEN_SPIRALS
    accuracy = public.spiral_accuracy(spiral_classifier, train_seed=train_seed + seed, test_seed=test_seed + seed,
                                      model_seed=seed + 1)
    public.expect_spiral_accuracy(accuracy, "spiral points the grader drew (never shown in the notebook)")


@checks.of("predict_straight_boundaries", rule="right")
def names_the_straight_boundaries(predict_straight_boundaries):
    value = predict_straight_boundaries()
    expect(value == _STRAIGHT,
           f"your prediction was {value!r}; the networks that can only draw a straight boundary are "
           f"{_STRAIGHT!r}: Linear layers with nothing between them make one linear map, while any non-linear "
           "activation between them (a sigmoid too) lets the boundary bend. The cell after your prediction shows "
           "it.", "wrong_prediction")
