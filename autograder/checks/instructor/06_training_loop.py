"""Instructor checks for 06_training_loop: a reference SGD epoch, training on the digits, the prediction's
answer, the repair's validation scaling, and the challenge on a split the learner never sees. They run as the
judge, outside the learner's process, and are never shipped to students (see autograder.registry)."""

from __future__ import annotations

import importlib

import torch
from torch.nn import functional as F

from autograder.checks._support import is_close
from autograder.data import load_digits
from autograder.learner import probe
from autograder.registry import Checks
from autograder.results import expect, fail

checks = Checks("06_training_loop", instructor=True)
public = importlib.import_module("autograder.checks.06_training_loop")

# The challenge's hidden run: another split of the digits, another width and other initial weights.
_HIDDEN_SPLIT, _HIDDEN_WIDTH, _HIDDEN_INIT = 4242, 40, 17


# --- train_one_epoch ------------------------------------------------------------


def _reference_epoch(start, arriving, X, y, batch_size: int, lr: float, clearing: str = "before_each_step"):
    """One epoch of plain SGD over the unshuffled batches, clearing the gradients before each step (right), after
    each step, once before the loop, or never; the parameters after it."""
    params = [p.detach().clone().requires_grad_() for p in start]
    for p, g in zip(params, arriving):
        p.grad = None if g is None else g.clone()
    optimizer = torch.optim.SGD(params, lr=lr)
    if clearing == "once":
        optimizer.zero_grad()
    for first in range(0, len(X), batch_size):
        if clearing == "before_each_step":
            optimizer.zero_grad()
        F.cross_entropy(public._logits(params, X[first:first + batch_size]), y[first:first + batch_size]).backward()
        optimizer.step()
        if clearing == "after_each_step":
            optimizer.zero_grad()
    return [p.detach() for p in params]


@checks.of("train_one_epoch", rule="fresh_steps")
def the_parameters_match_one_plain_sgd_epoch(train_one_epoch, num_samples=40, batch_size=16, seed=0):
    lr = 0.2
    model, loader, X, y, start = public._problem(num_samples, batch_size, seed, stale_seed=seed + 7)
    stale = probe(public._grads, model)
    public._train(train_one_epoch, model, loader, lr)
    found = probe(public._parameters, model)

    def same(params):
        return all(is_close(p, q, atol=1e-6, rtol=1e-5) for p, q in zip(found, params))

    if same(_reference_epoch(start, [None] * len(start), X, y, batch_size, lr)):
        return
    for clearing, when in (("after_each_step", "clears the gradients only after each step"),
                           ("once", "clears the gradients only once, before the loop"),
                           ("never", "never clears the gradients")):
        if same(_reference_epoch(start, stale, X, y, batch_size, lr, clearing)):
            fail(f"your epoch {when}, so gradients from earlier (left on the model before the call, or from the "
                 "previous batch) are added into a step.", "grads_accumulate")
    fail("after one epoch the parameters are not where one SGD step per batch, in the loader's order, takes them.",
         "wrong_update")


# --- fit ------------------------------------------------------------------------


@checks.of("fit", rule="trains")
def learns_the_digits(fit, epochs=5, seed=0):
    X, y = load_digits()
    order = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = round(0.2 * len(X))
    model, train, val, optimizer, loss_fn = probe(public._digits_run, X, y, order, n_val, seed)
    probe(public._one_thread)
    history = probe(public._fit_quietly, fit, model, train, val, loss_fn, optimizer, epochs)["history"]
    if not isinstance(history, dict) or not history.get("val_loss"):
        fail("fit returned no history of validation losses.", "wrong_return")
    first, last = history["val_loss"][0], history["val_loss"][-1]
    expect(last < first, f"over {epochs} epochs on the digits the recorded validation loss went from {first:.4g} to "
           f"{last:.4g}; it should fall.", "loss_not_decreasing")
    W1, b1, W2, b2 = probe(public._parameters, model)
    held_out = torch.tensor(order[:n_val])
    logits = F.linear(torch.tanh(F.linear(X[held_out], W1, b1)), W2, b2)
    accuracy = float((logits.argmax(1) == y[held_out]).float().mean())
    expect(accuracy >= 0.9, f"after {epochs} epochs on the digits the model gets {accuracy:.1%} of the validation "
           "images right; expected at least 90%.", "low_accuracy")


# --- predicted_higher_loss ---------------------------------------------------------------------


@checks.of("predicted_higher_loss", rule="right_choice")
def is_the_loss_that_is_higher(predicted_higher_loss):
    value = public._choice(predicted_higher_loss)
    expect(value == "train_loss",
           f"you predicted {value!r}; after the first epoch the training loss is the higher one. It is the mean over "
           "the epoch's batches, most of them met while the model still knew little, whereas the validation loss is "
           "measured once, by the model at the end of the epoch.", "wrong_prediction")


# --- standardized_loaders ------------------------------------------------------------------------


@checks.of("standardized_loaders", rule="no_leak")
def scales_the_validation_inputs_with_the_training_statistics(standardized_loaders, num_samples=200, num_features=5,
                                                             batch_size=32, val_fraction=0.2, seed=0):
    X, y = public._named_data(num_samples, num_features, seed)
    train, val, _ = public._standardized(standardized_loaders, X, y, batch_size, val_fraction, seed)
    rows = torch.tensor(sorted(train))
    mean = X[rows].double().mean(dim=0)
    found = torch.stack([val[sample] for sample in sorted(val)]).double()
    originals = X[torch.tensor(sorted(val))].double()
    for correction in (1, 0):
        std = X[rows].double().std(dim=0, correction=correction)
        if is_close(found, (originals - mean) / std, atol=1e-4, rtol=1e-4):
            return
    fail("the validation inputs are not scaled with the mean and standard deviation of the training samples: a "
         "model trained on the training inputs then sees validation inputs on another scale.", "wrong_scaling")


# --- training_settings (challenge) ------------------------------------------------------------


@checks.of("training_settings", rule="target")
def reaches_the_target_on_a_split_it_never_saw(training_settings, make_loaders, train_one_epoch, evaluate, fit,
                                               seed=0):
    loss = public.settings_validation_loss(training_settings, make_loaders, fit, split_seed=_HIDDEN_SPLIT + seed,
                                           width=_HIDDEN_WIDTH, model_seed=_HIDDEN_INIT + seed)
    public.expect_settings_loss(loss, "on a split the grader drew (another network width and other initial "
                                "weights)", dict(make_loaders=make_loaders, train_one_epoch=train_one_epoch,
                                                 evaluate=evaluate, fit=fit))
