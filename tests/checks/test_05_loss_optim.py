"""The checks of 05_loss_optim: real mistakes are caught with the right
diagnosis, and correct answers written another way are accepted."""

from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from autograder.runner import run_checks
from support import assert_accepted, assert_caught, solution_namespace

NB = "05_loss_optim"


def ns(**replacements):
    return solution_namespace(NB, **replacements)


def test_the_solutions_pass_with_default_and_fresh_inputs():
    namespace = ns()
    for exercise in ("softmax_cross_entropy", "DigitsClassifier", "make_optimizer", "training_step"):
        assert_accepted(exercise, namespace)
    assert_accepted("softmax_cross_entropy", namespace, num_samples=37, num_classes=10, seed=5)
    assert_accepted("DigitsClassifier", namespace, hidden=17, num_samples=23, seed=4)
    assert_accepted("make_optimizer", namespace, lr=0.03, momentum=0.8)
    assert_accepted("training_step", namespace, lr=0.05, momentum=0.5, batch_size=97, steps=4, seed=6)


def test_the_solutions_pass_the_hidden_tests_of_the_notebook_with_the_instructor_checks():
    namespace = ns()
    assert_accepted("softmax_cross_entropy", namespace, instructor=True, num_samples=37, num_classes=10, seed=5)
    assert_accepted("DigitsClassifier", namespace, instructor=True, hidden=17, num_samples=23, seed=4)
    assert_accepted("make_optimizer", namespace, instructor=True, lr=0.03, momentum=0.8)
    assert_accepted("training_step", namespace, instructor=True, lr=0.05, momentum=0.5, batch_size=97, steps=4,
                    seed=6)
    assert_accepted("fast_optimizer", namespace, instructor=True, seed=1)


def test_no_public_check_runs_a_reference_training_step_or_builds_the_answers_optimizer():
    import importlib
    import inspect
    public = importlib.import_module("autograder.checks.05_loss_optim")
    assert not hasattr(public, "_reference_steps")
    assert "torch.optim.SGD(reference" not in inspect.getsource(public)


# --- softmax_cross_entropy ---


def ce_logsumexp_gather(logits, targets):
    lse = torch.logsumexp(logits, dim=1)
    return (lse - logits.gather(1, targets.unsqueeze(1)).squeeze(1)).mean()


def ce_nll_on_hand_written_log_probs(logits, targets):
    shifted = logits - logits.max(dim=1, keepdim=True).values
    log_probs = shifted - shifted.exp().sum(dim=1, keepdim=True).log()
    return F.nll_loss(log_probs, targets)


def ce_one_hot(logits, targets):
    lse = torch.logsumexp(logits, dim=-1)
    picked = (logits * F.one_hot(targets, logits.shape[1])).sum(dim=-1)
    return torch.mean(lse - picked)


def ce_functional(logits, targets):
    return F.cross_entropy(logits, targets)


def ce_module(logits, targets):
    return nn.CrossEntropyLoss()(logits, targets)


def ce_F_log_softmax(logits, targets):
    return F.nll_loss(F.log_softmax(logits, dim=1), targets)


def ce_torch_log_softmax(logits, targets):
    return F.nll_loss(torch.log_softmax(logits, dim=1), targets)


def ce_tensor_log_softmax(logits, targets):
    return -logits.log_softmax(dim=1)[torch.arange(len(targets)), targets].mean()


def ce_nn_LogSoftmax(logits, targets):
    return nn.NLLLoss()(nn.LogSoftmax(dim=1)(logits), targets)


def ce_swallowing_the_stop(logits, targets):
    try:
        return F.cross_entropy(logits, targets)
    except Exception:
        return ce_logsumexp_gather(logits, targets)


def ce_raising_something_else(logits, targets):
    try:
        return F.cross_entropy(logits, targets)
    except Exception as exc:
        raise RuntimeError("could not compute the loss") from exc


def ce_naive(logits, targets):
    probs = logits.exp() / logits.exp().sum(dim=1, keepdim=True)
    return -probs[torch.arange(len(targets)), targets].log().mean()


