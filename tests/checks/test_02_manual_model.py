"""The checks of 02_manual_model: real mistakes are caught with the right
diagnosis, and correct answers written another way are accepted."""

import math

import pytest
import torch

from support import assert_accepted, assert_caught, solution_namespace

NB = "02_manual_model"


def ns(**replacements):
    return solution_namespace(NB, **replacements)


def test_the_solutions_pass_with_default_and_fresh_inputs():
    namespace = ns()
    for exercise in ("init_params", "forward", "bce_loss", "sgd_step", "train_manual", "fit_raw_measurements"):
        assert_accepted(exercise, namespace)
    assert_accepted("init_params", namespace, num_features=13, seed=7)
    assert_accepted("sgd_step", namespace, lr=0.03, seed=5, num_params=4)
    assert_accepted("train_manual", namespace, epochs=150, lr=0.05, seed=4)
    assert_accepted("train_manual", namespace, instructor=True, epochs=60, lr=0.2, seed=3, num_samples=150, num_features=7)
    assert_accepted("fit_raw_measurements", namespace, instructor=True)


# --- init_params ---


def init_params_global_seed(num_features, seed=0):
    torch.manual_seed(seed)
    bound = 1 / math.sqrt(num_features)
    W = torch.empty(num_features, 1).uniform_(-bound, bound).requires_grad_(True)
    b = torch.empty(1).uniform_(-bound, bound).requires_grad_(True)
    return W, b


def init_params_transposed(num_features, seed=0):
    g = torch.Generator().manual_seed(seed)
    bound = 1 / math.sqrt(num_features)
    return ((torch.rand(1, num_features, generator=g) * 2 - 1) * bound).requires_grad_(), torch.zeros(1, requires_grad=True)


def init_params_not_leaf(num_features, seed=0):
    g = torch.Generator().manual_seed(seed)
    bound = 1 / math.sqrt(num_features)
    W = (torch.rand(num_features, 1, generator=g, requires_grad=True) * 2 - 1) * bound
    return W, torch.zeros(1, requires_grad=True)


def init_params_only_positive(num_features, seed=0):
    g = torch.Generator().manual_seed(seed)
    W = torch.rand(num_features, 1, generator=g) / math.sqrt(num_features)
    return W.requires_grad_(), torch.zeros(1, requires_grad=True)


def init_params_unseeded(num_features, seed=0):
    bound = 1 / math.sqrt(num_features)
    return ((torch.rand(num_features, 1) * 2 - 1) * bound).requires_grad_(), torch.zeros(1, requires_grad=True)


def init_params_float64(num_features, seed=0):
    g = torch.Generator().manual_seed(seed)
    bound = 1 / math.sqrt(num_features)
    W = (torch.rand(num_features, 1, generator=g, dtype=torch.float64) * 2 - 1) * bound
    return W.requires_grad_(), torch.zeros(1, dtype=torch.float64, requires_grad=True)


def init_params_uniform_and_uniform_bias(num_features, seed=0):
    g = torch.Generator()
    g.manual_seed(seed)
    bound = num_features ** -0.5
    W = torch.empty(num_features, 1).uniform_(-bound, bound, generator=g)
    b = torch.empty(1).uniform_(-bound, bound, generator=g)
    W.requires_grad = True
    b.requires_grad = True
    return W, b


def init_params_clamped_normal(num_features, seed=0):
    g = torch.Generator().manual_seed(seed)
    bound = 1 / math.sqrt(num_features)
    W = torch.randn(num_features, 1, generator=g).clamp(-bound, bound)
    return W.requires_grad_(), torch.zeros(1, requires_grad=True)


def init_params_narrow_normal(num_features, seed=0):
    g = torch.Generator().manual_seed(seed)
    bound = 1 / math.sqrt(num_features)
    W = (torch.randn(num_features, 1, generator=g) * bound / 3).clamp(-bound, bound)
    return W.requires_grad_(), torch.zeros(1, requires_grad=True)


def init_params_fixed_seed(num_features, seed=0):
    g = torch.Generator().manual_seed(0)
    bound = 1 / math.sqrt(num_features)
    return ((torch.rand(num_features, 1, generator=g) * 2 - 1) * bound).requires_grad_(), torch.zeros(1, requires_grad=True)


