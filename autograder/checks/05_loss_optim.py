"""Checks for 05_loss_optim: cross-entropy by hand, a digits classifier, SGD and one training step."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from autograder.checks._forbid import cross_entropy_tools, unavailable
from autograder.checks._support import (
    as_float,
    as_mean_loss,
    as_tensor,
    biggest_gap,
    blame,
    describe,
    expect_parameter_count,
    failure_of,
    instantiate,
    is_close,
    is_finite,
    number,
    shape_text,
)
from autograder.data import load_digits
from autograder.registry import Checks
from autograder.results import expect, fail

checks = Checks("05_loss_optim")


# --- softmax_cross_entropy ---------------------------------------------------------------
#
# Clauses -> checks:
#   a 0-dim mean over the samples (not a sum, not one loss per sample), equal to nn.CrossEntropyLoss
#   within 1e-5                -> equals_nn_CrossEntropyLoss_on_ordinary_logits
#   finite and exact for logits of magnitude 1000 (the log-sum-exp trick)
#                              -> stays_finite_and_exact_for_logits_of_magnitude_1000
#   differentiable: the gradient is (softmax - one_hot) / N  -> has_the_gradient_of_cross_entropy
#   written by hand: F.cross_entropy, nn.CrossEntropyLoss and every log-softmax are switched off
#                              -> every check (through _cross_entropy)
#   (hidden) one sample, two classes, one class only, float64 logits
#                              -> instructor: equals_nn_CrossEntropyLoss_on_edge_batches

_BY_HAND = ("this exercise is to write cross-entropy yourself. Compute each row's log-sum-exp (torch.logsumexp, or "
            "subtract the row's max before exp), subtract the logit of the row's target, and average.")


def _logits(num_samples: int, num_classes: int, seed: int, scale: float = 2.0):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(num_samples, num_classes, generator=gen) * scale
    targets = torch.randint(0, num_classes, (num_samples,), generator=gen)
    return logits, targets


def _cross_entropy(softmax_cross_entropy, logits, targets) -> torch.Tensor:
    with unavailable("softmax_cross_entropy", cross_entropy_tools(), why=_BY_HAND, code="used_builtin"):
        loss = softmax_cross_entropy(logits, targets)
    return as_mean_loss(loss, "softmax_cross_entropy(logits, targets)", (logits.shape[0],))


def _diagnose_cross_entropy(loss, logits, targets, what: str) -> None:
    reference = nn.CrossEntropyLoss()
    expected = reference(logits, targets)
    if is_close(loss, expected, atol=1e-5, rtol=1e-5):
        return
    n = logits.shape[0]
    if is_close(loss, expected * n, rtol=1e-4):
        fail(f"{what}: your loss is {number(float(loss))}, {n} times nn.CrossEntropyLoss's "
             f"{number(float(expected))}: it sums over the samples. Take the mean.", "sum_not_mean")
    if is_close(loss, -expected, rtol=1e-4):
        fail(f"{what}: your loss has the wrong sign. Cross-entropy is log-sum-exp minus the target's logit.",
             "wrong_sign")
    if is_close(loss, reference(torch.softmax(logits, dim=1), targets), atol=1e-5, rtol=1e-5):
        fail(f"{what}: your loss equals nn.CrossEntropyLoss of softmax(logits), so the softmax is applied twice. "
             "Cross-entropy takes the raw logits and does the softmax (as log-sum-exp) itself.", "double_softmax")
    lse = torch.logsumexp(logits, dim=1)
    if is_close(loss, lse.mean() - logits[:, targets].mean(), atol=1e-5, rtol=1e-5):
        fail(f"{what}: your loss averages every row's logit for every sample's target: logits[:, targets] is an "
             "(N, N) matrix. Pick each row's own target: logits[torch.arange(N), targets].", "wrong_indexing")
    fail(f"{what}: your loss is {number(float(loss))}; nn.CrossEntropyLoss gives {number(float(expected))}. "
         "Cross-entropy is the mean over samples of log(sum(exp(logits))) minus the target's logit.", "wrong_values")


@checks.of("softmax_cross_entropy")
def equals_nn_CrossEntropyLoss_on_ordinary_logits(softmax_cross_entropy, num_samples=16, num_classes=5, seed=0):
    logits, targets = _logits(num_samples, num_classes, seed)
    loss = _cross_entropy(softmax_cross_entropy, logits, targets)
    _diagnose_cross_entropy(loss, logits, targets, f"for {num_samples} samples of {num_classes} classes")


@checks.of("softmax_cross_entropy")
def stays_finite_and_exact_for_logits_of_magnitude_1000(softmax_cross_entropy, num_samples=16, num_classes=5,
                                                          seed=0):
    logits, targets = _logits(num_samples, num_classes, seed, scale=1000.0)
    logits[0] = 1000.0       # a row of equal, huge logits
    logits[1] = -1000.0      # and one of equal, hugely negative ones
    loss = _cross_entropy(softmax_cross_entropy, logits, targets)
    expect(is_finite(loss),
           f"for logits of magnitude 1000 your loss is {number(float(loss))}: exp(1000) overflows to inf (and "
           "exp(-1000) underflows to 0, whose log is -inf). Subtract each row's max before exp, or use "
           "torch.logsumexp.", "overflow")
    _diagnose_cross_entropy(loss, logits, targets, "for logits of magnitude 1000")


@checks.of("softmax_cross_entropy")
def has_the_gradient_of_cross_entropy(softmax_cross_entropy, num_samples=16, num_classes=5, seed=0):
    logits, targets = _logits(num_samples, num_classes, seed)
    logits.requires_grad_()
    loss = _cross_entropy(softmax_cross_entropy, logits, targets)
    expect(loss.requires_grad, "the loss does not require grad: keep it in the graph (no .item(), no .detach()).",
           "detached")
    loss.backward()
    one_hot = torch.zeros(num_samples, num_classes)
    one_hot[torch.arange(num_samples), targets] = 1.0
    expected = (torch.softmax(logits.detach(), dim=1) - one_hot) / num_samples
    expect(logits.grad is not None and is_close(logits.grad, expected, atol=1e-6),
           "the gradient of your loss with respect to the logits is not softmax(logits) minus the one-hot targets, "
           "divided by N.", "wrong_gradient")


# --- DigitsClassifier -----------------------------------------------------------------------
#
# Clauses -> checks:
#   (N, 64) -> (N, 10)                            -> maps_N_by_64_images_to_N_by_10_logits
#   64h + h + 10h + 10 parameters                  -> counts_64h_plus_h_plus_10h_plus_10_parameters
#   Linear(64, h), ReLU, Linear(h, 10), raw logits: no softmax, log-softmax or sigmoid at the end
#                                                  -> returns_raw_logits_without_softmax_or_sigmoid
#   every parameter on the path to the output      -> gradients_reach_every_parameter


def _digits_batch(num_samples: int, seed: int):
    X, y = load_digits()
    idx = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed))[:num_samples]
    return X[idx], y[idx]


def _classifier(DigitsClassifier, hidden: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return instantiate(DigitsClassifier, hidden=hidden, what="DigitsClassifier")


@checks.of("DigitsClassifier")
def maps_N_by_64_images_to_N_by_10_logits(DigitsClassifier, hidden=32, num_samples=8, seed=0):
    model = _classifier(DigitsClassifier, hidden, seed)
    X, _ = _digits_batch(num_samples, seed)
    out = as_tensor(model(X), "model(X)")
    expect(tuple(out.shape) == (num_samples, 10),
           f"DigitsClassifier maps a batch of shape {shape_text(X.shape)} to {shape_text(out.shape)}; expected "
           f"({num_samples}, 10), one logit per class.", "wrong_shape")


@checks.of("DigitsClassifier")
def counts_64h_plus_h_plus_10h_plus_10_parameters(DigitsClassifier, hidden=32, seed=0):
    model = _classifier(DigitsClassifier, hidden, seed)
    expect_parameter_count(model, 64 * hidden + hidden + 10 * hidden + 10, f"DigitsClassifier(hidden={hidden})",
                           f" = 64·{hidden} + {hidden} (hidden layer) + 10·{hidden} + 10 (output layer)")


@checks.of("DigitsClassifier")
def returns_raw_logits_without_softmax_or_sigmoid(DigitsClassifier, hidden=32, num_samples=8, seed=0):
    model = _classifier(DigitsClassifier, hidden, seed)
    X, _ = _digits_batch(num_samples, seed)
    with torch.no_grad():
        out = as_tensor(model(X), "model(X)").detach()
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        shapes = [(m.in_features, m.out_features) for m in linears]
        if sorted(shapes) == sorted([(64, hidden), (hidden, 10)]) and tuple(out.shape) == (num_samples, 10):
            linears.sort(key=lambda m: m.in_features != 64)  # the hidden layer first, whatever the order of __init__
            hidden_out = linears[0](X)
            logits = linears[1](torch.relu(hidden_out))
            if is_close(out, logits):
                return
            if is_close(out, torch.softmax(logits, dim=1)):
                fail("DigitsClassifier ends with a softmax. nn.CrossEntropyLoss applies its own (log-)softmax to what "
                     "it gets, so the softmax would be applied twice and the loss could never approach zero. Return "
                     "the raw logits of the last Linear layer.", "double_softmax")
            if is_close(out, torch.log_softmax(logits, dim=1)):
                fail("DigitsClassifier ends with a log-softmax (that pairs with nn.NLLLoss). The exercise asks for "
                     "raw logits, for nn.CrossEntropyLoss: drop the log-softmax.", "not_logits")
            if is_close(out, torch.sigmoid(logits)):
                fail("DigitsClassifier ends with a sigmoid. nn.CrossEntropyLoss expects raw logits and applies the "
                     "softmax itself; squashed into (0, 1) first, the scores can no longer separate the classes "
                     "clearly. Return the raw logits of the last Linear layer.", "double_softmax")
            if is_close(out, linears[1](hidden_out)):
                fail("DigitsClassifier has no ReLU between its layers, so the two linear layers collapse into one. "
                     "Apply the ReLU to the hidden layer's output.", "missing_activation")
            fail(f"DigitsClassifier's output differs from linear2(relu(linear1(x))) by up to "
                 f"{biggest_gap(out, logits):.3g}.", "wrong_values")
    if bool(((out >= 0) & (out <= 1)).all()):
        code = "double_softmax"
        if is_close(out.sum(dim=1), torch.ones(out.shape[0]), atol=1e-4):
            fail("every row of DigitsClassifier's output is positive and sums to 1: the model ends with a softmax, "
                 "and nn.CrossEntropyLoss would apply a second one. Return the raw logits.", code)
        fail("every output of DigitsClassifier lies in [0, 1]: the model ends with a sigmoid (or similar). "
             "nn.CrossEntropyLoss expects raw logits. Return the output of the last Linear layer.", code)
    fail(f"DigitsClassifier should be Linear(64, {hidden}), ReLU, Linear({hidden}, 10); its Linear layers are "
         f"{shapes or 'none'}.", "wrong_layers")


@checks.of("DigitsClassifier")
def gradients_reach_every_parameter(DigitsClassifier, hidden=32, num_samples=8, seed=0):
    model = _classifier(DigitsClassifier, hidden, seed)
    X, y = _digits_batch(num_samples, seed)
    out = as_tensor(model(X), "model(X)")
    expect(out.requires_grad, "the output does not require grad: forward must not detach it.", "detached")
    nn.CrossEntropyLoss()(out, y).backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None]
    expect(not missing, f"no gradient reached {', '.join(missing)}: every layer must be on the path to the output.",
           "detached")


# --- make_optimizer ------------------------------------------------------------------------
#
# Clauses -> checks:
#   a torch.optim.SGD                              -> returns_a_torch_optim_SGD
#   over all of the model's parameters (nested modules too), nothing else
#                                                  -> covers_every_parameter_of_the_model
#   with the lr and momentum given, plain otherwise -> passes_lr_and_momentum_on_to_plain_SGD
#   a step is p -= lr * p.grad (momentum 0)         -> one_step_is_p_minus_lr_times_grad
#   (hidden) three steps equal torch.optim.SGD's    -> instructor: steps_like_SGD_with_the_given_lr_and_momentum


def _nested_model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Sequential(nn.Linear(5, 4), nn.Tanh()), nn.Linear(4, 3))


def _optimizer(make_optimizer, model, **kwargs):
    optimizer = make_optimizer(model, **kwargs)
    if not isinstance(optimizer, torch.optim.Optimizer):
        fail(f"make_optimizer should return a torch.optim optimizer; it returned {describe(optimizer)}.",
             "wrong_optimizer")
    if not isinstance(optimizer, torch.optim.SGD):
        fail(f"make_optimizer returned torch.optim.{type(optimizer).__name__}; the exercise asks for torch.optim.SGD.",
             "wrong_optimizer")
    return optimizer


def _fill_grads(model: nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        p.grad = torch.randn(p.shape, generator=gen)


@checks.of("make_optimizer")
def returns_a_torch_optim_SGD(make_optimizer, lr=0.1, momentum=0.0, seed=0):
    _optimizer(make_optimizer, _nested_model(seed), lr=lr, momentum=momentum)


@checks.of("make_optimizer")
def covers_every_parameter_of_the_model(make_optimizer, lr=0.1, momentum=0.0, seed=0):
    model = _nested_model(seed)
    optimizer = _optimizer(make_optimizer, model, lr=lr, momentum=momentum)
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    missing = [name for name, p in model.named_parameters() if id(p) not in held]
    expect(not missing,
           f"the optimizer leaves out {len(missing)} of the model's {len(list(model.parameters()))} parameter tensors "
           f"({', '.join(missing)}), so they would never train. Pass model.parameters(), which walks the whole "
           "module tree.", "missing_parameters")
    foreign = len(held) - len(list(model.parameters()))
    expect(foreign == 0, f"the optimizer holds {foreign} tensors that are not parameters of the model.",
           "wrong_parameters")


@checks.of("make_optimizer")
def passes_lr_and_momentum_on_to_plain_SGD(make_optimizer, lr=0.1, momentum=0.0, seed=0):
    for lr_, momentum_ in ((lr, momentum), (0.05, 0.9)):
        optimizer = _optimizer(make_optimizer, _nested_model(seed), lr=lr_, momentum=momentum_)
        for group in optimizer.param_groups:
            if group.get("lr") != lr_:
                fail(f"make_optimizer(model, lr={lr_}, momentum={momentum_}) built SGD with lr={group.get('lr')}: "
                     "pass the lr argument on (lr=lr).", "lr_ignored")
            if group.get("momentum") != momentum_:
                fail(f"make_optimizer(model, lr={lr_}, momentum={momentum_}) built SGD with "
                     f"momentum={group.get('momentum')}: pass the momentum argument on (momentum=momentum).",
                     "momentum_ignored")
            extras = {key: group.get(key) for key, plain in (("weight_decay", 0), ("dampening", 0),
                                                               ("nesterov", False)) if group.get(key) != plain}
            expect(not extras, f"make_optimizer's SGD sets {extras}: the exercise asks for plain SGD with only lr "
                   "and momentum (no weight decay, no dampening, no Nesterov).", "wrong_update")


@checks.of("make_optimizer")
def one_step_is_p_minus_lr_times_grad(make_optimizer, lr=0.1, seed=0):
    # the update the notebook states: p -= lr * p.grad (with momentum 0)
    model = _nested_model(seed)
    optimizer = _optimizer(make_optimizer, model, lr=lr, momentum=0.0)
    _fill_grads(model, seed)
    expected = [(p - lr * p.grad).detach().clone() for p in model.parameters()]
    optimizer.step()
    expect(all(is_close(p, e, atol=1e-6) for p, e in zip(model.parameters(), expected)),
           f"one step of your optimizer (lr={lr}, momentum 0) does not move every parameter by -lr * grad.",
           "wrong_update")


# --- training_step ---------------------------------------------------------------------------
#
# Clauses -> checks (public checks watch the learner's step through a probe model and a watched
# optimizer; the comparisons with a reference run of the recipe are instructor checks):
#   returns the batch's loss (before the step) as a Python float
#                        -> returns_the_loss_of_the_batch_as_a_python_float
#   exactly one optimizer.step() per call, after backward
#                        -> takes_exactly_one_optimizer_step
#   old gradients never leak: the step follows this batch's gradient alone, also when the model
#   arrives with stale gradients        -> steps_on_the_gradient_of_this_batch_alone
#   calls in a row: every step on fresh gradients, every loss the batch's at that moment
#                        -> calls_in_a_row_step_on_fresh_gradients
#   train mode           -> runs_the_model_in_training_mode
#   the loss_fn argument is used        -> uses_the_loss_function_it_is_given
#   (hidden) parameters after 1 and after several calls equal the recipe's, with momentum, other
#   batches            -> instructor: moves_the_parameters_by_one_optimizer_step,
#                         ignores_gradients_the_model_arrives_with, calls_in_a_row_match_steps_with_fresh_gradients


class _ModeProbe(nn.Module):
    """An identity layer that notes whether the model was in training mode when it ran."""

    def __init__(self):
        super().__init__()
        self.seen: list[bool] = []

    def forward(self, x):
        self.seen.append(self.training)
        return x


def _step_model(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, 16), nn.ReLU(), _ModeProbe(), nn.Linear(16, 10))


class _WatchedSGD(torch.optim.SGD):
    """Plain SGD that notes, at every step(), the gradients it was handed and the gradients that this
    batch's loss has at the parameters of that moment (what a step with fresh gradients would follow)."""

    def __init__(self, model: nn.Module, loss_fn, X, y, lr: float, momentum: float):
        super().__init__(model.parameters(), lr=lr, momentum=momentum)
        self.watched = (model, loss_fn, X, y)
        self.handed: list[list[torch.Tensor | None]] = []
        self.fresh: list[list[torch.Tensor]] = []

    def step(self, closure=None):
        model, loss_fn, X, y = self.watched
        params = list(model.parameters())
        self.handed.append([None if p.grad is None else p.grad.detach().clone() for p in params])
        with torch.enable_grad():
            twin = copy.deepcopy(model)
            loss = loss_fn(twin(X), y)
            self.fresh.append([g.detach() for g in torch.autograd.grad(loss, list(twin.parameters()))])
        return super().step(closure)