def ce_sum(logits, targets):
    return (torch.logsumexp(logits, dim=1) - logits[torch.arange(len(targets)), targets]).sum()


def ce_unreduced(logits, targets):
    return torch.logsumexp(logits, dim=1) - logits[torch.arange(len(targets)), targets]


def ce_double_softmax(logits, targets):
    return ce_logsumexp_gather(torch.softmax(logits, dim=1), targets)


def ce_wrong_indexing(logits, targets):
    return (torch.logsumexp(logits, dim=1) - logits[:, targets]).mean()


@pytest.mark.parametrize("right", [ce_logsumexp_gather, ce_nll_on_hand_written_log_probs, ce_one_hot])
def test_softmax_cross_entropy_written_differently_is_accepted(right):
    assert_accepted("softmax_cross_entropy", ns(softmax_cross_entropy=right))


def test_the_solutions_hand_written_max_shift_and_torch_logsumexp_agree():
    namespace = ns()
    logits, targets = torch.randn(9, 4) * 500, torch.randint(0, 4, (9,))
    assert torch.allclose(namespace["softmax_cross_entropy"](logits, targets), ce_logsumexp_gather(logits, targets))


@pytest.mark.parametrize("wrong, code", [
    (ce_functional, "used_builtin"),
    (ce_module, "used_builtin"),
    (ce_F_log_softmax, "used_builtin"),
    (ce_torch_log_softmax, "used_builtin"),
    (ce_tensor_log_softmax, "used_builtin"),
    (ce_nn_LogSoftmax, "used_builtin"),
    (ce_swallowing_the_stop, "used_builtin"),
    (ce_raising_something_else, "used_builtin"),
    (ce_naive, "overflow"),
    (ce_sum, "sum_not_mean"),
    (ce_unreduced, "not_reduced"),
    (ce_double_softmax, "double_softmax"),
    (ce_wrong_indexing, "wrong_indexing"),
])
def test_softmax_cross_entropy_mistakes_are_diagnosed(wrong, code):
    assert_caught("softmax_cross_entropy", ns(softmax_cross_entropy=wrong), code)


@pytest.mark.parametrize("right", [ce_logsumexp_gather, ce_nll_on_hand_written_log_probs, ce_one_hot])
def test_softmax_cross_entropy_written_differently_passes_the_hidden_tests(right):
    assert_accepted("softmax_cross_entropy", ns(softmax_cross_entropy=right), instructor=True, num_samples=37,
                    num_classes=10, seed=5)


def ce_one_hot_sized_by_the_targets(logits, targets):
    """Right whenever the batch holds the last class; wrong (a shape error) otherwise."""
    lse = torch.logsumexp(logits, dim=1)
    return (lse - (logits * F.one_hot(targets)).sum(dim=1)).mean()


def test_a_loss_that_only_works_when_every_class_is_in_the_batch_fails_only_the_hidden_tests():
    namespace = ns(softmax_cross_entropy=ce_one_hot_sized_by_the_targets)
    assert_accepted("softmax_cross_entropy", namespace)
    assert_caught("softmax_cross_entropy", namespace, "raised", instructor=True, num_samples=37, num_classes=10,
                  seed=5)


def test_the_built_in_message_names_the_tool_that_was_called():
    result = assert_caught("softmax_cross_entropy", ns(softmax_cross_entropy=ce_F_log_softmax), "used_builtin")
    assert "`F.log_softmax`" in result.message and "torch.logsumexp" in result.message


