"""Instructor checks for 04_sequential: comparisons with a reference MLP, and the challenge on
spirals the learner never sees. Never shipped to students (see autograder.registry)."""

from __future__ import annotations

import importlib

import torch
from torch import nn

from autograder.checks._support import biggest_gap, is_close
from autograder.registry import Checks
from autograder.results import expect

checks = Checks("04_sequential", instructor=True)
public = importlib.import_module("autograder.checks.04_sequential")

# Seeds of the challenge's hidden spirals: other draws of the same distribution than the notebook's.
_HIDDEN_SPIRALS = (7919, 104729)


def _reference_mlp(sizes, activation=nn.ReLU) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        if i:
            layers.append(activation())
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
    return nn.Sequential(*layers)


@checks.of("make_mlp")
def matches_a_reference_mlp_with_the_same_weights(make_mlp, sizes=(6, 5, 4, 3), num_samples=8, seed=0):
    for activation in (nn.ReLU, nn.Tanh):
        torch.manual_seed(seed)
        network = public._mlp(make_mlp, list(sizes), activation=activation)
        reference = _reference_mlp(sizes, activation)
        learner_linears = [m for m in network.modules() if isinstance(m, nn.Linear)]
        with torch.no_grad():
            for ref, learner in zip([m for m in reference if isinstance(m, nn.Linear)], learner_linears):
                ref.weight.copy_(learner.weight)
                ref.bias.copy_(learner.bias)
            X = public._inputs(num_samples, sizes[0], seed)
            out, expected = network(X), reference(X)
        expect(is_close(out, expected),
               f"with activation=nn.{activation.__name__}, make_mlp({list(sizes)}) computes something else than "
               f"Linear, {activation.__name__}, ..., Linear with the same weights (gap up to "
               f"{biggest_gap(out, expected):.3g}).", "wrong_values")


@checks.of("spiral_classifier")
def separates_spirals_it_never_saw(spiral_classifier, seed=0):
    train_seed, test_seed = _HIDDEN_SPIRALS
    accuracy = public.spiral_accuracy(spiral_classifier, train_seed=train_seed + seed, test_seed=test_seed + seed,
                                      model_seed=seed + 1)
    public.expect_spiral_accuracy(accuracy, "spiral points the grader drew (never shown in the notebook)")