def _call_step(training_step, model, loss_fn, optimizer, X, y) -> float:
    return as_float(training_step(model, loss_fn, optimizer, X, y), "training_step's result")


def _loss_now(model: nn.Module, loss_fn, X, y) -> float:
    with torch.no_grad():
        return loss_fn(copy.deepcopy(model)(X), y).item()


def _same_grads(handed, expected) -> bool:
    return all(h is not None and is_close(h, e, atol=1e-6) for h, e in zip(handed, expected))


def _expect_fresh_step(optimizer: _WatchedSGD, index: int, stale, when: str) -> None:
    """The step ``index`` followed this batch's gradient alone; else name what it followed."""
    handed, fresh = optimizer.handed[index], optimizer.fresh[index]
    if _same_grads(handed, fresh):
        return
    if all(h is None or bool((h == 0).all()) for h in handed):
        fail(f"{when}, optimizer.step() found no gradients: they were cleared between loss.backward() and "
             "optimizer.step() (or backward was never called). Clear them first, then forward, loss, backward, "
             "step.", "no_update")
    if stale is not None and _same_grads(handed, [f + s for f, s in zip(fresh, stale)]):
        fail(f"{when}, the step followed this batch's gradient plus gradients left over from before: backward() "
             "adds into .grad. Clear the gradients at the start of every step (optimizer.zero_grad() or "
             "model.zero_grad()), before backward().", "grads_accumulate")
    fail(f"{when}, the gradients handed to optimizer.step() are not those of loss_fn(model(X), y) for this batch.",
         "wrong_update")


