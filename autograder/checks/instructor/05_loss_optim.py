"""Instructor checks for 05_loss_optim: comparisons with torch.optim.SGD and with a reference run of
the training recipe, edge batches for cross-entropy, and the challenge on a split the learner never
sees. Never shipped to students (see autograder.registry)."""

from __future__ import annotations

import copy
import importlib

import torch
from torch import nn

from autograder.checks._support import as_float, biggest_gap, is_close, number
from autograder.registry import Checks
from autograder.results import expect, fail

checks = Checks("05_loss_optim", instructor=True)
public = importlib.import_module("autograder.checks.05_loss_optim")
_nested_model, _optimizer, _fill_grads = public._nested_model, public._optimizer, public._fill_grads
_digits_batch, _step_model = public._digits_batch, public._step_model

# The challenge's hidden run: another split of the digits, another width and other initial weights.
_HIDDEN_SPLIT, _HIDDEN_WIDTH, _HIDDEN_INIT = 2718, 40, 31


# --- softmax_cross_entropy ---------------------------------------------------------------


@checks.of("softmax_cross_entropy")
def equals_nn_CrossEntropyLoss_on_edge_batches(softmax_cross_entropy, seed=0):
    """One sample; two classes; every target the same class; float64 logits."""
    gen = torch.Generator().manual_seed(seed + 11)
    cases = [
        ("a single sample", torch.randn(1, 7, generator=gen), torch.tensor([3])),
        ("two classes", torch.randn(9, 2, generator=gen), torch.randint(0, 2, (9,), generator=gen)),
        ("every target class 0", torch.randn(6, 4, generator=gen), torch.zeros(6, dtype=torch.long)),
        ("float64 logits", torch.randn(5, 3, generator=gen, dtype=torch.float64), torch.tensor([0, 2, 1, 1, 0])),
    ]
    for what, logits, targets in cases:
        loss = public._cross_entropy(softmax_cross_entropy, logits, targets)
        public._diagnose_cross_entropy(loss, logits, targets, f"for {what}")


# --- make_optimizer ---------------------------------------------------------------------------


@checks.of("make_optimizer")
def steps_like_SGD_with_the_given_lr_and_momentum(make_optimizer, lr=0.1, momentum=0.0, seed=0):
    for lr_, momentum_ in ((lr, momentum), (0.05, 0.9)):
        model = _nested_model(seed)
        reference = copy.deepcopy(model)
        optimizer = _optimizer(make_optimizer, model, lr=lr_, momentum=momentum_)
        expected = torch.optim.SGD(reference.parameters(), lr=lr_, momentum=momentum_)
        for step in range(3):
            _fill_grads(model, seed + step)
            _fill_grads(reference, seed + step)
            optimizer.step()
            expected.step()
        if all(is_close(p, q, atol=1e-6) for p, q in zip(model.parameters(), reference.parameters())):
            continue
        group = optimizer.param_groups[0]
        if group.get("lr") != lr_:
            fail(f"make_optimizer(model, lr={lr_}, momentum={momentum_}) built SGD with lr={group.get('lr')}: pass "
                 "the lr argument on (lr=lr).", "lr_ignored")
        if group.get("momentum") != momentum_:
            fail(f"make_optimizer(model, lr={lr_}, momentum={momentum_}) built SGD with "
                 f"momentum={group.get('momentum')}: pass the momentum argument on (momentum=momentum).",
                 "momentum_ignored")
        fail(f"with lr={lr_} and momentum={momentum_}, three steps of your optimizer do not move the parameters as "
             "plain torch.optim.SGD does (no weight decay, no Nesterov, no dampening).", "wrong_update")


# --- training_step ---------------------------------------------------------------------------


def _sgd(model, lr, momentum):
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)