def init_params_bias_of_one(num_features, seed=0):
    g = torch.Generator().manual_seed(seed)
    bound = 1 / math.sqrt(num_features)
    return ((torch.rand(num_features, 1, generator=g) * 2 - 1) * bound).requires_grad_(), torch.ones(1, requires_grad=True)


def init_params_fixed_bound(num_features, seed=0):
    g = torch.Generator().manual_seed(seed)
    return ((torch.rand(num_features, 1, generator=g) * 2 - 1) * 0.2).requires_grad_(), torch.zeros(1, requires_grad=True)


def test_init_params_with_uniform__and_a_uniform_bias_is_accepted():
    assert_accepted("init_params", ns(init_params=init_params_uniform_and_uniform_bias))


@pytest.mark.parametrize("wrong, code", [
    (init_params_global_seed, "global_rng"),
    (init_params_clamped_normal, "not_uniform"),
    (init_params_narrow_normal, "not_uniform"),
    (init_params_fixed_seed, "seed_ignored"),
    (init_params_bias_of_one, "out_of_range"),
    (init_params_fixed_bound, "out_of_range"),
    (init_params_transposed, "weight_layout_transposed"),
    (init_params_not_leaf, "not_leaf"),
    (init_params_only_positive, "not_uniform"),
    (init_params_unseeded, "not_deterministic"),
    (init_params_float64, "wrong_dtype"),
])
def test_init_params_mistakes_are_diagnosed(wrong, code):
    assert_caught("init_params", ns(init_params=wrong), code)


def test_a_clamped_normal_draw_is_told_its_values_pile_up_on_the_edges():
    result = assert_caught("init_params", ns(init_params=init_params_clamped_normal), "not_uniform")
    assert "exactly on ±bound" in result.message and "clamping" in result.message


def test_the_transposed_layout_message_gives_the_expected_shape():
    result = assert_caught("init_params", ns(init_params=init_params_transposed), "weight_layout_transposed",
                           num_features=13)
    assert "(13, 1)" in result.message and "(1, 13)" in result.message


# --- forward ---


def test_forward_with_matmul_and_a_hand_written_sigmoid_is_accepted():
    assert_accepted("forward", ns(forward=lambda X, W, b: 1 / (1 + torch.exp(-(torch.matmul(X, W) + b)))))


@pytest.mark.parametrize("wrong, code", [
    (lambda X, W, b: X @ W + b, "missing_sigmoid"),
    (lambda X, W, b: torch.sigmoid(X @ W + b).squeeze(1), "broadcast_shape"),
    (lambda X, W, b: torch.sigmoid(torch.sigmoid(X @ W + b)), "double_sigmoid"),
    (lambda X, W, b: torch.sigmoid(X @ W + b).detach(), "detached"),
])
def test_forward_mistakes_are_diagnosed(wrong, code):
    assert_caught("forward", ns(forward=wrong), code)


def test_forward_that_crashes_names_the_line_that_raised():
    def forward(X, W, b):
        return torch.sigmoid(X @ W.T + b)

    namespace = ns(forward=forward)
    from autograder.runner import run_checks

    first = run_checks("forward", namespace)[0]
    assert first.status == "error"
    assert "X @ W.T + b" in first.message and "RuntimeError" in first.message


# --- bce_loss ---


def bce_loss_functional(probs, targets, eps=1e-7):
    if probs.shape != targets.shape:
        raise ValueError("shapes differ")
    return torch.nn.functional.binary_cross_entropy(torch.clamp(probs, min=eps, max=1 - eps), targets)


def bce_loss_no_clamp(probs, targets, eps=1e-7):
    if probs.shape != targets.shape:
        raise ValueError("shapes differ")
    return -(targets * torch.log(probs) + (1 - targets) * torch.log(1 - probs)).mean()


def bce_loss_sum(probs, targets, eps=1e-7):
    if probs.shape != targets.shape:
        raise ValueError("shapes differ")
    p = probs.clamp(eps, 1 - eps)
    return -(targets * p.log() + (1 - targets) * (1 - p).log()).sum()