def test_the_built_ins_are_back_after_the_checks_even_when_the_learners_code_raised():
    def broken(logits, targets):
        F.log_softmax(logits, dim=1)

    def crashing(logits, targets):
        raise ZeroDivisionError("a bug of its own")

    assert_caught("softmax_cross_entropy", ns(softmax_cross_entropy=broken), "used_builtin")
    results = run_checks("softmax_cross_entropy", ns(softmax_cross_entropy=crashing))
    assert results[0].status == "error" and "ZeroDivisionError" in results[0].message
    logits, targets = torch.randn(5, 3), torch.tensor([0, 1, 2, 1, 0])
    expected = ce_logsumexp_gather(logits, targets)
    assert torch.allclose(F.cross_entropy(logits, targets), expected)
    assert torch.allclose(nn.CrossEntropyLoss()(logits, targets), expected)
    for log_probs in (torch.log_softmax(logits, 1), F.log_softmax(logits, 1), logits.log_softmax(1),
                      torch.special.log_softmax(logits, 1), nn.LogSoftmax(dim=1)(logits)):
        assert torch.allclose(F.nll_loss(log_probs, targets), expected)
    assert "log_softmax" not in vars(torch.Tensor)


# --- DigitsClassifier ---


class FunctionalClassifier(nn.Module):
    def __init__(self, hidden=32):
        super().__init__()
        self.fc1 = nn.Linear(64, hidden)
        self.fc2 = nn.Linear(hidden, 10)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


class OrderedDictClassifier(nn.Module):
    def __init__(self, hidden=32):
        super().__init__()
        self.layers = nn.Sequential(OrderedDict([("hidden", nn.Linear(64, hidden)), ("relu", nn.ReLU()),
                                                 ("logits", nn.Linear(hidden, 10))]))

    def forward(self, x):
        return self.layers(x)


def classifier(finish=None, bias=True, relu=True, fixed_hidden=None):
    class Model(nn.Module):
        def __init__(self, hidden=32):
            super().__init__()
            hidden = fixed_hidden or hidden
            self.fc1 = nn.Linear(64, hidden)
            self.fc2 = nn.Linear(hidden, 10, bias=bias)

        def forward(self, x):
            h = self.fc1(x)
            out = self.fc2(F.relu(h) if relu else h)
            return finish(out) if finish else out

    return Model


class PlainListClassifier(nn.Module):
    def __init__(self, hidden=32):
        super().__init__()
        self.layers = [nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10)]

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class SequentialWithSoftmax(nn.Module):
    def __init__(self, hidden=32):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10), nn.Softmax(dim=1))

    def forward(self, x):
        return self.net(x)


class OutputLayerRegisteredFirst(nn.Module):
    def __init__(self, hidden=32):
        super().__init__()
        self.out = nn.Linear(hidden, 10)
        self.hidden = nn.Linear(64, hidden)

    def forward(self, x):
        return self.out(torch.relu(self.hidden(x)))


@pytest.mark.parametrize("right", [FunctionalClassifier, OrderedDictClassifier, OutputLayerRegisteredFirst])
def test_DigitsClassifier_written_differently_is_accepted(right):
    assert_accepted("DigitsClassifier", ns(DigitsClassifier=right))
    assert_accepted("DigitsClassifier", ns(DigitsClassifier=right), hidden=17, num_samples=23, seed=4)


@pytest.mark.parametrize("wrong, code", [
    (classifier(finish=lambda out: torch.softmax(out, dim=1)), "double_softmax"),
    (SequentialWithSoftmax, "double_softmax"),
    (classifier(finish=torch.sigmoid), "double_softmax"),
    (classifier(finish=lambda out: F.log_softmax(out, dim=1)), "not_logits"),
    (classifier(bias=False), "missing_bias"),
    (classifier(relu=False), "missing_activation"),
    (PlainListClassifier, "layers_in_plain_list"),
])
def test_DigitsClassifier_mistakes_are_diagnosed(wrong, code):
    assert_caught("DigitsClassifier", ns(DigitsClassifier=wrong), code)


def test_DigitsClassifier_that_ignores_hidden_fails_the_hidden_tests():
    wrong = classifier(fixed_hidden=32)
    assert_accepted("DigitsClassifier", ns(DigitsClassifier=wrong))
    assert_caught("DigitsClassifier", ns(DigitsClassifier=wrong), "wrong_parameter_count", hidden=17)


def test_the_missing_bias_message_is_off_by_the_ten_outputs():
    result = assert_caught("DigitsClassifier", ns(DigitsClassifier=classifier(bias=False)), "missing_bias")
    assert "2400 parameters" in result.message and "expected 2410" in result.message


