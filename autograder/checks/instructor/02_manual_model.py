"""Instructor checks for 02_manual_model: a reference gradient descent to compare train_manual with, and the
hidden data of the challenge. They never ship to students, and run in the judge's process while a class is
graded: the learner's code receives the training data only, never the held-out labels."""

from __future__ import annotations

import importlib

import torch

from autograder.checks._support import biggest_gap, is_close
from autograder.data import load_breast_cancer
from autograder.registry import Checks
from autograder.results import CheckFailure, fail

checks = Checks("02_manual_model", instructor=True)
public = importlib.import_module("autograder.checks.02_manual_model")


def _descend(X, y, W, b, epochs: int, lr: float, clear_gradients: bool = True):
    """Plain full-batch gradient descent from (W, b), as the exercise describes it."""
    W = W.detach().clone().requires_grad_()
    b = b.detach().clone().requires_grad_()
    for _ in range(epochs):
        probs = torch.sigmoid(X @ W + b).clamp(1e-7, 1 - 1e-7)
        loss = -(y * probs.log() + (1 - y) * (1 - probs).log()).mean()
        loss.backward()
        with torch.no_grad():
            for p in (W, b):
                p -= lr * p.grad
                if clear_gradients:
                    p.grad.zero_()
    return W.detach(), b.detach()


def _hidden_problem(num_samples: int, num_features: int, seed: int):
    """A separable-ish problem the notebook never shows: other sizes, so code tied to the
    breast cancer set (30 columns, or the notebook's own X and y) cannot follow."""
    gen = torch.Generator().manual_seed(1000 + seed)
    X = torch.randn(num_samples, num_features, generator=gen)
    direction = torch.randn(num_features, 1, generator=gen)
    y = ((X @ direction + 0.0 * torch.randn(num_samples, 1, generator=gen)) > 0).float()
    return X, y


@checks.of("train_manual", rule=("one_step", "given_data"))
def follows_gradient_descent_step_by_step(train_manual, init_params, forward, bce_loss, sgd_step, epochs=100, lr=0.1,
                                          seed=0, num_samples=None, num_features=None):
    if num_samples is None:
        X, y = load_breast_cancer()
        where = "the breast cancer set"
    else:
        X, y = _hidden_problem(num_samples, num_features, seed)
        where = f"a data set of {num_samples} samples and {num_features} features"
    W, b, _ = public._train(train_manual, X, y, epochs=epochs, lr=lr, seed=seed)
    W0, b0 = public._init(init_params, X.shape[1], seed)
    W_ref, b_ref = _descend(X, y, W0, b0, epochs, lr)
    if is_close(W, W_ref, atol=2e-3, rtol=1e-3) and is_close(b, b_ref, atol=2e-3, rtol=1e-3):
        return
    helpers = {"init_params": init_params, "forward": forward, "bce_loss": bce_loss, "sgd_step": sgd_step}
    # Gradients that pile up make the run chaotic, so it is told by its first epochs, not by where it ends.
    W_short, _, _ = public._train(train_manual, X, y, epochs=3, lr=lr, seed=seed)
    W_acc, _ = _descend(X, y, W0, b0, 3, lr, clear_gradients=False)
    if is_close(W_short, W_acc, atol=1e-4, rtol=1e-4):
        found = ("the trained weights are those of gradient descent whose gradients are never cleared: each step "
                 "followed the sum of all gradients so far.")
        public._blame(found, helpers, ("sgd_step",), "grads_accumulate")
        fail(found, "grads_accumulate", fix="Clear the gradients after every step (your sgd_step does it).")
    found = (f"on {where}, starting from init_params(..., seed={seed}), {epochs} epochs of full-batch gradient "
             f"descent at lr={lr} should end with W within 0.002 of the reference; yours is up to "
             f"{biggest_gap(W, W_ref):.3g} away")
    public._blame(found, helpers, ("forward", "bce_loss", "sgd_step"))
    fail(f"{found}. Every epoch takes one step on the whole X and y that train_manual receives, with this lr.",
         "not_gradient_descent")


