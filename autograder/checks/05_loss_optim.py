"""Checks for 05_loss_optim: cross-entropy by hand, a digits classifier, SGD, one training step, a prediction,
a repair and the challenge.

The checks run as the judge (:mod:`autograder.learner`): the learner's functions and classes arrive as
references, tensors come back by value, and what must run next to the learner's code (building a model
there, noting an optimizer's steps, switching the built-in losses off) is a probe, a function below marked
as one, that reports what it saw and never says what it should have seen. Every expected value is
computed here, in the check, from the inputs the check chose.
"""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F
from torch import nn

from autograder.checks._forbid import call_without, cross_entropy_tools
from autograder.checks._probes import StepRecorder, backward_through
from autograder.checks._support import what_it_is as _what
from autograder.checks._support import (
    as_float,
    as_mean_loss,
    as_tensor,
    biggest_gap,
    blame,
    failure_of,
    is_close,
    is_finite,
    number,
    shape_text,
)
from autograder.data import load_digits
from autograder.learner import is_class, is_instance, is_remote, is_subclass, probe, type_name
from autograder.registry import Checks
from autograder.results import expect, fail

checks = Checks("05_loss_optim")




# --- probes: they run where the learner's code runs, and report ------------------------------------


def _seed(seed: int) -> None:
    """A probe: seed the learner's global random stream (the session puts it back after the check). Not
    torch.manual_seed itself: once torch._dynamo is loaded it wraps that function, which then has no name that
    the learner's process can import."""
    torch.manual_seed(seed)


def _parameters(model) -> dict:
    """A probe: the model's parameters by name, as they are now (with their gradients)."""
    return dict(model.named_parameters())


def _grads(model) -> list:
    """A probe: the gradient each parameter holds now (None where it holds none)."""
    return [p.grad for p in model.parameters()]


def _set_grads(model, grads) -> None:
    """A probe: give the model's parameters these gradients, as a backward pass would have left them."""
    for p, g in zip(model.parameters(), grads):
        p.grad = g.clone()