# --- make_optimizer ---


def optimizer_with_param_groups(model, lr=0.1, momentum=0.0):
    return torch.optim.SGD([{"params": list(model.parameters())}], lr=lr, momentum=momentum)


def optimizer_adam(model, lr=0.1, momentum=0.0):
    return torch.optim.Adam(model.parameters(), lr=lr)


def optimizer_first_layer_only(model, lr=0.1, momentum=0.0):
    return torch.optim.SGD(next(model.children()).parameters(), lr=lr, momentum=momentum)


def optimizer_fixed_lr(model, lr=0.1, momentum=0.0):
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=momentum)


def optimizer_without_momentum(model, lr=0.1, momentum=0.0):
    return torch.optim.SGD(model.parameters(), lr=lr)


def optimizer_nesterov(model, lr=0.1, momentum=0.0):
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, nesterov=momentum > 0)


def test_make_optimizer_with_param_groups_is_accepted():
    assert_accepted("make_optimizer", ns(make_optimizer=optimizer_with_param_groups))


@pytest.mark.parametrize("wrong, code", [
    (optimizer_adam, "wrong_optimizer"),
    (optimizer_first_layer_only, "missing_parameters"),
    (optimizer_fixed_lr, "lr_ignored"),
    (optimizer_without_momentum, "momentum_ignored"),
    (optimizer_nesterov, "wrong_update"),
])
def test_make_optimizer_mistakes_are_diagnosed(wrong, code):
    assert_caught("make_optimizer", ns(make_optimizer=wrong), code)


def optimizer_weight_decay(model, lr=0.1, momentum=0.0):
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=1e-3)


def test_make_optimizer_with_weight_decay_is_caught():
    assert_caught("make_optimizer", ns(make_optimizer=optimizer_weight_decay), "wrong_update")


def test_make_optimizer_with_param_groups_passes_the_hidden_tests_too():
    assert_accepted("make_optimizer", ns(make_optimizer=optimizer_with_param_groups), instructor=True, lr=0.03,
                    momentum=0.8)


# --- training_step ---


def step(order=("train", "zero", "forward", "backward", "step"), zero=lambda model, optimizer: optimizer.zero_grad(),
         transform=None, result=lambda loss: loss.item(), loss_of=None):
    """A training step whose moves and their order are spelled out, for the variants below."""

    def training_step(model, loss_fn, optimizer, X, y):
        loss = None
        for move in order:
            if move == "train":
                model.train()
            elif move == "zero":
                zero(model, optimizer)
            elif move == "forward":
                out = model(X)
                out = transform(out) if transform else out
                loss = (loss_of or loss_fn)(out, y)
            elif move == "backward":
                loss.backward()
            elif move == "step":
                optimizer.step()
        return result(loss)

    return training_step


def test_training_step_with_model_zero_grad_is_accepted():
    assert_accepted("training_step", ns(training_step=step(zero=lambda model, optimizer: model.zero_grad())))


@pytest.mark.parametrize("set_to_none", [True, False])
def test_training_step_with_either_kind_of_zero_grad_is_accepted(set_to_none):
    zero = lambda model, optimizer: optimizer.zero_grad(set_to_none=set_to_none)  # noqa: E731
    assert_accepted("training_step", ns(training_step=step(zero=zero)))
    assert_accepted("training_step", ns(training_step=step(zero=zero)), lr=0.05, momentum=0.5, batch_size=97, steps=4,
                    seed=6)


def test_training_step_that_clears_after_the_forward_pass_and_returns_float_is_accepted():
    variant = step(order=("train", "forward", "zero", "backward", "step"), result=lambda loss: float(loss))
    assert_accepted("training_step", ns(training_step=variant))


def test_training_step_that_clears_gradients_by_hand_is_accepted():
    def zero(model, optimizer):
        for p in model.parameters():
            p.grad = None

    assert_accepted("training_step", ns(training_step=step(zero=zero)))