def bce_loss_broadcasts(probs, targets, eps=1e-7):
    p = probs.clamp(eps, 1 - eps)
    return -(targets * p.log() + (1 - targets) * (1 - p).log()).mean()


def bce_loss_fixed_eps(probs, targets, eps=1e-7):
    if probs.shape != targets.shape:
        raise ValueError("shapes differ")
    p = probs.clamp(1e-7, 1 - 1e-7)
    return -(targets * p.log() + (1 - targets) * (1 - p).log()).mean()


def bce_loss_checks_only_flat_targets(probs, targets, eps=1e-7):
    if targets.dim() == 1 and probs.dim() == 2:
        raise ValueError("targets must be a column")
    p = probs.clamp(eps, 1 - eps)
    return -(targets * p.log() + (1 - targets) * (1 - p).log()).mean()


def bce_loss_as_a_number(probs, targets, eps=1e-7):
    if probs.shape != targets.shape:
        raise ValueError("shapes differ")
    p = probs.clamp(eps, 1 - eps)
    return torch.tensor(-(targets * p.log() + (1 - targets) * (1 - p).log()).mean().item())


def bce_loss_unreduced(probs, targets, eps=1e-7):
    if probs.shape != targets.shape:
        raise ValueError("shapes differ")
    p = probs.clamp(eps, 1 - eps)
    return -(targets * p.log() + (1 - targets) * (1 - p).log())


def test_bce_loss_built_on_the_functional_api_is_accepted():
    assert_accepted("bce_loss", ns(bce_loss=bce_loss_functional))


@pytest.mark.parametrize("wrong, code", [
    (bce_loss_no_clamp, "missing_clamp"),
    (bce_loss_sum, "sum_not_mean"),
    (bce_loss_broadcasts, "broadcast_shape"),
    (bce_loss_fixed_eps, "eps_ignored"),
    (bce_loss_unreduced, "not_reduced"),
    (bce_loss_checks_only_flat_targets, "broadcast_shape"),
    (bce_loss_as_a_number, "detached"),
])
def test_bce_loss_mistakes_are_diagnosed(wrong, code):
    assert_caught("bce_loss", ns(bce_loss=wrong), code)


# --- sgd_step ---


def sgd_step_data_and_none(params, lr):
    for p in params:
        p.data -= lr * p.grad
        p.grad = None


def sgd_step_without_zeroing(params, lr):
    with torch.no_grad():
        for p in params:
            p -= lr * p.grad


def sgd_step_without_no_grad(params, lr):
    for p in params:
        p -= lr * p.grad
        p.grad.zero_()


def sgd_step_rebinding(params, lr):
    with torch.no_grad():
        for p in params:
            p = p - lr * p.grad  # noqa: PLW2901 (the mistake under test)


def sgd_step_replacing_list_items(params, lr):
    for i, p in enumerate(params):
        params[i] = p - lr * p.grad


def sgd_step_for_two(params, lr):
    W, b = params[0], params[1]
    with torch.no_grad():
        W -= lr * W.grad
        b -= lr * b.grad
    W.grad.zero_()
    b.grad.zero_()


def test_sgd_step_with_data_and_grad_none_is_accepted():
    assert_accepted("sgd_step", ns(sgd_step=sgd_step_data_and_none))


@pytest.mark.parametrize("wrong, code", [
    (sgd_step_without_zeroing, "grads_not_zeroed"),
    (sgd_step_without_no_grad, "update_in_graph"),
    (sgd_step_rebinding, "not_in_place"),
    (sgd_step_replacing_list_items, "update_in_graph"),
    (sgd_step_for_two, "not_every_parameter"),
])
def test_sgd_step_mistakes_are_diagnosed(wrong, code):
    assert_caught("sgd_step", ns(sgd_step=wrong), code)


# --- train_manual ---