@checks.of("training_step")
def returns_the_loss_of_the_batch_as_a_python_float(training_step, lr=0.1, momentum=0.9, batch_size=64, seed=0):
    X, y = _digits_batch(batch_size, seed)
    model, loss_fn = _step_model(seed), nn.CrossEntropyLoss()
    expected = _loss_now(model, loss_fn, X, y)
    found = _call_step(training_step, model, loss_fn, torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum),
                       X, y)
    if abs(found - expected) <= 1e-5 * max(1.0, abs(expected)):
        return
    with torch.no_grad():
        logits = _step_model(seed)(X)
    if abs(found - loss_fn(torch.softmax(logits, dim=1), y).item()) < 1e-5:
        fail("training_step's loss equals CrossEntropyLoss of softmax(logits): a softmax was applied before the "
             "loss, which applies its own. Pass the model's raw logits to loss_fn.", "double_softmax")
    if abs(found - _loss_now(model, loss_fn, X, y)) <= 1e-5 * max(1.0, abs(found)):
        fail(f"training_step returned {number(found)}, the loss after the step; return the loss of the batch that "
             f"the step was computed from, {number(expected)} (loss.item() of the loss you called backward on).",
             "wrong_loss")
    fail(f"training_step returned {number(found)}; the loss of the batch before the step is {number(expected)}. "
         "Return loss.item() of loss_fn(model(X), y).", "wrong_loss")