@pytest.mark.parametrize("wrong, code", [
    (step(order=("train", "forward", "backward", "step")), "grads_accumulate"),
    (step(order=("train", "forward", "backward", "step", "zero")), "grads_accumulate"),
    (step(order=("train", "zero", "forward", "backward", "zero", "step")), "no_update"),
    (step(order=("train", "zero", "forward", "backward")), "no_update"),
    (step(order=("train", "zero", "forward", "step")), "no_update"),
    (step(order=("zero", "forward", "backward", "step")), "not_train_mode"),
    (step(order=("zero", "forward", "backward", "step", "train")), "not_train_mode"),
    (step(transform=lambda out: torch.softmax(out, dim=1)), "double_softmax"),
    (step(result=lambda loss: loss), "wrong_type"),
    (step(result=lambda loss: loss.detach()), "wrong_type"),
    (step(loss_of=F.cross_entropy), "loss_fn_ignored"),
])
def test_training_step_mistakes_are_diagnosed(wrong, code):
    assert_caught("training_step", ns(training_step=wrong), code)


def test_training_step_with_model_zero_grad_passes_the_hidden_tests_too():
    assert_accepted("training_step", ns(training_step=step(zero=lambda model, optimizer: model.zero_grad())),
                    instructor=True, lr=0.05, momentum=0.5, batch_size=97, steps=4, seed=6)


def test_two_optimizer_steps_per_call_are_caught():
    assert_caught("training_step", ns(training_step=step(order=("train", "zero", "forward", "backward", "step",
                                                                "step"))), "extra_steps")


def test_an_update_by_hand_instead_of_optimizer_step_is_caught():
    def training_step(model, loss_fn, optimizer, X, y):
        model.train()
        model.zero_grad()
        loss = loss_fn(model(X), y)
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= 0.1 * p.grad
        return loss.item()

    assert_caught("training_step", ns(training_step=training_step), "no_update")


def test_model_train_without_parentheses_is_caught():
    def training_step(model, loss_fn, optimizer, X, y):
        model.train  # noqa: B018 (the mistake under test)
        optimizer.zero_grad()
        loss = loss_fn(model(X), y)
        loss.backward()
        optimizer.step()
        return loss.item()

    assert_caught("training_step", ns(training_step=training_step), "not_train_mode")


def test_the_loss_returned_after_the_step_is_caught():
    def training_step(model, loss_fn, optimizer, X, y):
        model.train()
        optimizer.zero_grad()
        loss_fn(model(X), y).backward()
        optimizer.step()
        with torch.no_grad():
            return loss_fn(model(X), y).item()

    assert_caught("training_step", ns(training_step=training_step), "wrong_loss")


# --- fast_optimizer (challenge) ---


def adam(model):
    return torch.optim.Adam(model.parameters(), lr=0.03)


def test_another_optimizer_reaching_the_target_passes_the_hidden_tests_too():
    assert_accepted("fast_optimizer", ns(fast_optimizer=adam), instructor=True, seed=1)


@pytest.mark.parametrize("wrong, code", [
    (lambda model: torch.optim.SGD(model.parameters(), lr=0.1), "below_target"),
    (lambda model: torch.optim.SGD(model.parameters(), lr=50.0, momentum=0.9), "below_target"),   # diverges
    (lambda model: [torch.optim.SGD(model.parameters(), lr=0.5)], "wrong_optimizer"),
    (lambda model: torch.optim.SGD(model[0].parameters(), lr=0.5, momentum=0.9), "missing_parameters"),
])
def test_fast_optimizer_mistakes_are_diagnosed(wrong, code):
    assert_caught("fast_optimizer", ns(fast_optimizer=wrong), code)


def test_a_broken_training_step_is_named_as_the_cause_when_the_challenge_misses_its_target():
    no_zero_grad = step(order=("train", "forward", "backward", "step"))
    result = assert_caught("fast_optimizer", ns(training_step=no_zero_grad), "training_step_broken")
    assert "because your `training_step`" in result.message and "Fix `training_step` first" in result.message