def test_train_manual_with_a_while_loop_is_accepted():
    namespace = ns()

    def train_manual(X, y, epochs=100, lr=0.1, seed=0):
        W, b = namespace["init_params"](X.shape[1], seed=seed)
        losses = []
        while len(losses) < epochs:
            loss = namespace["bce_loss"](namespace["forward"](X, W, b), y)
            losses.append(float(loss))
            loss.backward()
            namespace["sgd_step"]((W, b), lr)
        return W, b, losses

    namespace["train_manual"] = train_manual
    assert_accepted("train_manual", namespace)


def test_train_manual_that_stores_loss_tensors_is_told_to_use_item():
    namespace = ns()

    def train_manual(X, y, epochs=100, lr=0.1, seed=0):
        W, b = namespace["init_params"](X.shape[1], seed=seed)
        losses = []
        for _ in range(epochs):
            loss = namespace["bce_loss"](namespace["forward"](X, W, b), y)
            loss.backward()
            namespace["sgd_step"]([W, b], lr)
            losses.append(loss)
        return W, b, losses

    namespace["train_manual"] = train_manual
    result = assert_caught("train_manual", namespace, "wrong_type")
    assert "item()" in result.message


def test_train_manual_with_accumulating_gradients_blames_sgd_step():
    result = assert_caught("train_manual", ns(sgd_step=sgd_step_without_zeroing), "grads_accumulate")
    assert "your `sgd_step`" in result.message and "backward() adds to .grad" in result.message


def test_the_hidden_reference_run_also_blames_sgd_step():
    from autograder.runner import run_checks

    results = run_checks("train_manual", ns(sgd_step=sgd_step_without_zeroing), hidden=True)
    reference = [r for r in results if r.check == "follows_gradient_descent_step_by_step"][0]
    assert reference.code == "grads_accumulate" and "your `sgd_step`" in reference.message


def _trainer(namespace, *, record="loss", seed_to_init=True, returned="trained", data=None, loss_value=None):
    """A train_manual with one chosen mistake (or none)."""

    def train_manual(X, y, epochs=100, lr=0.1, seed=0):
        if data is not None:
            X, y = data
        W, b = namespace["init_params"](X.shape[1], seed=seed) if seed_to_init else namespace["init_params"](X.shape[1])
        start = (W.detach().clone(), b.detach().clone())
        losses = []
        for epoch in range(epochs):
            loss = namespace["bce_loss"](namespace["forward"](X, W, b), y)
            loss.backward()
            namespace["sgd_step"]([W, b], lr)
            if record == "loss":
                losses.append(loss.item())
            elif record == "after_step":
                losses.append(namespace["bce_loss"](namespace["forward"](X, W, b), y).item())
            else:
                losses.append(1 / (epoch + 1))
        return (*(start if returned == "initial" else (W, b)), losses)

    namespace["train_manual"] = train_manual
    return namespace


@pytest.mark.parametrize("mistake, code", [
    (dict(record="invented"), "losses_not_measured"),
    (dict(record="after_step"), "losses_not_measured"),
    (dict(returned="initial"), "losses_not_measured"),
    (dict(seed_to_init=False), "seed_ignored"),
])
def test_train_manual_mistakes_are_diagnosed(mistake, code):
    assert_caught("train_manual", _trainer(ns(), **mistake), code)


def test_train_manual_that_ignores_its_learning_rate_is_caught():
    namespace = ns()
    inner = namespace["sgd_step"]

    def train_manual(X, y, epochs=100, lr=0.1, seed=0):
        W, b = namespace["init_params"](X.shape[1], seed=seed)
        losses = []
        for _ in range(epochs):
            loss = namespace["bce_loss"](namespace["forward"](X, W, b), y)
            loss.backward()
            inner([W, b], 0.1)
            losses.append(loss.item())
        return W, b, losses

    namespace["train_manual"] = train_manual
    assert_accepted("train_manual", namespace)  # at the default lr nothing shows
    assert_caught("train_manual", namespace, "not_gradient_descent", lr=0.3)


def test_train_manual_that_forgets_the_seed_is_told_to_pass_it_on():
    result = assert_caught("train_manual", _trainer(ns(), seed_to_init=False), "seed_ignored")
    assert "init_params(X.shape[1], seed=seed)" in result.message and "learning rate" not in result.message