@checks.of("training_step")
def takes_exactly_one_optimizer_step(training_step, lr=0.1, momentum=0.9, batch_size=64, seed=0):
    X, y = _digits_batch(batch_size, seed)
    model, loss_fn = _step_model(seed), nn.CrossEntropyLoss()
    optimizer = _WatchedSGD(model, loss_fn, X, y, lr, momentum)
    _call_step(training_step, model, loss_fn, optimizer, X, y)
    steps = len(optimizer.handed)
    if steps == 0:
        if all(p.grad is None or bool((p.grad == 0).all()) for p in model.parameters()):
            fail("training_step never called optimizer.step(), and the gradients are empty afterwards: call "
                 "loss.backward() and then optimizer.step().", "no_update")
        fail("training_step computed gradients but never called optimizer.step(): the optimizer you are given "
             "holds the update rule (learning rate, momentum), so let it make the step.", "no_update")
    expect(steps == 1, f"one call of training_step called optimizer.step() {steps} times; one batch makes one step.",
           "extra_steps")


@checks.of("training_step")
def steps_on_the_gradient_of_this_batch_alone(training_step, lr=0.1, momentum=0.9, batch_size=64, seed=0):
    X, y = _digits_batch(batch_size, seed)
    model, loss_fn = _step_model(seed), nn.CrossEntropyLoss()
    _fill_grads(model, seed + 100)  # stale gradients, as a gradient check or an earlier step would leave them
    stale = [p.grad.clone() for p in model.parameters()]
    optimizer = _WatchedSGD(model, loss_fn, X, y, lr, momentum)
    _call_step(training_step, model, loss_fn, optimizer, X, y)
    expect(len(optimizer.handed) >= 1, "training_step never called optimizer.step().", "no_update")
    _expect_fresh_step(optimizer, 0, stale, "with gradients left on the model before the call")


