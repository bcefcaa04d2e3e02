"""Instructor checks for 05_loss_optim: comparisons with torch.optim.SGD and with a reference run of the
training recipe, edge batches for cross-entropy, the prediction's value, the repair against one optimizer's
run, and the challenge on a split the learner never sees. They run as the judge, outside the learner's
process, and are never shipped to students (see autograder.registry)."""

from __future__ import annotations

import importlib
import math

import torch
import torch.nn.functional as F
from torch import nn

from autograder.checks._support import biggest_gap, is_close, number
from autograder.learner import probe
from autograder.registry import Checks
from autograder.results import expect, fail

checks = Checks("05_loss_optim", instructor=True)
public = importlib.import_module("autograder.checks.05_loss_optim")

# The challenge's hidden run: another split of the digits, another width and other initial weights.
_HIDDEN_SPLIT, _HIDDEN_WIDTH, _HIDDEN_INIT = 2718, 40, 31


def _sgd_run(start, X, y, output, lr, momentum, steps, arriving=None, clear=True):
    """``steps`` full-batch steps of the classic recipe with torch.optim.SGD from the parameters ``start`` (holding
    the gradients ``arriving``): the parameters after them and the loss of each step."""
    params = [p.detach().clone().requires_grad_() for p in start]
    for p, g in zip(params, arriving or []):
        p.grad = g.clone()
    optimizer = torch.optim.SGD(params, lr=lr, momentum=momentum)
    losses = []
    for _ in range(steps):
        if clear:
            optimizer.zero_grad()
        loss = F.cross_entropy(output(params, X), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return [p.detach() for p in params], losses


def _same(a, b, atol=1e-5) -> bool:
    return all(is_close(p, q, atol=atol) for p, q in zip(a, b))


# --- softmax_cross_entropy ---------------------------------------------------------------


@checks.of("softmax_cross_entropy", rule=("equals_ce", "by_hand"))
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
        loss, _ = public._cross_entropy(softmax_cross_entropy, logits, targets)
        public._diagnose_cross_entropy(loss, logits, targets, f"for {what}")


# --- make_optimizer ---------------------------------------------------------------------------


@checks.of("make_optimizer", rule="settings")
def steps_like_SGD_with_the_given_lr_and_momentum(make_optimizer, lr=0.1, momentum=0.0, seed=0):
    for lr_, momentum_ in ((lr, momentum), (0.05, 0.9)):
        model = probe(public._nested_model, seed)
        start = list(probe(public._parameters, model).values())
        optimizer = public._optimizer(make_optimizer, model, lr_, momentum_)
        reference = [p.detach().clone().requires_grad_() for p in start]
        expected = torch.optim.SGD(reference, lr=lr_, momentum=momentum_)
        for step in range(3):
            grads = public._gradients_for([p.shape for p in start], seed + step)
            probe(public._set_grads, model, grads)
            optimizer.step()
            for p, g in zip(reference, grads):
                p.grad = g.clone()
            expected.step()
        found = list(probe(public._parameters, model).values())
        expect(_same(found, reference, atol=1e-6),
               f"with lr={lr_} and momentum={momentum_}, three steps of your optimizer do not move the parameters as "
               "plain torch.optim.SGD does (no weight decay, no Nesterov, no dampening).", "wrong_update")


# --- training_step ---------------------------------------------------------------------------


def _explain_no_update(grads) -> None:
    if all(g is None or bool((g == 0).all()) for g in grads):
        fail("training_step did not change the parameters, and their gradients are empty afterwards: backward was "
             "never called, or the gradients were cleared between backward and step.", "no_update")
    fail("training_step computed gradients but did not change the parameters with the optimizer it was given.",
         "no_update")


@checks.of("training_step", rule="fresh_gradients")
def moves_the_parameters_by_one_optimizer_step(training_step, lr=0.1, momentum=0.9, batch_size=64, seed=0):
    X, y = public._batch(batch_size, seed)
    model, optimizer = probe(public._step_setup, seed, lr, momentum)
    start = list(probe(public._parameters, model).values())
    public._call_step(training_step, model, probe(nn.CrossEntropyLoss), optimizer, X, y)
    found = list(probe(public._parameters, model).values())
    reference, _ = _sgd_run(start, X, y, public._output, lr, momentum, 1)
    if _same(found, reference):
        return
    if _same(found, start, atol=0):
        _explain_no_update(probe(public._grads, model))
    fail(f"after one call the parameters are up to {max(biggest_gap(p, q) for p, q in zip(found, reference)):.3g} "
         "away from one step of the optimizer on this batch's gradient.", "wrong_update")


@checks.of("training_step", rule="fresh_gradients")
def ignores_gradients_the_model_arrives_with(training_step, lr=0.1, momentum=0.9, batch_size=64, seed=0):
    X, y = public._batch(batch_size, seed)
    model, optimizer = probe(public._step_setup, seed, lr, momentum, stale_seed=seed + 100)
    start = list(probe(public._parameters, model).values())
    stale = probe(public._grads, model)
    public._call_step(training_step, model, probe(nn.CrossEntropyLoss), optimizer, X, y)
    found = list(probe(public._parameters, model).values())
    if _same(found, _sgd_run(start, X, y, public._output, lr, momentum, 1)[0]):
        return
    if _same(found, _sgd_run(start, X, y, public._output, lr, momentum, 1, arriving=stale, clear=False)[0]):
        fail("the model arrived with gradients left over from before, and your step added this batch's gradients "
             "to them: backward() accumulates into .grad.", "grads_accumulate")
    fail("with gradients left over on the model, one call of training_step does not move the parameters as one "
         "step with fresh gradients would.", "wrong_update")


@checks.of("training_step", rule="fresh_gradients")
def calls_in_a_row_match_steps_with_fresh_gradients(training_step, lr=0.1, momentum=0.9, batch_size=64, steps=3,
                                                    seed=0):
    X, y = public._batch(batch_size, seed)
    model, optimizer = probe(public._step_setup, seed, lr, momentum)
    start = list(probe(public._parameters, model).values())
    loss_fn = probe(nn.CrossEntropyLoss)
    losses = [public._call_step(training_step, model, loss_fn, optimizer, X, y) for _ in range(steps)]
    found = list(probe(public._parameters, model).values())
    reference, expected_losses = _sgd_run(start, X, y, public._output, lr, momentum, steps)
    if _same(found, reference):
        expect(all(abs(a - b) <= 1e-4 * max(1.0, abs(b)) for a, b in zip(losses, expected_losses)),
               f"the parameters are right, but the losses returned by {steps} calls, {[round(v, 5) for v in losses]}, "
               f"are not those of the batch at each step, {[round(v, 5) for v in expected_losses]}.", "wrong_loss")
        return
    if _same(found, _sgd_run(start, X, y, public._output, lr, momentum, steps, clear=False)[0]):
        fail(f"after {steps} calls in a row the parameters are those of steps whose gradients pile up: each step "
             "followed the sum of all gradients so far.", "grads_accumulate")
    fail(f"{steps} calls in a row do not move the parameters as {steps} optimizer steps on fresh gradients would.",
         "wrong_update")


# --- predicted_start_loss ----------------------------------------------------------------------


@checks.of("predicted_start_loss", rule="right_value")
def is_within_a_tenth(predicted_start_loss):
    value = public._prediction(predicted_start_loss)
    # an untrained classifier spreads its belief evenly over the ten classes: -log(1/10)
    expect(abs(value - math.log(10)) <= 0.1,
           f"you predicted {number(value)}; the untrained classifier starts at about {math.log(10):.2f}. With small "
           "random weights its ten logits are nearly equal, so it gives each class a probability near 1/10, and the "
           "loss is -log of the probability of the right class.", "wrong_prediction")


# --- train_with_momentum ----------------------------------------------------------------------


@checks.of("train_with_momentum", rule="one_optimizer")
def ends_where_one_SGD_ends(train_with_momentum, training_step, make_optimizer, steps=5, lr=0.1, momentum=0.9,
                            num_samples=48, seed=0):
    X, y, start, found, _ = public.run_repair(train_with_momentum, steps, lr, momentum, num_samples, seed)
    reference, _ = _sgd_run(start, X, y, public._repair_output, lr, momentum, steps)
    if _same(found, reference):
        return
    objects = dict(training_step=training_step, make_optimizer=make_optimizer)
    if momentum and _same(found, _sgd_run(start, X, y, public._repair_output, lr, 0.0, steps)[0]):
        public._blame_parts(objects, f"momentum={momentum} trains exactly as momentum=0 does")
        fail(f"{steps} steps with momentum={momentum} end where {steps} steps without momentum end: the velocity "
             "never reaches a second step.", "momentum_lost")
    public._blame_parts(objects, "the parameters end in the wrong place")
    fail(f"after {steps} steps the parameters are up to {max(biggest_gap(p, q) for p, q in zip(found, reference)):.3g} "
         f"away from where {steps} steps of one torch.optim.SGD (lr={lr}, momentum={momentum}) take them.",
         "wrong_update")


@checks.of("train_with_momentum", rule="losses")
def returns_the_losses_of_the_steps_of_one_SGD(train_with_momentum, training_step, make_optimizer, steps=5, lr=0.1,
                                               momentum=0.9, num_samples=48, seed=0):
    X, y, start, _, losses = public.run_repair(train_with_momentum, steps, lr, momentum, num_samples, seed)
    _, expected = _sgd_run(start, X, y, public._repair_output, lr, momentum, steps)
    expect(len(losses) == steps and all(abs(a - b) <= 1e-4 * max(1.0, abs(b)) for a, b in zip(losses, expected)),
           f"train_with_momentum returned the losses {[round(v, 4) for v in losses]}; the steps of one SGD give "
           f"{[round(v, 4) for v in expected]}.", "wrong_loss")


# --- fast_optimizer (challenge) -----------------------------------------------------------------


@checks.of("fast_optimizer", rule="target")
def reaches_the_target_on_a_split_it_never_saw(fast_optimizer, training_step, seed=0):
    loss = public.fast_validation_loss(fast_optimizer, training_step, split_seed=_HIDDEN_SPLIT + seed,
                                       width=_HIDDEN_WIDTH, model_seed=_HIDDEN_INIT + seed)
    public.expect_fast_loss(loss, "on a split the grader drew (another network width and other initial weights)",
                            training_step)