def test_train_manual_with_an_init_params_that_ignores_the_seed_blames_init_params():
    namespace = _trainer(ns(init_params=init_params_fixed_seed))
    result = assert_caught("train_manual", namespace, "seed_ignored")
    assert "your `init_params`" in result.message


def test_train_manual_that_trains_on_the_notebooks_own_data_fails_the_hidden_tests():
    from autograder.data import load_breast_cancer

    namespace = _trainer(ns(), data=load_breast_cancer())
    assert_accepted("train_manual", namespace)  # the visible tests use the same data
    assert_caught("train_manual", namespace, "wrong_shape", instructor=True, epochs=60, lr=0.2, seed=3,
                  num_samples=150, num_features=7)


def test_an_unwritten_exercise_is_reported_once_and_the_rest_skipped():
    def init_params(num_features, seed=0):
        raise NotImplementedError()

    from autograder.runner import run_checks

    results = run_checks("init_params", ns(init_params=init_params))
    assert results[0].status == "not_implemented"
    assert {r.status for r in results[1:]} == {"skipped"}


def test_a_missing_name_says_which_cell_to_run():
    namespace = ns()
    del namespace["forward"]
    result = assert_caught("forward", namespace, "not_defined")
    assert "`forward` is not defined" in result.message


# --- challenge: fit_raw_measurements ---


def fit_raw_minmax(X, y):
    """Another design: scale each column to [0, 1] with the training minimum and maximum, train longer."""
    low, high = X.min(dim=0).values, X.max(dim=0).values
    namespace = ns()
    W, b, _ = namespace["train_manual"]((X - low) / (high - low), y, epochs=800, lr=1.0)
    return lambda X_new: torch.sigmoid((X_new - low) / (high - low) @ W + b).detach()


def fit_raw_naively(X, y):
    W, b, _ = ns()["train_manual"](X, y, epochs=100, lr=0.1)
    return lambda X_new: torch.sigmoid(X_new @ W + b).detach()


def fit_raw_batch_statistics(X, y):
    W, b, _ = ns()["train_manual"]((X - X.mean(0)) / X.std(0), y, epochs=300, lr=0.5)
    return lambda X_new: torch.sigmoid((X_new - X_new.mean(0)) / X_new.std(0) @ W + b).detach()


def fit_raw_fixed_scales(X, y):
    """Scales fitted to the notebook's units: right there, wrong once the units change."""
    from autograder.data import load_breast_cancer_raw

    full, _ = load_breast_cancer_raw()
    mean, std = full.mean(0), full.std(0)
    W, b, _ = ns()["train_manual"]((X - mean) / std, y, epochs=300, lr=0.5)
    return lambda X_new: torch.sigmoid((X_new - mean) / std @ W + b).detach()


def fit_raw_returning_weights(X, y):
    mean, std = X.mean(0), X.std(0)
    W, b, _ = ns()["train_manual"]((X - mean) / std, y, epochs=300, lr=0.5)
    return W, b


def fit_raw_logits(X, y):
    mean, std = X.mean(0), X.std(0)
    W, b, _ = ns()["train_manual"]((X - mean) / std, y, epochs=300, lr=0.5)
    return lambda X_new: ((X_new - mean) / std @ W + b).detach()


def test_fit_raw_measurements_designed_another_way_is_accepted():
    assert_accepted("fit_raw_measurements", ns(fit_raw_measurements=fit_raw_minmax), instructor=True)


@pytest.mark.parametrize("wrong, code", [
    (fit_raw_naively, "below_target"),
    (fit_raw_batch_statistics, "batch_dependent"),
    (fit_raw_returning_weights, "wrong_return"),
    (fit_raw_logits, "not_probabilities"),
])
def test_fit_raw_measurements_mistakes_are_diagnosed(wrong, code):
    assert_caught("fit_raw_measurements", ns(fit_raw_measurements=wrong), code)


def test_scales_taken_from_the_notebooks_data_pass_the_visible_test_but_not_the_hidden_one():
    namespace = ns(fit_raw_measurements=fit_raw_fixed_scales)
    assert_accepted("fit_raw_measurements", namespace)
    assert_caught("fit_raw_measurements", namespace, "below_target", instructor=True)