# --- the challenge, on data the notebook never uses ------------------------------------------------

_OTHER_SPLITS = (17, 202)


def _other_tumours(num_samples: int, num_features: int, seed: int):
    """Measurements of tumours the notebook never shows: ``num_features`` positive readings in units from
    hundredths to thousands, whose two kinds a hidden direction separates with a margin (an easy problem on
    the right scales: anything that learns from the X and y it receives passes it with room to spare)."""
    gen = torch.Generator().manual_seed(4000 + seed)
    direction = torch.randn(num_features, 1, generator=gen)
    direction /= direction.norm()
    latent = torch.randn(2 * num_samples, num_features, generator=gen)
    score = latent @ direction
    latent = latent[(score.abs() > 0.3).flatten()][:num_samples]
    y = ((latent @ direction) > 0).float()
    units = 10.0 ** (torch.rand(num_features, generator=gen) * 5 - 2)
    offsets = units * (3 + 2 * torch.rand(num_features, generator=gen))
    X = offsets + units * latent
    cut = int(0.8 * num_samples)
    return X[:cut], y[:cut], X[cut:], y[cut:]


def _judge(fit_raw_measurements, helpers: dict, split, where: str, unlike_the_notebook: bool = False) -> None:
    X_train, y_train, X_test, y_test = split
    try:
        predict, calls = public.predictor(fit_raw_measurements, X_train, y_train)
        probs = public.probabilities(predict, X_test)
    except (CheckFailure, NotImplementedError):
        raise
    except Exception as exc:
        if not unlike_the_notebook:
            raise
        fail(f"given {where}, fit_raw_measurements (or its predict) raised "
             f"{getattr(exc, 'learner_type', type(exc).__name__)}: {exc}. It must learn from the X and y it receives "
             "only: no data set loaded, no variable of the notebook read.", "ignores_given_data")
    accuracy = public.accuracy_of(probs, y_test)
    if accuracy >= public.RAW_TARGET:
        return
    found = (f"given {where}, your model classifies {accuracy:.1%} of the held-out ones correctly; the target is "
             f"{public.RAW_TARGET:.0%}")
    public.blame_what_it_used(found, calls, helpers)
    if unlike_the_notebook:
        fail(f"{found}. It must learn everything, the scales included, from the X and y it receives: nothing from a "
             "data set it loads or a variable of the notebook.", "ignores_given_data")
    fail(f"{found}. Learn everything (the scales included) from the training data you are given.", "below_target")


@checks.of("fit_raw_measurements", rule="target")
def reaches_94_percent_on_hidden_splits_in_other_units(fit_raw_measurements, train_manual, init_params, forward,
                                                       bce_loss, sgd_step, seed=0):
    helpers = {"train_manual": train_manual, "init_params": init_params, "forward": forward, "bce_loss": bce_loss,
               "sgd_step": sgd_step}
    gen = torch.Generator().manual_seed(5 + seed)
    units = 10.0 ** torch.randint(-2, 3, (30,), generator=gen).float()
    _judge(fit_raw_measurements, helpers, public.raw_split(_OTHER_SPLITS[0] + seed),
           "80% of the tumours of another split")
    _judge(fit_raw_measurements, helpers, public.raw_split(_OTHER_SPLITS[1] + seed, units),
           "80% of the tumours of another split, with some columns in other units (multiplied by 0.01 to 100)")


@checks.of("fit_raw_measurements", rule="given_data")
def learns_other_tumours_from_the_data_it_receives(fit_raw_measurements, train_manual, init_params, forward, bce_loss,
                                                    sgd_step, seed=0):
    helpers = {"train_manual": train_manual, "init_params": init_params, "forward": forward, "bce_loss": bce_loss,
               "sgd_step": sgd_step}
    for num_features in (12, 30):
        split = _other_tumours(600, num_features, seed + num_features)
        _judge(fit_raw_measurements, helpers, split,
               f"480 tumours of another kind, each with {num_features} measurements", unlike_the_notebook=True)