def _anatomy(model) -> dict:
    """A probe: what a module is made of: its parameters' names and shapes, its Linear layers (name, in, out,
    bias or not) and the attributes that hold layers in a plain Python list, tuple or dict."""
    linears = [[name, m.in_features, m.out_features, m.bias is not None]
               for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    hidden_away = []
    for name, value in vars(model).items():
        if isinstance(value, (list, tuple)) and any(isinstance(v, nn.Module) for v in value):
            hidden_away.append([name, type(value).__name__])
        elif type(value) is dict and not name.startswith("_") and any(isinstance(v, nn.Module) for v in value.values()):
            hidden_away.append([name, "dict"])
    return {"parameters": [[name, list(p.shape)] for name, p in model.named_parameters()], "linears": linears,
            "hidden_away": hidden_away}


def _unreached(model, X) -> dict:
    """A probe: run the model on X and backward from the sum of its output; whether the output required grad,
    and the names of the parameters no gradient reached."""
    out = model(X)
    if not (isinstance(out, torch.Tensor) and out.requires_grad):
        return {"requires_grad": False, "missing": []}
    with torch.enable_grad():
        out.sum().backward()
    return {"requires_grad": True, "missing": [name for name, p in model.named_parameters() if p.grad is None]}


# --- softmax_cross_entropy ---------------------------------------------------------------
#
# Rules of its text -> checks:
#   equals_ce       a 0-dim mean over the samples equal to nn.CrossEntropyLoss  -> equals_nn_CrossEntropyLoss_on_ordinary_logits
#                   (hidden: one sample, two classes, one class only, float64)  -> instructor: ..._on_edge_batches
#   stable          finite and exact for logits of magnitude 1000               -> stays_finite_and_exact_for_logits_of_magnitude_1000
#   differentiable  its gradient is (softmax - one_hot) / N                      -> has_the_gradient_of_cross_entropy
#   by_hand         F.cross_entropy, nn.CrossEntropyLoss and every log-softmax switched off while it runs
#                                                                               -> every check (through _cross_entropy)

_BY_HAND = "this exercise is to write cross-entropy yourself, from each row's log-sum-exp and the logit of its target."


def _logits(num_samples: int, num_classes: int, seed: int, scale: float = 2.0):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(num_samples, num_classes, generator=gen) * scale
    targets = torch.randint(0, num_classes, (num_samples,), generator=gen)
    return logits, targets


def _cross_entropy(softmax_cross_entropy, logits, targets):
    """The learner's loss, computed where their code runs, with the built-in cross-entropy switched off; and the
    gradient that reached the logits (None when none did)."""
    loss, (grad,) = probe(call_without, cross_entropy_tools, "softmax_cross_entropy", _BY_HAND, "used_builtin",
                          backward_through, softmax_cross_entropy, (logits, targets), (0,))
    return as_mean_loss(loss, "softmax_cross_entropy(logits, targets)", (logits.shape[0],)), grad


def _diagnose_cross_entropy(loss, logits, targets, what: str) -> None:
    loss = loss.detach()
    reference = nn.CrossEntropyLoss()
    expected = reference(logits, targets)
    if is_close(loss, expected, atol=1e-5, rtol=1e-5):
        return
    n = logits.shape[0]
    if is_close(loss, expected * n, rtol=1e-4):
        fail(f"{what}: your loss is {number(float(loss))}, {n} times nn.CrossEntropyLoss's {number(float(expected))}: "
             "it adds the samples' losses up instead of averaging them.", "sum_not_mean", fix="end with .mean()")
    if is_close(loss, -expected, rtol=1e-4):
        fail(f"{what}: your loss is {number(float(loss))}, nn.CrossEntropyLoss's value with the wrong sign. "
             "Cross-entropy is log-sum-exp minus the target's logit.", "wrong_sign")
    if is_close(loss, reference(torch.softmax(logits, dim=1), targets), atol=1e-5, rtol=1e-5):
        fail(f"{what}: your loss equals nn.CrossEntropyLoss of softmax(logits): the softmax is applied twice. "
             "Cross-entropy takes the raw logits and does the softmax (as log-sum-exp) itself.", "double_softmax")
    lse = torch.logsumexp(logits, dim=1)
    if is_close(loss, lse.mean() - logits[:, targets].mean(), atol=1e-5, rtol=1e-5):
        fail(f"{what}: your loss averages every row's logit for every sample's target, as `logits[:, targets]` "
             "(an (N, N) matrix) does, instead of each row's own target.", "wrong_indexing",
             fix="logits[torch.arange(N), targets] picks one entry per row")
    fail(f"{what}: your loss is {number(float(loss))}; nn.CrossEntropyLoss gives {number(float(expected))}. "
         "Cross-entropy is the mean over samples of log(sum(exp(logits))) minus the target's logit.", "wrong_values")


@checks.of("softmax_cross_entropy", rule=("equals_ce", "by_hand"))
def equals_nn_CrossEntropyLoss_on_ordinary_logits(softmax_cross_entropy, num_samples=16, num_classes=5, seed=0):
    logits, targets = _logits(num_samples, num_classes, seed)
    loss, _ = _cross_entropy(softmax_cross_entropy, logits, targets)
    _diagnose_cross_entropy(loss, logits, targets, f"for {num_samples} samples of {num_classes} classes")


@checks.of("softmax_cross_entropy", rule=("stable", "by_hand"))
def stays_finite_and_exact_for_logits_of_magnitude_1000(softmax_cross_entropy, num_samples=16, num_classes=5,
                                                          seed=0):
    logits, targets = _logits(num_samples, num_classes, seed, scale=1000.0)
    logits[0] = 1000.0       # a row of equal, huge logits
    logits[1] = -1000.0      # and one of equal, hugely negative ones
    loss, _ = _cross_entropy(softmax_cross_entropy, logits, targets)
    expect(is_finite(loss),
           f"for logits of magnitude 1000 your loss is {number(float(loss.detach()))}: exp(1000) overflows to inf (and "
           "exp(-1000) underflows to 0, whose log is -inf).", "overflow",
           fix="subtract each row's max before exp, or use torch.logsumexp")
    _diagnose_cross_entropy(loss, logits, targets, "for logits of magnitude 1000")


@checks.of("softmax_cross_entropy", rule=("differentiable", "by_hand"))
def has_the_gradient_of_cross_entropy(softmax_cross_entropy, num_samples=16, num_classes=5, seed=0):
    logits, targets = _logits(num_samples, num_classes, seed)
    loss, grad = _cross_entropy(softmax_cross_entropy, logits, targets)
    expect(loss.requires_grad, "the loss does not require grad: it left the graph (a .item(), a .detach() or a "
           "new tensor built from numbers), so no gradient can flow back to the logits.", "detached")
    one_hot = torch.zeros(num_samples, num_classes)
    one_hot[torch.arange(num_samples), targets] = 1.0
    expected = (torch.softmax(logits, dim=1) - one_hot) / num_samples
    expect(grad is not None and is_close(grad, expected, atol=1e-6),
           "the gradient of your loss with respect to the logits is not softmax(logits) minus the one-hot targets, "
           "divided by N.", "wrong_gradient")


# --- DigitsClassifier -----------------------------------------------------------------------
#
# Rules of its text -> checks:
#   logits_shape  (N, 64) -> (N, 10)                              -> maps_N_by_64_images_to_N_by_10_logits
#   hidden_layer  one hidden layer of `hidden` units with a ReLU: 64h + h + 10h + 10 parameters, all on the path
#                 -> counts_64h_plus_h_plus_10h_plus_10_parameters, returns_raw_logits_of_relu_between_two_layers,
#                    gradients_reach_every_parameter
#   raw_logits    no softmax, log-softmax or sigmoid at the end   -> returns_raw_logits_of_relu_between_two_layers


def _images(num_samples: int, seed: int) -> torch.Tensor:
    """Pixel-like inputs in [0, 1] (not the notebook's digits: the model is judged on any images)."""
    return torch.rand(num_samples, 64, generator=torch.Generator().manual_seed(seed + 31))


def _classifier(DigitsClassifier, hidden: int, seed: int):
    """The learner's classifier, built where their code runs; the mistakes that stop it from building, named."""
    if not is_class(DigitsClassifier):
        fail(f"`DigitsClassifier` should be a class (an nn.Module subclass), but it is {_what(DigitsClassifier)}.",
             "not_a_class")
    if not is_subclass(DigitsClassifier, nn.Module):
        fail("`DigitsClassifier` is a class, but not an nn.Module: it cannot hold layers that train.", "not_a_module",
             fix="class DigitsClassifier(nn.Module):")
    probe(_seed, seed)
    try:
        return DigitsClassifier(hidden=hidden)
    except AttributeError as exc:
        if "before Module.__init__() call" in str(exc):
            fail("`DigitsClassifier.__init__` assigns a layer before nn.Module has set up its registries.",
                 "missing_super_init", fix="make super().__init__() the first line of __init__")
        raise


def _count_hint(anatomy: dict, expected: int, found: int) -> tuple[str, str]:
    """A likely cause and a diagnosis code for a parameter count that is not the expected one."""
    if anatomy["hidden_away"] and found < expected:
        name, kind = anatomy["hidden_away"][0]
        return (f" The layers in `self.{name}` sit in a plain Python {kind}, where nn.Module never registers "
                "them: parameters() does not see them, and no optimizer would train them.", "layers_in_plain_list")
    no_bias = [out for _, _, out, bias in anatomy["linears"] if not bias]
    if no_bias and found == expected - sum(no_bias):
        return " A Linear layer has no bias (`bias=False`?): a bias adds one parameter per output.", "missing_bias"
    if found == 0:
        return " Nothing is registered as a layer of the model.", "not_registered"
    return "", "wrong_parameter_count"


@checks.of("DigitsClassifier", rule="logits_shape")
def maps_N_by_64_images_to_N_by_10_logits(DigitsClassifier, hidden=32, num_samples=8, seed=0):
    model = _classifier(DigitsClassifier, hidden, seed)
    X = _images(num_samples, seed)
    out = as_tensor(model(X), "model(X)")
    expect(tuple(out.shape) == (num_samples, 10),
           f"DigitsClassifier maps a batch of shape {shape_text(X.shape)} to {shape_text(out.shape)}; expected "
           f"({num_samples}, 10), one logit per class.", "wrong_shape")


@checks.of("DigitsClassifier", rule="hidden_layer")
def counts_64h_plus_h_plus_10h_plus_10_parameters(DigitsClassifier, hidden=32, seed=0):
    model = _classifier(DigitsClassifier, hidden, seed)
    anatomy = probe(_anatomy, model)
    found = sum(math.prod(shape) for _, shape in anatomy["parameters"])
    expected = 64 * hidden + hidden + 10 * hidden + 10
    hint, code = _count_hint(anatomy, expected, found)
    expect(found == expected, f"DigitsClassifier(hidden={hidden}) has {found} parameters; expected {expected} = "
           f"64·{hidden} + {hidden} (hidden layer) + 10·{hidden} + 10 (output layer).{hint}", code)


@checks.of("DigitsClassifier", rule=("raw_logits", "hidden_layer"))
def returns_raw_logits_of_relu_between_two_layers(DigitsClassifier, hidden=32, num_samples=8, seed=0):
    model = _classifier(DigitsClassifier, hidden, seed)
    X = _images(num_samples, seed)
    out = as_tensor(model(X), "model(X)").detach()
    anatomy = probe(_anatomy, model)
    linears = anatomy["linears"]
    shapes = sorted((n_in, n_out) for _, n_in, n_out, _ in linears)
    if shapes == sorted([(64, hidden), (hidden, 10)]) and tuple(out.shape) == (num_samples, 10):
        params = probe(_parameters, model)
        first, last = sorted(linears, key=lambda layer: layer[1] != 64)  # the hidden layer first, whatever the order

        def layer(spec, x):
            name, *_ = spec
            prefix = f"{name}." if name else ""
            return F.linear(x, params[prefix + "weight"], params.get(prefix + "bias"))

        hidden_out = layer(first, X)
        logits = layer(last, torch.relu(hidden_out))
        if is_close(out, logits):
            return
        if is_close(out, torch.softmax(logits, dim=1)):
            fail("DigitsClassifier ends with a softmax, and nn.CrossEntropyLoss applies its own (log-)softmax to "
                 "what it gets: the softmax would be applied twice, and the loss could never approach zero.",
                 "double_softmax", fix="return the output of the last Linear layer")
        if is_close(out, torch.log_softmax(logits, dim=1)):
            fail("DigitsClassifier ends with a log-softmax, which pairs with nn.NLLLoss; nn.CrossEntropyLoss "
                 "expects the raw logits.", "not_logits", fix="drop the log-softmax")
        if is_close(out, torch.sigmoid(logits)):
            fail("DigitsClassifier ends with a sigmoid. nn.CrossEntropyLoss expects raw logits and applies the "
                 "softmax itself; squashed into (0, 1) first, the scores can no longer separate the classes.",
                 "double_softmax", fix="return the output of the last Linear layer")
        if is_close(out, layer(last, hidden_out)):
            fail("DigitsClassifier has no ReLU between its layers, so its two linear layers collapse into one "
                 "linear map.", "missing_activation", fix="apply the ReLU to the hidden layer's output")
        fail(f"DigitsClassifier's output differs from linear2(relu(linear1(x))) by up to "
             f"{biggest_gap(out, logits):.3g}.", "wrong_values")
    if bool(((out >= 0) & (out <= 1)).all()):
        if is_close(out.sum(dim=1), torch.ones(out.shape[0]), atol=1e-4):
            fail("every row of DigitsClassifier's output is positive and sums to 1: the model ends with a softmax, "
                 "and nn.CrossEntropyLoss would apply a second one.", "double_softmax")
        fail("every output of DigitsClassifier lies in [0, 1]: the model ends with a sigmoid (or similar), but "
             "nn.CrossEntropyLoss expects raw logits.", "double_softmax")
    found = [(n_in, n_out) for _, n_in, n_out, _ in linears]
    fail(f"DigitsClassifier should be Linear(64, {hidden}), ReLU, Linear({hidden}, 10); its Linear layers are "
         f"{found or 'none'}.", "wrong_layers")


@checks.of("DigitsClassifier", rule="hidden_layer")
def gradients_reach_every_parameter(DigitsClassifier, hidden=32, num_samples=8, seed=0):
    model = _classifier(DigitsClassifier, hidden, seed)
    seen = probe(_unreached, model, _images(num_samples, seed))
    expect(seen["requires_grad"], "the output does not require grad: forward detached it from the layers, so "
           "nothing would train.", "detached")
    expect(not seen["missing"], f"no gradient reached {', '.join(seen['missing'])}: that layer is not on the path "
           "from the input to the output.", "detached")


# --- make_optimizer ------------------------------------------------------------------------
#
# Rules of its text -> checks:
#   sgd              a torch.optim.SGD                                   -> returns_a_torch_optim_SGD
#   every_parameter  every parameter of the model, nested too, nothing else -> covers_every_parameter_of_the_model
#   settings         the lr and momentum given, no other option; a step is p -= lr * p.grad (momentum 0)
#                    -> passes_lr_and_momentum_on_to_plain_SGD, one_step_is_p_minus_lr_times_grad,
#                       instructor: steps_like_SGD_with_the_given_lr_and_momentum


def _nested_model(seed: int):
    """A probe: a small model with a module nested inside another."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Sequential(nn.Linear(5, 4), nn.Tanh()), nn.Linear(4, 3))


def _held(optimizer, model) -> dict:
    """A probe: which of the model's parameters the optimizer holds (the very tensors, not copies), and how many
    tensors it holds besides them or twice."""
    held = [p for group in optimizer.param_groups for p in group["params"]]
    ids, own = {id(p) for p in held}, {id(p) for p in model.parameters()}
    return {"missing": [name for name, p in model.named_parameters() if id(p) not in ids],
            "total": len(own), "foreign": sum(id(p) not in own for p in held), "twice": len(held) - len(ids)}


def _optimizer(make_optimizer, model, lr, momentum):
    optimizer = make_optimizer(model, lr=lr, momentum=momentum)
    if not is_instance(optimizer, torch.optim.Optimizer):
        fail(f"make_optimizer returned {_what(optimizer)}; the exercise asks for a torch.optim optimizer.",
             "wrong_optimizer")
    if not is_instance(optimizer, torch.optim.SGD):
        fail(f"make_optimizer returned {_what(optimizer)}; the optimizer that replaces sgd_step is plain stochastic "
             "gradient descent.", "wrong_optimizer", fix="torch.optim.SGD")
    return optimizer


def _gradients_for(shapes, seed: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=gen) for shape in shapes]


@checks.of("make_optimizer", rule="sgd")
def returns_a_torch_optim_SGD(make_optimizer, lr=0.1, momentum=0.0, seed=0):
    _optimizer(make_optimizer, probe(_nested_model, seed), lr, momentum)


@checks.of("make_optimizer", rule="every_parameter")
def covers_every_parameter_of_the_model(make_optimizer, lr=0.1, momentum=0.0, seed=0):
    model = probe(_nested_model, seed)
    held = probe(_held, _optimizer(make_optimizer, model, lr, momentum), model)
    expect(not held["missing"],
           f"the optimizer leaves out {len(held['missing'])} of the model's {held['total']} parameter tensors "
           f"({', '.join(held['missing'])}), so they would never train: the nested module's parameters, or copies "
           "of them instead of the model's own tensors.", "missing_parameters",
           fix="model.parameters() walks the whole module tree")
    expect(held["foreign"] == 0 and held["twice"] == 0,
           f"the optimizer holds {held['foreign']} tensors that are not parameters of the model"
           + (f", and {held['twice']} of them twice" if held["twice"] else "") + ".", "wrong_parameters")


@checks.of("make_optimizer", rule="settings")
def passes_lr_and_momentum_on_to_plain_SGD(make_optimizer, lr=0.1, momentum=0.0, seed=0):
    for lr_, momentum_ in ((lr, momentum), (0.05, 0.9)):
        optimizer = _optimizer(make_optimizer, probe(_nested_model, seed), lr_, momentum_)
        for group in optimizer.param_groups:
            if group.get("lr") != lr_:
                fail(f"make_optimizer(model, lr={lr_}, momentum={momentum_}) built SGD with lr={group.get('lr')}: "
                     "the lr argument is not passed on.", "lr_ignored")
            if group.get("momentum") != momentum_:
                fail(f"make_optimizer(model, lr={lr_}, momentum={momentum_}) built SGD with "
                     f"momentum={group.get('momentum')}: the momentum argument is not passed on.",
                     "momentum_ignored")
            extras = {key: group.get(key) for key, plain in (("weight_decay", 0), ("dampening", 0),
                                                               ("nesterov", False)) if group.get(key) != plain}
            expect(not extras, f"make_optimizer's SGD sets {extras}: the exercise asks for plain SGD with only lr "
                   "and momentum (no weight decay, no dampening, no Nesterov).", "wrong_update")


@checks.of("make_optimizer", rule="settings")
def one_step_is_p_minus_lr_times_grad(make_optimizer, lr=0.1, seed=0):
    # the update the notebook states: p -= lr * p.grad (with momentum 0)
    model = probe(_nested_model, seed)
    optimizer = _optimizer(make_optimizer, model, lr, 0.0)
    before = probe(_parameters, model)
    grads = _gradients_for([p.shape for p in before.values()], seed + 1)
    probe(_set_grads, model, grads)
    optimizer.step()
    after = probe(_parameters, model)
    expect(all(is_close(after[name], p - lr * g, atol=1e-6) for (name, p), g in zip(before.items(), grads)),
           f"one step of your optimizer (lr={lr}, momentum 0) does not move every parameter by -lr * grad.",
           "wrong_update")


# --- training_step ---------------------------------------------------------------------------
#
# The learner's step runs on a small model of the check's (inputs unlike the notebook's digits, an identity
# layer that notes the mode it ran in) with a StepRecorder: plain SGD that notes, at every step, the
# parameters and the gradients it was handed. The gradients a fresh step should follow are computed here.
# Rules of its text -> checks:
#   float_loss       the batch's loss before the update, as a Python float
#                    -> returns_the_loss_as_a_python_float, returns_the_loss_before_the_update
#   one_step         exactly one step per call, by the optimizer it is given -> takes_exactly_one_optimizer_step
#   uses_loss_fn     the loss is loss_fn applied to what the model returns   -> uses_the_loss_function_it_is_given
#   fresh_gradients  nothing from before the call reaches the step; calls in a row step on fresh gradients
#                    -> steps_on_the_gradient_of_this_batch_alone, calls_in_a_row_step_on_fresh_gradients,
#                       instructor: moves_the_parameters_by_one_optimizer_step, ignores_gradients_the_model_arrives_with,
#                       calls_in_a_row_match_steps_with_fresh_gradients
#   train_mode       the model runs in training mode                          -> runs_the_model_in_training_mode

_FEATURES, _HIDDEN, _CLASSES = 12, 16, 5


class _ModeProbe(nn.Module):
    """An identity layer that notes whether the model was in training mode when it ran."""

    def __init__(self):
        super().__init__()
        self.seen: list[bool] = []

    def forward(self, x):
        self.seen.append(self.training)
        return x


def _step_setup(seed: int, lr: float, momentum: float, stale_seed: int | None = None, eval_mode: bool = False):
    """A probe: the check's model (Linear, ReLU, mode probe, Linear) and a StepRecorder over it, built where the
    learner's code runs; with ``stale_seed``, the model arrives holding gradients from before."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(_FEATURES, _HIDDEN), nn.ReLU(), _ModeProbe(), nn.Linear(_HIDDEN, _CLASSES))
    if stale_seed is not None:
        gen = torch.Generator().manual_seed(stale_seed)
        for p in model.parameters():
            p.grad = torch.randn(p.shape, generator=gen)
    if eval_mode:
        model.eval()
    return model, StepRecorder(model.parameters(), lr=lr, momentum=momentum)


def _modes(model) -> dict:
    """A probe: the modes the mode probe saw, and the mode of every module now."""
    return {"seen": list(model[2].seen), "now": [m.training for m in model.modules()]}


def _batch(batch_size: int, seed: int):
    gen = torch.Generator().manual_seed(seed + 57)
    return torch.randn(batch_size, _FEATURES, generator=gen), torch.randint(0, _CLASSES, (batch_size,), generator=gen)


def _output(params, X):
    """What the check's model computes with these parameters."""
    W1, b1, W2, b2 = params
    return F.linear(F.relu(F.linear(X, W1, b1)), W2, b2)


def _fresh_gradients(params, X, y, label_smoothing: float = 0.0) -> list[torch.Tensor]:
    """The gradients of this batch's loss at these parameters, and nothing else."""
    leaves = [p.detach().clone().requires_grad_() for p in params]
    loss = F.cross_entropy(_output(leaves, X), y, label_smoothing=label_smoothing)
    return [g.detach() for g in torch.autograd.grad(loss, leaves)]


def _same_grads(handed, expected) -> bool:
    return all(h is not None and is_close(h, e, atol=1e-6) for h, e in zip(handed, expected))


def _call_step(training_step, model, loss_fn, optimizer, X, y) -> float:
    return as_float(training_step(model, loss_fn, optimizer, X, y), "training_step's result")


def _expect_fresh_step(step: dict, X, y, stale, when: str) -> None:
    """The recorded step followed this batch's gradient alone; else name what it followed."""
    handed, fresh = step["grads"], _fresh_gradients(step["params"], X, y)
    if _same_grads(handed, fresh):
        return
    if all(h is None or bool((h == 0).all()) for h in handed):
        fail(f"{when}, optimizer.step() found no gradients: they were cleared after loss.backward() (or backward "
             "was never called), so the step changed nothing.", "no_update",
             fix="clear first, then forward, loss, backward, step")
    if stale is not None and _same_grads(handed, [f + s for f, s in zip(fresh, stale)]):
        fail(f"{when}, the step followed this batch's gradient plus gradients left over from before: backward() "
             "adds into .grad, and nothing cleared it before this batch's backward.", "grads_accumulate",
             fix="optimizer.zero_grad() (or model.zero_grad()) at the start of every step, before backward()")
    fail(f"{when}, the gradients handed to optimizer.step() are not those of loss_fn(model(X), y) for this batch.",
         "wrong_update")


@checks.of("training_step", rule="float_loss")
def returns_the_loss_as_a_python_float(training_step, lr=0.1, momentum=0.9, batch_size=64, seed=0):
    X, y = _batch(batch_size, seed)
    model, optimizer = probe(_step_setup, seed, lr, momentum)
    _call_step(training_step, model, probe(nn.CrossEntropyLoss), optimizer, X, y)


@checks.of("training_step", rule="one_step")
def takes_exactly_one_optimizer_step(training_step, lr=0.1, momentum=0.9, batch_size=64, seed=0):
    X, y = _batch(batch_size, seed)
    model, optimizer = probe(_step_setup, seed, lr, momentum)
    _call_step(training_step, model, probe(nn.CrossEntropyLoss), optimizer, X, y)
    steps = len(optimizer.record)
    if steps == 0:
        if all(g is None or bool((g == 0).all()) for g in probe(_grads, model)):
            fail("training_step never called the optimizer's step(), and no gradients were computed either.",
                 "no_update", fix="loss.backward(), then optimizer.step()")
        fail("training_step computed gradients, but the optimizer it was given never stepped: an update by hand or "
             "an optimizer of your own ignores the learning rate and momentum the caller chose.", "no_update",
             fix="optimizer.step() after loss.backward()")
    expect(steps == 1, f"one call of training_step called optimizer.step() {steps} times; one batch makes one step.",
           "extra_steps")


@checks.of("training_step", rule="uses_loss_fn")
def uses_the_loss_function_it_is_given(training_step, lr=0.1, momentum=0.9, batch_size=64, seed=0):
    X, y = _batch(batch_size, seed)
    model, optimizer = probe(_step_setup, seed, lr, momentum)
    start = list(probe(_parameters, model).values())
    found = _call_step(training_step, model, probe(nn.CrossEntropyLoss, label_smoothing=0.3), optimizer, X, y)
    after = list(probe(_parameters, model).values())
    smoothed = [F.cross_entropy(_output(params, X), y, label_smoothing=0.3).item() for params in (start, after)]
    record = optimizer.record
    handed = record[0]["grads"] if record else []

    def near(a, b):
        return abs(a - b) <= 1e-5 * max(1.0, abs(b))

    described = "with loss_fn = nn.CrossEntropyLoss(label_smoothing=0.3)"
    if not any(near(found, value) for value in smoothed):
        probabilities = [F.cross_entropy(torch.softmax(_output(p, X), dim=1), y, label_smoothing=0.3).item()
                         for p in (start, after)]
        if any(near(found, value) for value in probabilities):
            fail(f"{described} training_step returned {number(found)}, that loss of softmax(model(X)): a softmax "
                 "was applied before a loss that applies its own.", "double_softmax",
                 fix="pass the model's raw output to loss_fn")
        fail(f"{described} training_step returned {number(found)}; that loss of this batch is {number(smoothed[0])}: "
             "the loss was computed some other way than with the loss_fn it was given.", "loss_fn_ignored",
             fix="loss = loss_fn(model(X), y)")
    if handed and any(h is not None for h in handed) and not _same_grads(handed, _fresh_gradients(
            record[0]["params"], X, y, label_smoothing=0.3)):
        expect(not _same_grads(handed, _fresh_gradients(record[0]["params"], X, y)),
               f"{described} the step followed the gradient of plain cross-entropy: backward ran on a loss of its "
               "own, not on loss_fn's.", "loss_fn_ignored")


@checks.of("training_step", rule="float_loss")
def returns_the_loss_before_the_update(training_step, lr=0.1, momentum=0.9, batch_size=64, seed=0):
    X, y = _batch(batch_size, seed)
    model, optimizer = probe(_step_setup, seed, lr, momentum)
    start = list(probe(_parameters, model).values())
    found = _call_step(training_step, model, probe(nn.CrossEntropyLoss), optimizer, X, y)
    expected = F.cross_entropy(_output(start, X), y).item()
    if abs(found - expected) <= 1e-5 * max(1.0, abs(expected)):
        return
    after = F.cross_entropy(_output(list(probe(_parameters, model).values()), X), y).item()
    if abs(found - after) <= 1e-5 * max(1.0, abs(after)):
        fail(f"training_step returned {number(found)}, the batch's loss after the update; the step was computed "
             f"from the loss before it, {number(expected)}.", "wrong_loss",
             fix="return loss.item() of the loss you called backward on")
    fail(f"training_step returned {number(found)}; the batch's loss before the update is {number(expected)}.",
         "wrong_loss")


@checks.of("training_step", rule="fresh_gradients")
def steps_on_the_gradient_of_this_batch_alone(training_step, lr=0.1, momentum=0.9, batch_size=64, seed=0):
    X, y = _batch(batch_size, seed)
    model, optimizer = probe(_step_setup, seed, lr, momentum, stale_seed=seed + 100)
    stale = probe(_grads, model)  # as a gradient check or an earlier step would leave them
    _call_step(training_step, model, probe(nn.CrossEntropyLoss), optimizer, X, y)
    record = optimizer.record
    expect(len(record) >= 1, "training_step never called optimizer.step().", "no_update")
    _expect_fresh_step(record[0], X, y, stale, "with gradients left on the model before the call")


@checks.of("training_step", rule="fresh_gradients")
def calls_in_a_row_step_on_fresh_gradients(training_step, lr=0.1, momentum=0.9, batch_size=64, steps=3, seed=0):
    X, y = _batch(batch_size, seed)
    model, optimizer = probe(_step_setup, seed, lr, momentum)
    loss_fn = probe(nn.CrossEntropyLoss)
    found = [_call_step(training_step, model, loss_fn, optimizer, X, y) for _ in range(steps)]
    record = optimizer.record
    expect(len(record) == steps, f"{steps} calls of training_step made {len(record)} optimizer steps; expected one "
           "per call.", "no_update" if len(record) < steps else "extra_steps")
    for call, step in enumerate(record):
        # what piled-up gradients would hold: this batch's plus everything handed to the step before
        previous = None
        if call:
            previous = [h if h is not None else torch.zeros_like(p)
                        for h, p in zip(record[call - 1]["grads"], step["params"])]
        _expect_fresh_step(step, X, y, previous, f"at call {call + 1} of {steps} in a row")
        expected = F.cross_entropy(_output(step["params"], X), y).item()
        expect(abs(found[call] - expected) <= 1e-4 * max(1.0, abs(expected)),
               f"call {call + 1} in a row returned {number(found[call])}; the batch's loss at that moment was "
               f"{number(expected)}.", "wrong_loss")


@checks.of("training_step", rule="train_mode")
def runs_the_model_in_training_mode(training_step, lr=0.1, momentum=0.9, batch_size=64, seed=0):
    X, y = _batch(batch_size, seed)
    model, optimizer = probe(_step_setup, seed, lr, momentum, eval_mode=True)
    _call_step(training_step, model, probe(nn.CrossEntropyLoss), optimizer, X, y)
    modes = probe(_modes, model)
    expect(bool(modes["seen"]) and modes["seen"][-1] is True,
           "the model arrived in evaluation mode (as evaluating leaves it) and ran its forward pass still in it: "
           "dropout and batch norm would behave as in testing while it trains.", "not_train_mode",
           fix="model.train() before the forward pass")
    expect(all(modes["now"]), "after training_step some of the model's layers are not in training mode (is "
           "`model.train` missing its parentheses?).", "not_train_mode")


# --- predicted_start_loss (predict, then run) ----------------------------------------------------
#
# Rules of its text -> checks:
#   a_loss       one number that a cross-entropy can be (finite, not negative)
#                -> returns_one_number, is_a_possible_cross_entropy
#   right_value  within 0.1 of the loss the untrained classifier starts at -> instructor: is_within_a_tenth


def _prediction(predicted_start_loss):
    value = predicted_start_loss()
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        fail(f"predicted_start_loss() returned {_what(value)}; it should return your prediction, one number "
             "(like 1.7), written in before you run the training.", "not_a_number")
    return float(value)


@checks.of("predicted_start_loss", rule="a_loss")
def returns_one_number(predicted_start_loss):
    _prediction(predicted_start_loss)


@checks.of("predicted_start_loss", rule="a_loss")
def is_a_possible_cross_entropy(predicted_start_loss):
    value = _prediction(predicted_start_loss)
    expect(math.isfinite(value) and value >= 0,
           f"your prediction {value} cannot be a cross-entropy: that is minus the log of a probability, so it is a "
           "finite number of at least 0.", "impossible_loss")


# --- train_with_momentum (repair) --------------------------------------------------------------
#
# The given version re-creates its optimizer at every step, so the velocity of momentum starts from zero each
# time and momentum changes nothing. Graded by behaviour on models and data of the check's.
# Rules of its text -> checks:
#   losses          the `steps` losses training_step returned, in order, a list of floats
#                   -> returns_the_loss_of_every_step
#   one_optimizer   momentum carries from step to step: the parameters end where `steps` steps of one SGD go
#                   -> momentum_changes_the_path, instructor: ends_where_one_SGD_ends

_REPAIR_FEATURES, _REPAIR_CLASSES = 10, 4


def _repair_model(seed: int):
    """A probe: a small classifier, freshly initialised from ``seed``."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(_REPAIR_FEATURES, 8), nn.Tanh(), nn.Linear(8, _REPAIR_CLASSES))


def _repair_data(num_samples: int, seed: int):
    gen = torch.Generator().manual_seed(seed + 77)
    X = torch.randn(num_samples, _REPAIR_FEATURES, generator=gen)
    return X, torch.randint(0, _REPAIR_CLASSES, (num_samples,), generator=gen)


def _repair_output(params, X):
    W1, b1, W2, b2 = params
    return F.linear(torch.tanh(F.linear(X, W1, b1)), W2, b2)


def run_repair(train_with_momentum, steps: int, lr: float, momentum: float, num_samples: int, seed: int):
    """The learner's train_with_momentum on a fresh model of the check's: (start parameters, end parameters,
    the losses it returned)."""
    X, y = _repair_data(num_samples, seed)
    model = probe(_repair_model, seed)
    start = list(probe(_parameters, model).values())
    losses = train_with_momentum(model, X, y, steps=steps, lr=lr, momentum=momentum)
    if type(losses) is not list:
        fail(f"train_with_momentum returned {_what(losses)}; it should return the list of the losses of its steps.",
             "wrong_type")
    for value in losses:
        as_float(value, "each loss train_with_momentum returns")
    return X, y, start, list(probe(_parameters, model).values()), losses


def _blame_parts(objects: dict, what: str) -> None:
    """Name a broken exercise the repair relies on, if there is one."""
    for other in ("training_step", "make_optimizer"):
        broken = failure_of(other, **{other: objects[other]})
        if broken is not None:
            blame("train_with_momentum", what, other, broken)


@checks.of("train_with_momentum", rule="losses")
def returns_the_loss_of_every_step(train_with_momentum, training_step, make_optimizer, steps=5, lr=0.1,
                                   momentum=0.9, num_samples=48, seed=0):
    X, y, start, _, losses = run_repair(train_with_momentum, steps, lr, momentum, num_samples, seed)
    expect(len(losses) == steps, f"train_with_momentum(..., steps={steps}) returned {len(losses)} losses; expected "
           "one per step.", "wrong_length")
    first = F.cross_entropy(_repair_output(start, X), y).item()
    if abs(losses[0] - first) > 1e-4 * max(1.0, first):
        _blame_parts(dict(training_step=training_step, make_optimizer=make_optimizer), "the first loss is wrong")
        fail(f"the first loss returned is {number(losses[0])}; the model's loss on the batch before any step is "
             f"{number(first)}.", "wrong_loss")


@checks.of("train_with_momentum", rule="one_optimizer")
def momentum_changes_the_path(train_with_momentum, training_step, make_optimizer, steps=5, lr=0.1, momentum=0.9,
                              num_samples=48, seed=0):
    _, _, start, with_momentum, _ = run_repair(train_with_momentum, steps, lr, momentum, num_samples, seed)
    if all(is_close(a, b, atol=0, rtol=0) for a, b in zip(start, with_momentum)):
        _blame_parts(dict(training_step=training_step, make_optimizer=make_optimizer), "nothing trained the model")
        fail(f"after {steps} steps the model's parameters are those it started with: nothing trained it.",
             "no_update")
    if momentum == 0:
        return
    _, _, _, without, _ = run_repair(train_with_momentum, steps, lr, 0.0, num_samples, seed)
    if all(is_close(a, b, atol=1e-7, rtol=1e-6) for a, b in zip(with_momentum, without)):
        _blame_parts(dict(training_step=training_step, make_optimizer=make_optimizer),
                     f"momentum={momentum} trains exactly as momentum=0 does")
        fail(f"{steps} steps with momentum={momentum} end exactly where {steps} steps with momentum=0 end: the "
             "velocity that momentum builds up never reaches a second step. Where does SGD keep it, and how long "
             "does that live?", "momentum_lost", fix="make the optimizer once, before the loop")


# --- fast_optimizer (challenge) ----------------------------------------------------------------
#
# Graded by outcome: the learner chooses the optimizer and its settings; the check trains a digits network of
# its own, where the learner's code runs, with the learner's own training_step for FAST_STEPS full-batch
# steps, and measures the validation loss here, on samples that never leave the judge.
# Rules of its text -> checks:
#   optimizer_over_model  a torch.optim optimizer over every parameter of the model it is given
#                         -> returns_an_optimizer_over_every_parameter
#   target                after FAST_STEPS calls of training_step, validation loss <= FAST_TARGET
#                         -> reaches_the_target_within_the_step_budget (the notebook's split),
#                            instructor: reaches_the_target_on_a_split_it_never_saw (hidden split, width, init)
#   (relies on training_step: a broken training_step is named as the cause)

FAST_STEPS = 30
FAST_TARGET = 0.25
VAL_FRACTION = 0.2


def _challenge_model(width: int, seed: int):
    """A probe: the challenge's network, as the notebook's demo builds it: tanh, not the ReLU of DigitsClassifier,
    so the optimizer must suit a network it was not tuned on."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, width), nn.Tanh(), nn.Linear(width, 10))


def _train_steps(training_step, model, loss_fn, optimizer, X, y, steps: int) -> None:
    """A probe: call the learner's training_step ``steps`` times on the batch (X, y), on one CPU thread."""
    torch.set_num_threads(1)
    for _ in range(steps):
        training_step(model, loss_fn, optimizer, X, y)


def _fast(fast_optimizer, model):
    optimizer = fast_optimizer(model)
    if not is_instance(optimizer, torch.optim.Optimizer):
        fail(f"fast_optimizer returned {_what(optimizer)}; it should return a torch.optim optimizer.",
             "wrong_optimizer")
    held = probe(_held, optimizer, model)
    expect(not held["missing"], f"fast_optimizer's optimizer leaves out {', '.join(held['missing'])}: those would "
           "never train.", "missing_parameters", fix="give it model.parameters()")
    return optimizer


def fast_validation_loss(fast_optimizer, training_step, split_seed: int, width: int, model_seed: int) -> float:
    """Train the challenge's network with the learner's optimizer and training_step on the training part of a
    seeded split of the digits; its validation loss, computed here."""
    X, y = load_digits()
    order = torch.randperm(len(X), generator=torch.Generator().manual_seed(split_seed))
    n_val = round(VAL_FRACTION * len(X))
    val_idx, train_idx = order[:n_val], order[n_val:]
    model = probe(_challenge_model, width, model_seed)
    optimizer = _fast(fast_optimizer, model)
    probe(_train_steps, training_step, model, probe(nn.CrossEntropyLoss), optimizer, X[train_idx], y[train_idx],
          FAST_STEPS)
    W1, b1, W2, b2 = probe(_parameters, model).values()
    return F.cross_entropy(F.linear(torch.tanh(F.linear(X[val_idx], W1, b1)), W2, b2), y[val_idx]).item()


def expect_fast_loss(loss: float, where: str, training_step) -> None:
    if loss <= FAST_TARGET:
        return
    broken = failure_of("training_step", training_step=training_step)
    if broken is not None:
        blame("fast_optimizer", f"after {FAST_STEPS} steps the validation loss is {number(loss)}, above the target "
              f"{FAST_TARGET}, but that may not be your optimizer's fault: the steps are made", "training_step", broken)
    why = " (not even a number: the steps diverged)" if math.isnan(loss) else ""
    fail(f"after {FAST_STEPS} full-batch steps with your optimizer, the validation loss {where} is {number(loss)}"
         f"{why}; the target is at most {FAST_TARGET}. Plain SGD with lr=0.1 is still above 2 after that many steps.",
         "below_target", fix="larger steps, momentum, or an optimizer that adapts its step size (see the hints)")


@checks.of("fast_optimizer", rule="optimizer_over_model")
def returns_an_optimizer_over_every_parameter(fast_optimizer, seed=0):
    _fast(fast_optimizer, probe(_challenge_model, 32, seed))


@checks.of("fast_optimizer", rule="target")
def reaches_the_target_within_the_step_budget(fast_optimizer, training_step, seed=0):
    # the notebook's split (seed 0, round(0.2 n) samples for validation), width 32, initial weights of seed 0
    loss = fast_validation_loss(fast_optimizer, training_step, split_seed=seed, width=32, model_seed=seed)
    expect_fast_loss(loss, "on the notebook's validation split", training_step)