def _reference_steps(model, X, y, loss_fn, lr, momentum, steps, clear=True):
    """Steps of the classic recipe on a copy of ``model`` (whose gradients come along, unless cleared)."""
    copy_ = copy.deepcopy(model)
    for p, original in zip(copy_.parameters(), model.parameters()):  # deepcopy leaves .grad behind
        p.grad = None if original.grad is None else original.grad.clone()
    optimizer = _sgd(copy_, lr, momentum)
    losses = []
    for _ in range(steps):
        copy_.train()
        if clear:
            optimizer.zero_grad()
        loss = loss_fn(copy_(X), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return copy_, losses


def _same_parameters(a: nn.Module, b: nn.Module) -> bool:
    return all(is_close(p, q, atol=1e-5) for p, q in zip(a.parameters(), b.parameters()))


def _call_step(training_step, model, loss_fn, optimizer, X, y) -> float:
    return as_float(training_step(model, loss_fn, optimizer, X, y), "training_step's result")


def _explain_no_update(model: nn.Module) -> None:
    grads = [p.grad for p in model.parameters()]
    if all(g is None or bool((g == 0).all()) for g in grads):
        fail("training_step did not change the parameters, and their gradients are empty afterwards: either "
             "loss.backward() was never called, or the gradients were cleared between backward() and step(). Clear "
             "them first, then forward, loss, backward, step.", "no_update")
    fail("training_step computed gradients but did not change the parameters: call optimizer.step() after "
         "loss.backward().", "no_update")


@checks.of("training_step")
def moves_the_parameters_by_one_optimizer_step(training_step, lr=0.1, momentum=0.9, batch_size=64, seed=0):
    X, y = _digits_batch(batch_size, seed)
    model, loss_fn = _step_model(seed), nn.CrossEntropyLoss()
    reference, _ = _reference_steps(model, X, y, loss_fn, lr, momentum, 1)
    before = copy.deepcopy(model)
    _call_step(training_step, model, loss_fn, _sgd(model, lr, momentum), X, y)
    if _same_parameters(model, reference):
        return
    if _same_parameters(model, before):
        _explain_no_update(model)
    fail(f"after one call the parameters are up to {max(biggest_gap(p, q) for p, q in zip(model.parameters(), reference.parameters())):.3g} "
         "away from one step of the recipe (zero_grad, forward, loss, backward, step).", "wrong_update")


@checks.of("training_step")
def ignores_gradients_the_model_arrives_with(training_step, lr=0.1, momentum=0.9, batch_size=64, seed=0):
    X, y = _digits_batch(batch_size, seed)
    model, loss_fn = _step_model(seed), nn.CrossEntropyLoss()
    _fill_grads(model, seed + 100)  # stale gradients, as a gradient check or an earlier step would leave them
    reference, _ = _reference_steps(model, X, y, loss_fn, lr, momentum, 1)
    leaked, _ = _reference_steps(model, X, y, loss_fn, lr, momentum, 1, clear=False)
    _call_step(training_step, model, loss_fn, _sgd(model, lr, momentum), X, y)
    if _same_parameters(model, reference):
        return
    if _same_parameters(model, leaked):
        fail("the model arrived with gradients left over from before, and your step added the new gradients to "
             "them: backward() accumulates into .grad. Clear the gradients at the start of every step "
             "(optimizer.zero_grad() or model.zero_grad()), before backward().", "grads_accumulate")
    fail("with gradients left over on the model, one call of training_step does not move the parameters as one "
         "step with fresh gradients would.", "wrong_update")


@checks.of("training_step")
def calls_in_a_row_match_steps_with_fresh_gradients(training_step, lr=0.1, momentum=0.9, batch_size=64, steps=3,
                                                    seed=0):
    X, y = _digits_batch(batch_size, seed)
    model, loss_fn = _step_model(seed), nn.CrossEntropyLoss()
    reference, expected_losses = _reference_steps(model, X, y, loss_fn, lr, momentum, steps)
    leaked, _ = _reference_steps(model, X, y, loss_fn, lr, momentum, steps, clear=False)
    optimizer = _sgd(model, lr, momentum)
    losses = [_call_step(training_step, model, loss_fn, optimizer, X, y) for _ in range(steps)]
    if _same_parameters(model, reference):
        expect(all(abs(a - b) <= 1e-4 * max(1.0, abs(b)) for a, b in zip(losses, expected_losses)),
               f"the parameters are right, but the losses returned by {steps} calls, "
               f"{[round(v, 5) for v in losses]}, are not those of the batch at each step, "
               f"{[round(v, 5) for v in expected_losses]}.", "wrong_loss")
        return
    if _same_parameters(model, leaked):
        fail(f"after {steps} calls in a row the parameters are those of steps whose gradients pile up: each step "
             "followed the sum of all gradients so far. Clear the gradients at the start of every step.",
             "grads_accumulate")
    fail(f"{steps} calls in a row do not move the parameters as {steps} steps of the recipe would.", "wrong_update")




# --- fast_optimizer (challenge) -----------------------------------------------------------------


@checks.of("fast_optimizer")
def reaches_the_target_on_a_split_it_never_saw(fast_optimizer, training_step, seed=0):
    loss = public.fast_validation_loss(fast_optimizer, training_step, split_seed=_HIDDEN_SPLIT + seed,
                                       width=_HIDDEN_WIDTH, model_seed=_HIDDEN_INIT + seed)
    public.expect_fast_loss(loss, "on a split the grader drew (another network width and other initial weights)",
                            training_step)