@checks.of("training_step")
def calls_in_a_row_step_on_fresh_gradients(training_step, lr=0.1, momentum=0.9, batch_size=64, steps=3, seed=0):
    X, y = _digits_batch(batch_size, seed)
    model, loss_fn = _step_model(seed), nn.CrossEntropyLoss()
    optimizer = _WatchedSGD(model, loss_fn, X, y, lr, momentum)
    for call in range(steps):
        expected = _loss_now(model, loss_fn, X, y)
        found = _call_step(training_step, model, loss_fn, optimizer, X, y)
        expect(len(optimizer.handed) == call + 1,
               f"call {call + 1} of training_step made {len(optimizer.handed) - call} optimizer steps; expected one.",
               "no_update" if len(optimizer.handed) == call else "extra_steps")
        previous = None
        if call:
            # what piled-up gradients would hold: this batch's plus everything handed to the last step
            previous = [h if h is not None else torch.zeros_like(f)
                        for h, f in zip(optimizer.handed[call - 1], optimizer.fresh[call])]
        _expect_fresh_step(optimizer, call, previous, f"at call {call + 1} of {steps} in a row")
        expect(abs(found - expected) <= 1e-4 * max(1.0, abs(expected)),
               f"call {call + 1} in a row returned {number(found)}; the batch's loss at that moment was "
               f"{number(expected)}.", "wrong_loss")


