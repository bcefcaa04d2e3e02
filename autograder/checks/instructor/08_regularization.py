"""Instructor checks for 08_regularization: comparisons with a reference composition, and the challenge on
a split the learner never sees. Never shipped to students (see autograder/registry.py)."""

from __future__ import annotations

import importlib

import torch
import torch.nn.functional as F
from torch import nn

from autograder.checks._support import as_tensor, biggest_gap, instantiate, is_close
from autograder.registry import Checks
from autograder.results import expect, fail

checks = Checks("08_regularization", instructor=True)
public = importlib.import_module("autograder.checks.08_regularization")

GRADER_SEED = 60_221


def _build(RegularizedMLP, num_features, hidden_units, num_classes, p_drop, seed) -> nn.Module:
    torch.manual_seed(seed)
    return instantiate(RegularizedMLP, num_features, hidden_units, num_classes, p_drop=p_drop, what="RegularizedMLP")


def _eval_reference(first, norm, last, x):
    with torch.no_grad():
        return last(F.relu(F.batch_norm(first(x), norm.running_mean, norm.running_var, norm.weight, norm.bias,
                                        training=False, eps=norm.eps)))


def _train_reference(first, norm, last, x):
    """The training-mode output without dropout: batch statistics, no update of the running ones."""
    with torch.no_grad():
        h = first(x)
        normed = (h - h.mean(0)) / torch.sqrt(h.var(0, unbiased=False) + norm.eps) * norm.weight + norm.bias
        return last(F.relu(normed))


@checks.of("RegularizedMLP")
def equals_the_reference_in_eval_mode(RegularizedMLP, num_samples=16, num_features=12, hidden_units=8,
                                      num_classes=3, p_drop=0.2, seed=0):
    model = _build(RegularizedMLP, num_features, hidden_units, num_classes, p_drop, seed)
    first, norm, last = public.layers(model, num_features, hidden_units, num_classes)
    public.warm_up(model, num_features, seed)
    model.eval()
    x = torch.randn(num_samples, num_features, generator=torch.Generator().manual_seed(seed + 1))
    with torch.no_grad():
        out = as_tensor(model(x), "model(x)")
    expected = _eval_reference(first, norm, last, x)
    expect(is_close(out, expected, atol=1e-5),
           f"in eval mode the output differs by up to {biggest_gap(out, expected):.3g} from Linear -> BatchNorm1d "
           "(running statistics) -> ReLU -> Linear.", "wrong_order")


@checks.of("RegularizedMLP")
def averages_to_the_network_without_dropout(RegularizedMLP, num_samples=16, num_features=12, hidden_units=8,
                                            num_classes=3, p_drop=0.2, seed=0):
    model = _build(RegularizedMLP, num_features, hidden_units, num_classes, p_drop, seed)
    first, norm, last = public.layers(model, num_features, hidden_units, num_classes)
    model.train()
    x = torch.randn(num_samples, num_features, generator=torch.Generator().manual_seed(seed))
    expected = _train_reference(first, norm, last, x)
    torch.manual_seed(seed)
    with torch.no_grad():
        outs = torch.stack([as_tensor(model(x), "model(x)") for _ in range(400)])
    mean, spread = outs.mean(0), outs.std(0)
    tolerance = 6 * spread / 20 + 1e-4
    if bool(((mean - expected).abs() <= tolerance).all()):
        return
    fail(f"averaged over many training-mode passes, the output differs by up to {biggest_gap(mean, expected):.3g} "
         "from the network without dropout. With dropout between the ReLU and the last Linear layer (and "
         "survivors scaled by 1 / (1 - p)), the two agree on average. Check the order: Linear, BatchNorm1d, ReLU, "
         "Dropout, Linear.", "wrong_order")


class _Network(nn.Module):
    def __init__(self, num_features: int, num_classes: int):
        super().__init__()
        self.hidden = nn.Linear(num_features, 16)
        self.norm = nn.BatchNorm1d(16)
        self.drop = nn.Dropout(0.5)
        self.out = nn.Linear(16, num_classes)

    def forward(self, x):
        return self.out(self.drop(F.relu(self.norm(self.hidden(x)))))


@checks.of("predict")
def agrees_with_a_real_network(predict, num_samples=24, num_features=6, num_classes=4, seed=0):
    torch.manual_seed(seed)
    model = _Network(num_features, num_classes)
    public.warm_up(model, num_features, seed)
    X = torch.randn(num_samples, num_features, generator=torch.Generator().manual_seed(seed + 5))
    model.eval()
    with torch.no_grad():
        expected = model(X).argmax(dim=1)
    model.train()
    out = as_tensor(predict(model, X), "predict(model, X)")
    expect(out.shape == expected.shape and torch.equal(out.long(), expected),
           f"on a network with batch norm and dropout ({num_samples} samples, {num_classes} classes), predict's "
           "classes differ from the arg-max of its eval-mode logits.", "wrong_classes")


@checks.of("train_despite_noise")
def reaches_the_target_despite_noisy_labels_on_the_graders_split(train_despite_noise):
    public.noisy_outcome(train_despite_noise, GRADER_SEED, "the grader's own split")
