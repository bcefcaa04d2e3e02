"""Checks for 05_loss_optim: cross-entropy by hand, a digits classifier, SGD and one training step."""

from __future__ import annotations

import copy

import torch
from torch import nn

from autograder.checks._forbid import cross_entropy_tools, unavailable
from autograder.checks._support import (
    as_float,
    as_mean_loss,
    as_tensor,
    biggest_gap,
    describe,
    expect_parameter_count,
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
def returns_the_loss_of_the_batch_as_a_python_float(training_step, lr=0.1, momentum=0.9, batch_size=64, seed=0):
    X, y = _digits_batch(batch_size, seed)
    model, loss_fn = _step_model(seed), nn.CrossEntropyLoss()
    _, (expected,) = _reference_steps(model, X, y, loss_fn, lr, momentum, 1)
    found = _call_step(training_step, model, loss_fn, _sgd(model, lr, momentum), X, y)
    if abs(found - expected) <= 1e-5 * max(1.0, abs(expected)):
        return
    with torch.no_grad():
        logits = _step_model(seed)(X)
    if abs(found - loss_fn(torch.softmax(logits, dim=1), y).item()) < 1e-5:
        fail("training_step's loss equals CrossEntropyLoss of softmax(logits): a softmax was applied before the "
             "loss, which applies its own. Pass the model's raw logits to loss_fn.", "double_softmax")
    fail(f"training_step returned {number(found)}; the loss of the batch before the step is {number(expected)}. "
         "Return loss.item() of loss_fn(model(X), y).", "wrong_loss")


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


@checks.of("training_step")
def runs_the_model_in_training_mode(training_step, lr=0.1, momentum=0.9, batch_size=64, seed=0):
    X, y = _digits_batch(batch_size, seed)
    model, loss_fn = _step_model(seed), nn.CrossEntropyLoss()
    model.eval()
    _call_step(training_step, model, loss_fn, _sgd(model, lr, momentum), X, y)
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
    reference, (expected,) = _reference_steps(model, X, y, loss_fn, lr, momentum, 1)
    found = _call_step(training_step, model, loss_fn, _sgd(model, lr, momentum), X, y)
    expect(abs(found - expected) <= 1e-5 * max(1.0, abs(expected)) and _same_parameters(model, reference),
           f"with loss_fn = nn.CrossEntropyLoss(label_smoothing=0.3) training_step returned {number(found)}; that "
           f"loss is {number(expected)}. Compute the loss with the loss_fn argument rather than a loss of your own.",
           "loss_fn_ignored")
