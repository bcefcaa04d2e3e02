"""Instructor checks for 06_training_loop: a reference SGD epoch, training on the digits with a
reference split, and the challenge on a split the learner never sees. Never shipped to students (see
autograder.registry)."""

from __future__ import annotations

import importlib

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Subset, TensorDataset

from autograder.data import load_digits
from autograder.registry import Checks
from autograder.results import expect, fail

checks = Checks("06_training_loop", instructor=True)
public = importlib.import_module("autograder.checks.06_training_loop")

# The challenge's hidden run: another split of the digits, another width and other initial weights.
_HIDDEN_SPLIT, _HIDDEN_WIDTH, _HIDDEN_INIT = 4242, 40, 17


# --- train_one_epoch ------------------------------------------------------------


def _reference_epoch(model: nn.Module, loader, lr: float, clearing: str = "before_each_step") -> None:
    """One epoch of plain SGD, clearing the gradients before each step (right), after each step,
    once before the loop, or never."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    if clearing == "once":
        optimizer.zero_grad()
    for inputs, targets in loader:
        if clearing == "before_each_step":
            optimizer.zero_grad()
        F.cross_entropy(model.net(inputs), targets).backward()
        optimizer.step()
        if clearing == "after_each_step":
            optimizer.zero_grad()


@checks.of("train_one_epoch")
def the_parameters_match_one_plain_sgd_epoch(train_one_epoch, num_samples=40, batch_size=16, seed=0):
    import copy

    lr = 0.2
    start, loader = public._problem(num_samples, batch_size, seed)
    reference = copy.deepcopy(start)
    _reference_epoch(reference, loader, lr)
    learner = copy.deepcopy(start)
    public._stale_gradients(learner, seed)
    public._train(train_one_epoch, learner, loader, lr)
    if public._same_parameters(learner, reference):
        return
    for clearing in ("after_each_step", "once", "never"):
        variant = copy.deepcopy(start)
        public._stale_gradients(variant, seed)
        _reference_epoch(variant, loader, lr, clearing)
        if public._same_parameters(learner, variant):
            when = {"after_each_step": "clears the gradients only after each step",
                    "once": "clears the gradients only once, before the loop",
                    "never": "never clears the gradients"}[clearing]
            fail(f"your epoch {when}, so gradients from earlier (left on the model before the call, or from the "
                 "previous batch) are added into a step. Call optimizer.zero_grad() before every backward pass.",
                 "grads_accumulate")
    fail(f"after one epoch the parameters are up to {public._largest_difference(learner, reference):.3g} away from "
         "one SGD step per batch, in the loader's order. For every batch: zero_grad, forward, loss, backward, step.",
         "wrong_update")


# --- fit ------------------------------------------------------------------------


@checks.of("fit")
def learns_the_digits(fit, epochs=5, seed=0):
    X, y = load_digits()
    torch.manual_seed(seed)
    order = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed)).tolist()
    dataset = TensorDataset(X, y)
    n_val = round(0.2 * len(X))
    train = DataLoader(Subset(dataset, order[n_val:]), batch_size=32, shuffle=True,
                       generator=torch.Generator().manual_seed(seed))
    val = DataLoader(Subset(dataset, order[:n_val]), batch_size=64)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    history = public._fit(fit, model, train, val, torch.optim.Adam(model.parameters(), lr=0.01), epochs)
    first, last = history["val_loss"][0], history["val_loss"][-1]
    expect(last < first, f"over {epochs} epochs on the digits the validation loss went from {first:.4g} to "
           f"{last:.4g}; it should fall.", "loss_not_decreasing")
    accuracy = history["val_acc"][-1]
    expect(accuracy >= 0.9, f"after {epochs} epochs on the digits the validation accuracy is {accuracy:.1%}; "
           "expected at least 90%.", "low_accuracy")


# --- training_settings (challenge) ------------------------------------------------------------


@checks.of("training_settings")
def reaches_the_target_on_a_split_it_never_saw(training_settings, make_loaders, train_one_epoch, evaluate, fit,
                                               seed=0):
    loss = public.settings_validation_loss(training_settings, make_loaders, fit, split_seed=_HIDDEN_SPLIT + seed,
                                           width=_HIDDEN_WIDTH, model_seed=_HIDDEN_INIT + seed)
    public.expect_settings_loss(loss, "on a split the grader drew (another network width and other initial "
                                "weights)", dict(make_loaders=make_loaders, train_one_epoch=train_one_epoch,
                                                 evaluate=evaluate, fit=fit))