@checks.of("training_step")
def runs_the_model_in_training_mode(training_step, lr=0.1, momentum=0.9, batch_size=64, seed=0):
    X, y = _digits_batch(batch_size, seed)
    model, loss_fn = _step_model(seed), nn.CrossEntropyLoss()
    model.eval()
    _call_step(training_step, model, loss_fn, torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum), X, y)
    probe = model[2]
    expect(bool(probe.seen) and probe.seen[-1] is True,
           "the model arrived in evaluation mode and ran its forward pass still in it. Call model.train() at the "
           "start of the step: dropout and batch norm behave differently in the two modes.", "not_train_mode")
    expect(model.training and all(m.training for m in model.modules()),
           "after training_step the model is not in training mode: call model.train() (with the parentheses) "
           "before the forward pass.", "not_train_mode")


@checks.of("training_step")
def uses_the_loss_function_it_is_given(training_step, lr=0.1, momentum=0.9, batch_size=64, seed=0):
    X, y = _digits_batch(batch_size, seed)
    model = _step_model(seed)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.3)
    expected = _loss_now(model, loss_fn, X, y)
    optimizer = _WatchedSGD(model, loss_fn, X, y, lr, momentum)
    found = _call_step(training_step, model, loss_fn, optimizer, X, y)
    expect(abs(found - expected) <= 1e-5 * max(1.0, abs(expected)) and len(optimizer.handed) == 1
           and _same_grads(optimizer.handed[0], optimizer.fresh[0]),
           f"with loss_fn = nn.CrossEntropyLoss(label_smoothing=0.3) training_step returned {number(found)}; that "
           f"loss is {number(expected)}. Compute the loss with the loss_fn argument rather than a loss of your own.",
           "loss_fn_ignored")


