"""The checks of 06_training_loop: real mistakes are caught with the right
diagnosis, and correct answers written another way are accepted."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader, Subset, TensorDataset, random_split  # noqa: E402

from autograder.runner import run_checks  # noqa: E402
from support import assert_accepted, assert_caught, solution_namespace  # noqa: E402

NB = "06_training_loop"
EXERCISES = ("make_loaders", "train_one_epoch", "evaluate", "fit", "plot_history")


def ns(**replacements):
    return solution_namespace(NB, **replacements)


def test_the_solutions_pass_with_default_and_fresh_inputs():
    namespace = ns()
    for exercise in EXERCISES:
        assert_accepted(exercise, namespace)
    assert_accepted("make_loaders", namespace, num_samples=250, batch_size=20, val_fraction=0.3, seed=7)
    assert_accepted("train_one_epoch", namespace, num_samples=53, batch_size=20, seed=4)
    assert_accepted("evaluate", namespace, num_samples=61, batch_size=25, seed=9)
    assert_accepted("fit", namespace, epochs=6, seed=3)
    assert_accepted("plot_history", namespace, epochs=7, seed=2)


def test_the_solutions_pass_the_hidden_tests_of_the_notebook_with_the_instructor_checks():
    namespace = ns()
    assert_accepted("make_loaders", namespace, instructor=True, num_samples=250, batch_size=20, val_fraction=0.3,
                    seed=7)
    assert_accepted("train_one_epoch", namespace, instructor=True, num_samples=41, batch_size=20, seed=4)
    assert_accepted("evaluate", namespace, instructor=True, num_samples=51, batch_size=25, seed=9)
    assert_accepted("fit", namespace, instructor=True, epochs=6, seed=3)
    assert_accepted("plot_history", namespace, instructor=True, epochs=7, seed=2)
    assert_accepted("training_settings", namespace, instructor=True, seed=1)


def test_no_public_check_module_keeps_a_reference_epoch_or_a_reference_split():
    import importlib
    import inspect
    public = importlib.import_module("autograder.checks.06_training_loop")
    assert not hasattr(public, "_reference_epoch")
    assert "torch.randperm(len(X)" not in inspect.getsource(public)


@pytest.mark.parametrize("seed", range(6))
def test_the_solution_fit_reaches_the_digits_target_for_many_seeds(seed):
    results = run_checks("fit", ns(), {"epochs": 4, "seed": seed}, hidden=True)  # the digits run is an instructor check
    assert all(r.passed for r in results), [(r.check, r.message) for r in results if not r.passed]


def test_every_check_takes_a_few_seconds_at_most():
    namespace = ns()
    for exercise in EXERCISES:
        run_checks(exercise, namespace)  # warm up
        for result in run_checks(exercise, namespace):
            assert result.seconds < 5, f"{result.check} took {result.seconds} s"


# --- make_loaders ---


def _split_loaders(train_set, val_set, batch_size, seed, **train_options):
    options = {"shuffle": True, "generator": torch.Generator().manual_seed(seed), **train_options}
    return DataLoader(train_set, batch_size=batch_size, **options), DataLoader(val_set, batch_size=batch_size)


def loaders_with_random_split(X, y, batch_size=32, val_fraction=0.2, seed=0):
    dataset = TensorDataset(X, y)
    n_val = round(val_fraction * len(dataset))
    generator = torch.Generator().manual_seed(seed)
    train_set, val_set = random_split(dataset, [len(dataset) - n_val, n_val], generator=generator)
    return (DataLoader(train_set, batch_size=batch_size, shuffle=True, generator=generator),
            DataLoader(val_set, batch_size=batch_size))


def loaders_indexing_tensors(X, y, batch_size=32, val_fraction=0.2, seed=0):
    n_val = int(val_fraction * len(X) + 0.5)
    perm = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed))
    val, train = perm[:n_val], perm[n_val:]
    return _split_loaders(TensorDataset(X[train], y[train]), TensorDataset(X[val], y[val]), batch_size, seed)


def _permuted(X, y, seed, n_val):
    dataset = TensorDataset(X, y)
    perm = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed)).tolist()
    return dataset, perm, n_val


def loaders_int_size(X, y, batch_size=32, val_fraction=0.2, seed=0):
    dataset, perm, n_val = _permuted(X, y, seed, int(val_fraction * len(X)))
    return _split_loaders(Subset(dataset, perm[n_val:]), Subset(dataset, perm[:n_val]), batch_size, seed)


def loaders_random_split_fractions(X, y, batch_size=32, val_fraction=0.2, seed=0):
    train_set, val_set = random_split(TensorDataset(X, y), [1 - val_fraction, val_fraction],
                                      generator=torch.Generator().manual_seed(seed))
    return _split_loaders(train_set, val_set, batch_size, seed)


def loaders_unseeded_split(X, y, batch_size=32, val_fraction=0.2, seed=0):
    dataset, n_val = TensorDataset(X, y), round(val_fraction * len(X))
    perm = torch.randperm(len(X)).tolist()
    return _split_loaders(Subset(dataset, perm[n_val:]), Subset(dataset, perm[:n_val]), batch_size, seed)


def loaders_last_fifth(X, y, batch_size=32, val_fraction=0.2, seed=0):
    dataset, n_val = TensorDataset(X, y), round(val_fraction * len(X))
    cut = len(X) - n_val
    return _split_loaders(Subset(dataset, range(cut)), Subset(dataset, range(cut, len(X))), batch_size, seed)


def loaders_training_on_everything(X, y, batch_size=32, val_fraction=0.2, seed=0):
    dataset, perm, n_val = _permuted(X, y, seed, round(val_fraction * len(X)))
    return _split_loaders(dataset, Subset(dataset, perm[:n_val]), batch_size, seed)


def loaders_both_shuffled(X, y, batch_size=32, val_fraction=0.2, seed=0):
    dataset, perm, n_val = _permuted(X, y, seed, round(val_fraction * len(X)))
    generator = torch.Generator().manual_seed(seed)
    return (DataLoader(Subset(dataset, perm[n_val:]), batch_size=batch_size, shuffle=True, generator=generator),
            DataLoader(Subset(dataset, perm[:n_val]), batch_size=batch_size, shuffle=True, generator=generator))


def loaders_shuffled_by_the_global_generator(X, y, batch_size=32, val_fraction=0.2, seed=0):
    torch.manual_seed(seed)
    dataset, perm, n_val = _permuted(X, y, seed, round(val_fraction * len(X)))
    return (DataLoader(Subset(dataset, perm[n_val:]), batch_size=batch_size, shuffle=True),
            DataLoader(Subset(dataset, perm[:n_val]), batch_size=batch_size))


def loaders_shuffling_X_and_y_apart(X, y, batch_size=32, val_fraction=0.2, seed=0):
    generator = torch.Generator().manual_seed(seed)
    X, y = X[torch.randperm(len(X), generator=generator)], y[torch.randperm(len(y), generator=generator)]
    n_val = round(val_fraction * len(X))
    return _split_loaders(TensorDataset(X[n_val:], y[n_val:]), TensorDataset(X[:n_val], y[:n_val]), batch_size, seed)


def loaders_dropping_the_last_batch(X, y, batch_size=32, val_fraction=0.2, seed=0):
    dataset, perm, n_val = _permuted(X, y, seed, round(val_fraction * len(X)))
    return _split_loaders(Subset(dataset, perm[n_val:]), Subset(dataset, perm[:n_val]), batch_size, seed,
                          drop_last=True)


def loaders_without_shuffling(X, y, batch_size=32, val_fraction=0.2, seed=0):
    dataset, perm, n_val = _permuted(X, y, seed, round(val_fraction * len(X)))
    return (DataLoader(Subset(dataset, perm[n_val:]), batch_size=batch_size),
            DataLoader(Subset(dataset, perm[:n_val]), batch_size=batch_size))


def loaders_ignoring_the_seed(X, y, batch_size=32, val_fraction=0.2, seed=0):
    return loaders_with_random_split(X, y, batch_size, val_fraction, seed=0)


def loaders_returning_datasets(X, y, batch_size=32, val_fraction=0.2, seed=0):
    dataset, perm, n_val = _permuted(X, y, seed, round(val_fraction * len(X)))
    return Subset(dataset, perm[n_val:]), Subset(dataset, perm[:n_val])


@pytest.mark.parametrize("variant", [loaders_with_random_split, loaders_indexing_tensors])
def test_make_loaders_written_differently_is_accepted(variant):
    assert_accepted("make_loaders", ns(make_loaders=variant))
    assert_accepted("make_loaders", ns(make_loaders=variant), num_samples=250, batch_size=20, val_fraction=0.3,
                    seed=7)


@pytest.mark.parametrize("wrong, code", [
    (loaders_int_size, "wrong_val_size"),
    (loaders_random_split_fractions, "wrong_val_size"),
    (loaders_unseeded_split, "split_not_seeded"),
    (loaders_last_fifth, "split_not_random"),
    (loaders_training_on_everything, "overlap"),
    (loaders_both_shuffled, "val_shuffled"),
    (loaders_shuffled_by_the_global_generator, "shuffle_not_seeded"),
    (loaders_shuffling_X_and_y_apart, "rows_mismatched"),
    (loaders_dropping_the_last_batch, "samples_lost"),
    (loaders_without_shuffling, "train_not_shuffled"),
    (loaders_ignoring_the_seed, "seed_ignored"),
    (loaders_returning_datasets, "not_a_dataloader"),
])
def test_make_loaders_mistakes_are_diagnosed(wrong, code):
    assert_caught("make_loaders", ns(make_loaders=wrong), code)


def test_the_rounding_message_names_round_and_both_sizes():
    result = assert_caught("make_loaders", ns(make_loaders=loaders_int_size), "wrong_val_size")
    assert "round(" in result.message and "30" in result.message and "31" in result.message


# --- train_one_epoch ---


def epoch_model_zero_grad_set_to_none(model, loader, loss_fn, optimizer):
    model.train()
    total = 0.0
    for batch in loader:
        inputs, targets = batch
        model.zero_grad(set_to_none=True)
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.step()
        total += float(loss) * inputs.shape[0]
    return total / len(loader.dataset)


def _epoch(clear_before=True, clear_after=False, train=True, weighted=True, step=True, as_float=True, last=False):
    def train_one_epoch(model, loader, loss_fn, optimizer):
        if train:
            model.train()
        losses = []
        for inputs, targets in loader:
            if clear_before:
                optimizer.zero_grad()
            loss = loss_fn(model(inputs), targets)
            loss.backward()
            if step:
                optimizer.step()
            if clear_after:
                optimizer.zero_grad()
            losses.append((loss.detach(), len(targets)))
        if last:
            return losses[-1][0].item()
        if weighted:
            mean = sum(value * size for value, size in losses) / sum(size for _, size in losses)
        else:
            mean = sum(value for value, _ in losses) / len(losses)
        return mean.item() if as_float else mean

    return train_one_epoch


def test_train_one_epoch_with_model_zero_grad_and_the_dataset_length_is_accepted():
    assert_accepted("train_one_epoch", ns(train_one_epoch=epoch_model_zero_grad_set_to_none))


def test_train_one_epoch_that_also_clears_after_the_step_is_accepted():
    assert_accepted("train_one_epoch", ns(train_one_epoch=_epoch(clear_before=True, clear_after=True)))


@pytest.mark.parametrize("wrong, code", [
    (_epoch(clear_before=False, clear_after=True), "grads_accumulate"),
    (_epoch(clear_before=False), "grads_accumulate"),
    (_epoch(weighted=False), "unweighted_mean"),
    (_epoch(train=False), "missing_train"),
    (_epoch(as_float=False), "wrong_type"),
    (_epoch(last=True), "last_batch_only"),
    (_epoch(step=False), "no_step"),
])
def test_train_one_epoch_mistakes_are_diagnosed(wrong, code):
    assert_caught("train_one_epoch", ns(train_one_epoch=wrong), code)


def test_stale_gradients_are_caught_with_fresh_inputs_too():
    assert_caught("train_one_epoch", ns(train_one_epoch=_epoch(clear_before=False, clear_after=True)),
                  "grads_accumulate", num_samples=53, batch_size=20, seed=4)


def test_the_unweighted_mean_message_gives_the_batch_sizes():
    result = assert_caught("train_one_epoch", ns(train_one_epoch=_epoch(weighted=False)), "unweighted_mean")
    assert "16, 16, 8" in result.message


# --- evaluate ---


def _evaluate(eval_mode=True, no_grad=True, weighted=True, weighted_accuracy=True, percent=False):
    def evaluate(model, loader, loss_fn):
        if eval_mode:
            model.eval()
        losses, accuracies, sizes = [], [], []
        with torch.no_grad() if no_grad else torch.enable_grad():
            for inputs, targets in loader:
                logits = model(inputs)
                losses.append(loss_fn(logits, targets).item())
                accuracies.append((logits.argmax(1) == targets).float().mean().item())
                sizes.append(len(targets))
        n = sum(sizes)
        loss = (sum(v * s for v, s in zip(losses, sizes)) / n) if weighted else sum(losses) / len(losses)
        acc = (sum(a * s for a, s in zip(accuracies, sizes)) / n) if weighted_accuracy else sum(accuracies) / len(sizes)
        return loss, acc * 100 if percent else acc

    return evaluate


def evaluate_inference_mode_restoring_the_mode(model, loader, loss_fn):
    was_training = model.training
    model.eval()
    loss_sum = right = count = 0
    with torch.inference_mode():
        for inputs, targets in loader:
            probs = torch.softmax(model(inputs), dim=1)
            loss_sum += loss_fn(model(inputs), targets).item() * targets.numel()
            right += int((probs.argmax(dim=1) == targets).sum())
            count += targets.numel()
    model.train(was_training)
    return loss_sum / count, right / count


def test_evaluate_with_inference_mode_and_softmax_is_accepted():
    assert_accepted("evaluate", ns(evaluate=evaluate_inference_mode_restoring_the_mode))


@pytest.mark.parametrize("wrong, code", [
    (_evaluate(eval_mode=False), "missing_eval"),
    (_evaluate(no_grad=False), "missing_no_grad"),
    (_evaluate(weighted=False), "unweighted_mean"),
    (_evaluate(weighted_accuracy=False), "unweighted_mean"),
    (_evaluate(percent=True), "percent_not_fraction"),
    (lambda model, loader, loss_fn: (torch.tensor(0.5), torch.tensor(0.5)), "wrong_type"),
])
def test_evaluate_mistakes_are_diagnosed(wrong, code):
    assert_caught("evaluate", ns(evaluate=wrong), code)


def test_evaluate_mistakes_are_caught_with_fresh_inputs_too():
    for wrong, code in ((_evaluate(eval_mode=False), "missing_eval"), (_evaluate(weighted=False), "unweighted_mean")):
        assert_caught("evaluate", ns(evaluate=wrong), code, num_samples=61, batch_size=25, seed=9)


# --- fit ---


def _fit(validate_each_epoch=True, train_mode=True, eval_mode=True, no_grad=True, evaluate_first=False):
    """A fit written inline, without train_one_epoch and evaluate."""

    def fit(model, train_loader, val_loader, loss_fn, optimizer, epochs):
        history = {"train_loss": [], "val_loss": [], "val_acc": [], "train_acc": []}

        def validate():
            if eval_mode:
                model.eval()
            total = right = count = 0
            with torch.no_grad() if no_grad else torch.enable_grad():
                for inputs, targets in val_loader:
                    logits = model(inputs)
                    total += loss_fn(logits, targets).item() * len(targets)
                    right += (logits.argmax(1) == targets).sum().item()
                    count += len(targets)
            history["val_loss"].append(total / count)
            history["val_acc"].append(right / count)

        if train_mode:
            model.train()
        epoch = 0
        while epoch < epochs:
            if evaluate_first:
                validate()
            if train_mode and (epoch > 0 or evaluate_first):
                model.train()
            total = count = 0
            for inputs, targets in train_loader:
                optimizer.zero_grad()
                loss = loss_fn(model(inputs), targets)
                loss.backward()
                optimizer.step()
                total += loss.item() * len(targets)
                count += len(targets)
            history["train_loss"].append(total / count)
            history["train_acc"].append(0.0)
            if not evaluate_first and (validate_each_epoch or epoch == epochs - 1):
                validate()
            epoch += 1
        if not validate_each_epoch:
            history["val_loss"] *= epochs
            history["val_acc"] *= epochs
        return history

    return fit


def test_fit_written_inline_with_an_extra_key_is_accepted():
    assert_accepted("fit", ns(fit=_fit()))


def _fit_measuring_the_training_set(namespace, train_loss_from="epoch"):
    def fit(model, train_loader, val_loader, loss_fn, optimizer, epochs):
        history = {key: [] for key in ("train_loss", "val_loss", "val_acc", "train_acc")}
        for _ in range(epochs):
            epoch_loss = namespace["train_one_epoch"](model, train_loader, loss_fn, optimizer)
            measured_loss, train_acc = namespace["evaluate"](model, train_loader, loss_fn)
            val_loss, val_acc = namespace["evaluate"](model, val_loader, loss_fn)
            train_loss = {"epoch": epoch_loss, "measured": measured_loss, "val": val_loss}[train_loss_from]
            for key, value in zip(history, (train_loss, val_loss, val_acc, train_acc)):
                history[key].append(value)
        return history

    return fit


def test_fit_that_also_measures_the_training_set_is_accepted():
    namespace = ns()
    namespace["fit"] = _fit_measuring_the_training_set(namespace)
    assert_accepted("fit", namespace)
    assert_accepted("fit", namespace, instructor=True, epochs=6, seed=3)


@pytest.mark.parametrize("source, code", [("val", "train_loss_is_val_loss"), ("measured", "wrong_train_loss")])
def test_a_train_loss_that_is_not_what_the_epochs_batches_gave_is_caught(source, code):
    namespace = ns()
    namespace["fit"] = _fit_measuring_the_training_set(namespace, train_loss_from=source)
    assert_caught("fit", namespace, code)


def _fit_with(namespace):
    def fit(model, train_loader, val_loader, loss_fn, optimizer, epochs):
        history = {"train_loss": [], "val_loss": [], "val_acc": []}
        for _ in range(epochs):
            history["train_loss"].append(namespace["train_one_epoch"](model, train_loader, loss_fn, optimizer))
            val_loss, val_acc = namespace["evaluate"](model, val_loader, loss_fn)
            history["val_loss"].append(val_loss)
            history["val_acc"].append(val_acc)
        return history

    return fit


def test_a_broken_evaluate_is_named_as_the_cause_of_fits_wrong_validation_loss():
    namespace = ns()
    namespace["evaluate"] = _evaluate(weighted=False)
    namespace["fit"] = _fit_with(namespace)
    result = assert_caught("fit", namespace, "evaluate_broken")
    assert "fit's validation loss or accuracy is wrong because your `evaluate`" in result.message
    assert "plain mean of the batches" in result.message


def test_an_evaluate_without_eval_mode_is_named_as_the_cause_when_fit_validates_in_train_mode():
    namespace = ns()
    namespace["evaluate"] = _evaluate(eval_mode=False)
    namespace["fit"] = _fit_with(namespace)
    result = assert_caught("fit", namespace, "evaluate_broken")
    assert "because your `evaluate`" in result.message


def test_a_broken_train_one_epoch_is_named_as_the_cause_of_fits_wrong_training_loss():
    namespace = ns()
    namespace["train_one_epoch"] = _epoch(weighted=False)
    namespace["fit"] = _fit_with(namespace)
    result = assert_caught("fit", namespace, "train_one_epoch_broken")
    assert "fit's training loss is wrong because your `train_one_epoch`" in result.message


def fit_storing_tensors(model, train_loader, val_loader, loss_fn, optimizer, epochs):
    history = _fit()(model, train_loader, val_loader, loss_fn, optimizer, epochs)
    return {key: [torch.tensor(v) for v in values] for key, values in history.items()}


@pytest.mark.parametrize("wrong, code", [
    (_fit(validate_each_epoch=False), "no_validation"),
    (_fit(train_mode=False), "missing_train"),
    (_fit(eval_mode=False), "missing_eval"),
    (_fit(no_grad=False), "missing_no_grad"),
    (_fit(evaluate_first=True), "wrong_history"),
    (fit_storing_tensors, "wrong_type"),
    (lambda model, train_loader, val_loader, loss_fn, optimizer, epochs: None, "wrong_return"),
])
def test_fit_mistakes_are_diagnosed(wrong, code):
    assert_caught("fit", ns(fit=wrong), code)


# --- plot_history ---


def plot_with_twin_axes_and_percent(history):
    fig, ax = plt.subplots()
    ax.plot(history["train_loss"], label="train")
    ax.plot(history["val_loss"], label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    twin = ax.twinx()
    twin.plot([100 * a for a in history["val_acc"]], color="green")
    twin.set_ylabel("validation accuracy (%)")
    return fig


def plot_with_figure_and_add_subplot(history):
    fig = plt.figure()
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for key in ("train_loss", "val_loss"):
        left.plot(range(1, len(history[key]) + 1), history[key], "o-", label=key)
    right.plot(range(1, len(history["val_acc"]) + 1), history["val_acc"], "s--")
    left.set(xlabel="epoch", ylabel="loss")
    right.set(xlabel="epoch", ylabel="accuracy")
    return fig


def _plot(show_only=False, return_axis=False, one_axis=False, labels=True, apart=False, forget_val=False):
    def plot_history(history):
        if one_axis:
            fig, ax = plt.subplots()
            axes = (ax, ax, ax)
        elif apart:
            fig, axes = plt.subplots(1, 3)
        else:
            fig, (left, right) = plt.subplots(1, 2)
            axes = (left, left, right)
        axes[0].plot(history["train_loss"])
        axes[1].plot(history["train_loss" if forget_val else "val_loss"])
        axes[2].plot(history["val_acc"])
        if labels:
            for ax in set(axes):
                ax.set_xlabel("epoch")
                ax.set_ylabel("value")
        if show_only:
            plt.show()
            return None
        return axes[0] if return_axis else fig

    return plot_history


@pytest.mark.parametrize("variant", [plot_with_twin_axes_and_percent, plot_with_figure_and_add_subplot])
def test_plot_history_written_differently_is_accepted(variant):
    assert_accepted("plot_history", ns(plot_history=variant))


@pytest.mark.parametrize("wrong, code", [
    (_plot(show_only=True), "no_figure"),
    (_plot(return_axis=True), "not_a_figure"),
    (_plot(one_axis=True), "too_few_axes"),
    (_plot(labels=False), "missing_labels"),
    (_plot(apart=True), "losses_apart"),
    (_plot(forget_val=True), "missing_curve"),
])
def test_plot_history_mistakes_are_diagnosed(wrong, code):
    assert_caught("plot_history", ns(plot_history=wrong), code)


def test_the_checks_leave_no_figure_open():
    before = set(plt.get_fignums())
    run_checks("plot_history", ns())
    run_checks("plot_history", ns(plot_history=_plot(labels=False)))
    assert set(plt.get_fignums()) == before


# --- clauses added with the clause lists: one planted mistake each ---


def epoch_two_steps_per_batch(model, loader, loss_fn, optimizer):
    model.train()
    total = count = 0
    for inputs, targets in loader:
        for _ in range(2):
            optimizer.zero_grad()
            loss = loss_fn(model(inputs), targets)
            loss.backward()
            optimizer.step()
        total += loss.item() * len(targets)
        count += len(targets)
    return total / count


def epoch_with_its_own_loss(model, loader, loss_fn, optimizer):
    return _epoch()(model, loader, torch.nn.CrossEntropyLoss(), optimizer)


def epoch_squeezing_the_batch(model, loader, loss_fn, optimizer):
    """Right for every batch of two samples or more; a batch of one loses its batch dimension."""
    model.train()
    total = count = 0
    for inputs, targets in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(inputs.squeeze()), targets.squeeze())
        loss.backward()
        optimizer.step()
        total += loss.item() * len(targets)
        count += len(targets)
    return total / count


@pytest.mark.parametrize("wrong, code", [
    (epoch_two_steps_per_batch, "wrong_step_count"),
    (epoch_with_its_own_loss, "loss_fn_ignored"),
])
def test_train_one_epoch_clause_mistakes_are_diagnosed(wrong, code):
    assert_caught("train_one_epoch", ns(train_one_epoch=wrong), code)


def test_a_batch_of_one_sample_is_what_the_hidden_train_one_epoch_test_adds():
    namespace = ns(train_one_epoch=epoch_squeezing_the_batch)
    assert_accepted("train_one_epoch", namespace)
    assert_caught("train_one_epoch", namespace, "raised", instructor=True, num_samples=41, batch_size=20, seed=4)


def test_train_one_epoch_written_differently_passes_the_hidden_tests_too():
    assert_accepted("train_one_epoch", ns(train_one_epoch=epoch_model_zero_grad_set_to_none), instructor=True,
                    num_samples=41, batch_size=20, seed=4)


def test_an_evaluate_that_ignores_loss_fn_is_caught():
    def evaluate(model, loader, loss_fn):
        return _evaluate()(model, loader, torch.nn.CrossEntropyLoss())

    assert_caught("evaluate", ns(evaluate=evaluate), "loss_fn_ignored")


def test_a_validation_loader_in_one_batch_is_caught():
    def make_loaders(X, y, batch_size=32, val_fraction=0.2, seed=0):
        train, val = ns()["make_loaders"](X, y, batch_size, val_fraction, seed)
        return train, DataLoader(val.dataset, batch_size=len(val.dataset))

    assert_caught("make_loaders", ns(make_loaders=make_loaders), "wrong_batch_size")


# --- training_settings (challenge) ---


@pytest.mark.parametrize("right", [{"batch_size": 32, "lr": 0.1, "momentum": 0.9},
                                   {"batch_size": 8, "lr": 0.05, "momentum": 0.8}])
def test_other_settings_reaching_the_target_pass_the_hidden_tests_too(right):
    assert_accepted("training_settings", ns(training_settings=lambda: dict(right)), instructor=True, seed=1)


@pytest.mark.parametrize("wrong, code", [
    ({"batch_size": 32, "lr": 0.05, "momentum": 0.9}, "below_target"),      # the notebook's 30-epoch run
    ({"batch_size": 16, "lr": 0.1, "momentum": 0.0}, "below_target"),
    ({"batch_size": 4, "lr": 0.1, "momentum": 0.9}, "wrong_settings"),
    ({"batch_size": 16.0, "lr": 0.1, "momentum": 0.9}, "wrong_settings"),
    ({"batch_size": 16, "lr": 0.1, "momentum": 1.0}, "wrong_settings"),
    ({"batch_size": 16, "lr": 0.1}, "missing_keys"),
    ((16, 0.1, 0.9), "wrong_return"),
])
def test_training_settings_mistakes_are_diagnosed(wrong, code):
    assert_caught("training_settings", ns(training_settings=lambda: wrong), code)


def test_a_broken_fit_is_named_as_the_cause_when_the_challenge_misses_its_target():
    def fit(model, train_loader, val_loader, loss_fn, optimizer, epochs):   # forgets to train
        loss, acc = ns()["evaluate"](model, val_loader, loss_fn)
        return {"train_loss": [loss] * epochs, "val_loss": [loss] * epochs, "val_acc": [acc] * epochs}

    result = assert_caught("training_settings", ns(fit=fit), "fit_broken")
    assert "because your `fit`" in result.message