# --- fast_optimizer (challenge) ----------------------------------------------------------------
#
# Graded by outcome: the learner chooses the optimizer and its settings; the check trains a digits
# network with the learner's own training_step for a fixed budget of full-batch steps and measures the
# validation loss.
# Clauses -> checks:
#   returns a torch.optim optimizer over every parameter of the model it is given
#                        -> returns_an_optimizer_over_every_parameter
#   after FAST_STEPS calls of training_step on the training split, validation loss <= FAST_TARGET
#                        -> reaches_the_target_within_the_step_budget (the notebook's split),
#                           instructor: reaches_the_target_on_a_split_it_never_saw (hidden split, width, init)
#   (relies on training_step: a broken training_step is named as the cause)

FAST_STEPS = 30
FAST_TARGET = 0.25


def _challenge_model(width: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    # tanh, not the ReLU of DigitsClassifier: the optimizer must suit a network it was not tuned on
    return nn.Sequential(nn.Linear(64, width), nn.Tanh(), nn.Linear(width, 10))


def _fast(fast_optimizer, model: nn.Module):
    optimizer = fast_optimizer(model)
    if not isinstance(optimizer, torch.optim.Optimizer):
        fail(f"fast_optimizer should return a torch.optim optimizer; it returned {describe(optimizer)}.",
             "wrong_optimizer")
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    missing = [name for name, p in model.named_parameters() if id(p) not in held]
    expect(not missing, f"fast_optimizer's optimizer leaves out {', '.join(missing)}: those would never train. "
           "Give it model.parameters().", "missing_parameters")
    return optimizer


def fast_validation_loss(fast_optimizer, training_step, split_seed: int, width: int, model_seed: int) -> float:
    """Train a digits network for FAST_STEPS full-batch calls of the learner's training_step with the
    learner's optimizer; its validation loss."""
    X, y = load_digits()
    order = torch.randperm(len(X), generator=torch.Generator().manual_seed(split_seed))
    train_idx, val_idx = order[:1437], order[1437:]
    model = _challenge_model(width, model_seed)
    optimizer = _fast(fast_optimizer, model)
    loss_fn = nn.CrossEntropyLoss()
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(FAST_STEPS):
            training_step(model, loss_fn, optimizer, X[train_idx], y[train_idx])
        model.eval()
        with torch.no_grad():
            loss = loss_fn(model(X[val_idx]), y[val_idx]).item()
    finally:
        torch.set_num_threads(before)
    return loss


def expect_fast_loss(loss: float, where: str, training_step) -> None:
    if loss <= FAST_TARGET:
        return
    broken = failure_of("training_step", training_step=training_step)
    if broken is not None:
        blame("fast_optimizer", f"after {FAST_STEPS} steps the validation loss is {number(loss)}, above the target "
              f"{FAST_TARGET}, but that may not be your optimizer's fault: the steps are made", "training_step", broken)
    why = " (it is not even a number: the steps diverged; a smaller learning rate)" if math.isnan(loss) else ""
    fail(f"after {FAST_STEPS} full-batch steps with your optimizer, the validation loss {where} is {number(loss)}"
         f"{why}; the target is at most {FAST_TARGET}. Plain SGD with lr=0.1 is still above 2 after that many steps: "
         "larger steps, momentum, or an optimizer that adapts its step size get there sooner.", "below_target")


@checks.of("fast_optimizer")
def returns_an_optimizer_over_every_parameter(fast_optimizer, seed=0):
    _fast(fast_optimizer, _challenge_model(32, seed))


@checks.of("fast_optimizer")
def reaches_the_target_within_the_step_budget(fast_optimizer, training_step, seed=0):
    # the notebook's split: randperm seeded 0, the first 1437 samples for training
    loss = fast_validation_loss(fast_optimizer, training_step, split_seed=seed, width=32, model_seed=seed)
    expect_fast_loss(loss, "on the notebook's validation split", training_step)
