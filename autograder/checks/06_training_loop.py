"""Checks for 06_training_loop: loaders, the training loop, evaluation and learning curves.

The models and data here are tiny on purpose: every check trains for well
under a second, so a graded cell stays far inside nbgrader's time limit even
when two notebooks are graded at once on a small machine.
"""

from __future__ import annotations

import contextlib
import copy
import math

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Subset, TensorDataset

from autograder.checks._support import as_float, as_pair, as_tensor, describe, is_close, number
from autograder.data import load_digits
from autograder.registry import Checks
from autograder.results import expect, fail

checks = Checks("06_training_loop")


@contextlib.contextmanager
def _one_thread():
    """Tiny models train fastest on one thread, and graded notebooks may share the CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# --- make_loaders ---------------------------------------------------------------


def _indexed_data(num_samples: int, num_features: int = 4):
    """Samples that say who they are: column 0 of X holds the sample's index, and y is index % 10."""
    index = torch.arange(num_samples)
    X = torch.rand(num_samples, num_features, generator=torch.Generator().manual_seed(num_samples))
    X[:, 0] = index.float()
    return X, index % 10


def _loaders(make_loaders, num_samples, batch_size, val_fraction, seed):
    X, y = _indexed_data(num_samples)
    train, val = as_pair(make_loaders(X, y, batch_size=batch_size, val_fraction=val_fraction, seed=seed),
                         "make_loaders")
    for name, loader in (("train_loader", train), ("val_loader", val)):
        if not isinstance(loader, DataLoader):
            fail(f"make_loaders should return two DataLoaders; its {name} is {describe(loader)}. "
                 "Wrap each split in DataLoader(subset, batch_size=batch_size, ...).", "not_a_dataloader")
    return train, val


def _order(loader, what: str):
    """The indices of the samples one pass over ``loader`` yields, in order, and the batch sizes."""
    indices, sizes = [], []
    for batch in loader:
        if type(batch) not in (list, tuple) or len(batch) != 2:
            fail(f"each batch of the {what} should be a pair (inputs, targets), as a TensorDataset gives; "
                 f"found {describe(batch)}.", "wrong_batch")
        inputs = as_tensor(batch[0], f"the inputs of a batch of the {what}")
        targets = as_tensor(batch[1], f"the targets of a batch of the {what}")
        expect(inputs.dim() == 2 and targets.dim() == 1 and len(inputs) == len(targets),
               f"a batch of the {what} holds inputs {describe(inputs)} and targets {describe(targets)}; "
               "expected inputs (B, features) and targets (B,) for the same B samples.", "wrong_batch")
        found = inputs[:, 0].round().long()
        expect(bool((targets == found % 10).all()),
               f"in the {what}, inputs and targets no longer belong together: sample {int(found[0])} came with "
               "another sample's label. Shuffle the samples, not X and y separately: build one "
               "TensorDataset(X, y) and split that.", "rows_mismatched")
        indices.extend(found.tolist())
        sizes.append(len(found))
    return indices, sizes


@checks.of("make_loaders")
def returns_two_dataloaders_of_input_target_pairs(make_loaders, num_samples=1797, batch_size=32, val_fraction=0.2,
                                                  seed=0):
    train, val = _loaders(make_loaders, num_samples, batch_size, val_fraction, seed)
    _order(train, "training loader")
    _order(val, "validation loader")


@checks.of("make_loaders")
def the_two_splits_partition_the_samples(make_loaders, num_samples=1797, batch_size=32, val_fraction=0.2, seed=0):
    # 0.3 * 103 = 30.9: rounding and cutting off the decimals give different sizes.
    for n, fraction in ((num_samples, val_fraction), (103, 0.3)):
        train, val = _loaders(make_loaders, n, batch_size, fraction, seed)
        in_train, _ = _order(train, "training loader")
        in_val, _ = _order(val, "validation loader")
        both = set(in_train) & set(in_val)
        expect(not both, f"with {n} samples, {len(both)} of them are in the training set and in the validation "
               "set: the model is then graded on samples it trained on. Split one permutation of the indices "
               "into two disjoint parts.", "overlap")
        expect(len(in_train) == len(set(in_train)) and len(in_val) == len(set(in_val)),
               f"with {n} samples, one pass over a loader yields some samples more than once. Each index of the "
               "permutation should go to exactly one split, once.", "duplicate_samples")
        lost = n - len(in_train) - len(in_val)
        if lost > 0:
            hint = (" The training loader drops its incomplete last batch: leave drop_last at False."
                    if getattr(train, "drop_last", False) else "")
            fail(f"with {n} samples, one pass over both loaders yields only {n - lost}: {lost} samples are in "
                 f"neither split.{hint}", "samples_lost")
        expected = round(fraction * n)
        if len(in_val) != expected:
            hint = ""
            if len(in_val) == math.floor(fraction * n):
                hint = (" int() and random_split with fractions round down; compute the size with "
                        "round(val_fraction * n) and give random_split the two sizes as integers.")
            elif len(in_val) == n - expected:
                hint = " The sizes are swapped: val_fraction is the share of the validation set."
            fail(f"with {n} samples and val_fraction={fraction} the validation set holds {len(in_val)} samples; "
                 f"expected round({fraction} * {n}) = {expected}.{hint}", "wrong_val_size")


@checks.of("make_loaders")
def the_split_is_random_and_set_by_the_seed(make_loaders, num_samples=1797, batch_size=32, val_fraction=0.2, seed=0):
    torch.manual_seed(1)
    _, val = _loaders(make_loaders, num_samples, batch_size, val_fraction, seed)
    chosen = sorted(_order(val, "validation loader")[0])
    steps = {b - a for a, b in zip(chosen, chosen[1:])}
    expect(len(steps) > 1,
           "the validation set is a regular slice of the samples (a block, or every k-th one), not a random "
           "choice. Data files are often sorted, so draw the split from a random permutation: "
           "torch.randperm(n, generator=...).", "split_not_random")
    torch.manual_seed(2)
    torch.rand(7)
    _, val = _loaders(make_loaders, num_samples, batch_size, val_fraction, seed)
    again = sorted(_order(val, "validation loader")[0])
    expect(again == chosen,
           f"two calls with seed={seed} chose different validation samples: the split draws from the global "
           "random generator, so it depends on whatever ran before. Draw the permutation with "
           "torch.Generator().manual_seed(seed) (or pass such a generator to random_split).", "split_not_seeded")
    _, val = _loaders(make_loaders, num_samples, batch_size, val_fraction, seed + 1)
    other = sorted(_order(val, "validation loader")[0])
    expect(other != chosen, f"seed={seed} and seed={seed + 1} chose the same validation samples: the seed "
           "argument is ignored.", "seed_ignored")


@checks.of("make_loaders")
def training_batches_are_shuffled_by_a_seeded_generator(make_loaders, num_samples=1797, batch_size=32,
                                                       val_fraction=0.2, seed=0):
    torch.manual_seed(1)
    train, _ = _loaders(make_loaders, num_samples, batch_size, val_fraction, seed)
    first, sizes = _order(train, "training loader")
    expect(all(size == batch_size for size in sizes[:-1]) and 0 < sizes[-1] <= batch_size,
           f"the training batches hold {sorted(set(sizes))} samples; expected batch_size={batch_size} "
           "(the last one may hold fewer).", "wrong_batch_size")
    second, _ = _order(train, "training loader")
    expect(first != second,
           "two epochs over the training loader visit the samples in the same order: it does not shuffle. "
           "Pass shuffle=True (with a seeded generator) to the training DataLoader.", "train_not_shuffled")
    torch.manual_seed(2)
    train, _ = _loaders(make_loaders, num_samples, batch_size, val_fraction, seed)
    torch.rand(11)  # other random work between building the loader and using it
    again, _ = _order(train, "training loader")
    expect(again == first,
           f"two loaders made with seed={seed} shuffle their first epoch differently: the shuffling draws from "
           "the global random generator at the moment the loader is used. Give the training DataLoader its "
           "own generator: generator=torch.Generator().manual_seed(seed).", "shuffle_not_seeded")


@checks.of("make_loaders")
def validation_batches_are_not_shuffled(make_loaders, num_samples=1797, batch_size=32, val_fraction=0.2, seed=0):
    _, val = _loaders(make_loaders, num_samples, batch_size, val_fraction, seed)
    first, _ = _order(val, "validation loader")
    second, _ = _order(val, "validation loader")
    expect(first == second,
           "two passes over the validation loader visit the samples in different orders: it shuffles. "
           "Shuffling buys nothing when measuring, and a fixed order keeps runs comparable: leave "
           "shuffle=False for validation.", "val_shuffled")


# --- a model that watches how it is used ----------------------------------------


class _Probe(nn.Module):
    """A small classifier that notes, at every forward pass, the batch size, its mode and whether
    autograd is recording."""

    def __init__(self, num_features: int, num_classes: int, seed: int):
        super().__init__()
        torch.manual_seed(seed)
        self.net = nn.Sequential(nn.Linear(num_features, 8), nn.Tanh(), nn.Linear(8, num_classes))
        with torch.no_grad():
            self.net[2].weight.mul_(4.0)  # confident logits, so right and wrong answers cost clearly different losses
        self.calls: list[tuple[int, bool, bool]] = []

    def forward(self, x):
        self.calls.append((len(x), self.training, torch.is_grad_enabled()))
        return self.net(x)


def _problem(num_samples: int, batch_size: int, seed: int, num_features: int = 6, num_classes: int = 3):
    """A probe model and an unshuffled loader whose last, smaller batch the model gets all wrong
    (and every other sample right), so that means over batches and over samples differ."""
    model = _Probe(num_features, num_classes, seed)
    X = torch.randn(num_samples, num_features, generator=torch.Generator().manual_seed(seed + 100))
    with torch.no_grad():
        predicted = model.net(X).argmax(dim=1)
    last = num_samples - (num_samples % batch_size or batch_size)
    y = predicted.clone()
    y[last:] = (predicted[last:] + 1) % num_classes
    return model, DataLoader(TensorDataset(X, y), batch_size=batch_size)


def _batch_losses(model: nn.Module, loader) -> list[tuple[float, int, int]]:
    """(mean loss, right answers, size) of every batch, for the model as it is."""
    out = []
    with torch.no_grad():
        for inputs, targets in loader:
            logits = model.net(inputs)
            out.append((F.cross_entropy(logits, targets).item(), int((logits.argmax(1) == targets).sum()),
                        len(targets)))
    return out


def _same_parameters(a: nn.Module, b: nn.Module, atol: float = 1e-6) -> bool:
    return all(is_close(p, q, atol=atol, rtol=1e-5) for p, q in zip(a.parameters(), b.parameters()))


def _largest_difference(a: nn.Module, b: nn.Module) -> float:
    return max(float((p.detach() - q.detach()).abs().max()) for p, q in zip(a.parameters(), b.parameters()))


def _mean_diagnosis(found: float, batches: list[tuple[float, int, int]], what: str, index: int = 0):
    """Fail with the likeliest mistake when ``found`` is not the mean per sample."""
    values = [batch[index] for batch in batches]
    sizes = [batch[2] for batch in batches]
    if index == 0:
        weighted = sum(v * s for v, s in zip(values, sizes)) / sum(sizes)
        unweighted = sum(values) / len(values)
    else:
        weighted = sum(values) / sum(sizes)
        unweighted = sum(v / s for v, s in zip(values, sizes)) / len(values)
    if math.isclose(found, weighted, rel_tol=1e-5, abs_tol=1e-6):
        return
    sizes_text = ", ".join(str(s) for s in sizes)
    if math.isclose(found, unweighted, rel_tol=1e-5, abs_tol=1e-6):
        remedy = ("count the right answers of every batch and divide once, by the number of samples" if index == 1
                  else "weight each batch by its size (add up loss.item() * len(batch), then divide by the number "
                       "of samples)")
        fail(f"the {what} is {number(found)}, the plain mean of the batches' values; over the samples it is "
             f"{number(weighted)}. The batches hold {sizes_text} samples, so the samples of the small last one "
             f"count too much: {remedy}.", "unweighted_mean")
    if index == 1 and math.isclose(found, 100 * weighted, rel_tol=1e-5):
        fail(f"the accuracy is {number(found)}, a percentage; return the fraction {number(weighted)} "
             "(between 0 and 1).", "percent_not_fraction")
    if index == 1 and math.isclose(found, sum(values)):
        fail(f"the accuracy is {number(found)}, the number of right answers; divide by the number of samples "
             f"({sum(sizes)}).", "count_not_fraction")
    if index == 0 and math.isclose(found, sum(values), rel_tol=1e-5):
        fail(f"the {what} is {number(found)}, the sum of the batches' mean losses; expected the mean per sample, "
             f"{number(weighted)}.", "sum_not_mean")
    if index == 0 and math.isclose(found, values[-1], rel_tol=1e-5):
        fail(f"the {what} is {number(found)}, the loss of the last batch only; expected the mean over every "
             f"sample, {number(weighted)}.", "last_batch_only")
    fail(f"the {what} is {number(found)}; expected {number(weighted)}, the mean over every sample "
         f"(batches of {sizes_text}).", "wrong_value")


# --- train_one_epoch ------------------------------------------------------------


def _train(train_one_epoch, model, loader, lr: float) -> float:
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    with _one_thread():
        result = train_one_epoch(model, loader, nn.CrossEntropyLoss(), optimizer)
    return as_float(result, "train_one_epoch's result")


def _stale_gradients(model: nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed + 7)
    for p in model.parameters():
        p.grad = 5 * torch.randn(p.shape, generator=gen)


def _reference_epoch(model: nn.Module, loader, lr: float, clearing: str = "before_each_step") -> None:
    """One epoch of plain SGD, clearing the gradients before each step (right), after each step,
    once before the loop, or never."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    if clearing == "once":
        optimizer.zero_grad()
    for inputs, targets in loader:
        if clearing == "before_each_step":
            optimizer.zero_grad()
        F.cross_entropy(model.net(inputs), targets).backward()
        optimizer.step()
        if clearing == "after_each_step":
            optimizer.zero_grad()


@checks.of("train_one_epoch")
def returns_the_mean_loss_as_a_float(train_one_epoch, num_samples=40, batch_size=16, seed=0):
    model, loader = _problem(num_samples, batch_size, seed)
    _train(train_one_epoch, model, loader, lr=0.1)


@checks.of("train_one_epoch")
def trains_in_train_mode(train_one_epoch, num_samples=40, batch_size=16, seed=0):
    model, loader = _problem(num_samples, batch_size, seed)
    model.eval()  # as evaluate leaves it
    _train(train_one_epoch, model, loader, lr=0.1)
    expect(len(model.calls) >= len(loader),
           f"the model ran {len(model.calls)} forward passes for {len(loader)} batches: each batch needs one.",
           "skips_batches")
    expect(all(training for _, training, _ in model.calls),
           "the model arrived in eval mode (as evaluate leaves it) and trained in eval mode: dropout and batch "
           "norm would then behave as in testing. Call model.train() at the start of train_one_epoch.",
           "missing_train")


@checks.of("train_one_epoch")
def takes_one_step_per_batch_with_fresh_gradients(train_one_epoch, num_samples=40, batch_size=16, seed=0):
    lr = 0.2
    start, loader = _problem(num_samples, batch_size, seed)
    reference = copy.deepcopy(start)
    _reference_epoch(reference, loader, lr)
    learner = copy.deepcopy(start)
    _stale_gradients(learner, seed)
    _train(train_one_epoch, learner, loader, lr)
    if _same_parameters(learner, reference):
        return
    for clearing in ("after_each_step", "once", "never"):
        variant = copy.deepcopy(start)
        _stale_gradients(variant, seed)
        _reference_epoch(variant, loader, lr, clearing)
        if _same_parameters(learner, variant):
            when = {"after_each_step": "clears the gradients only after each step",
                    "once": "clears the gradients only once, before the loop",
                    "never": "never clears the gradients"}[clearing]
            fail(f"your epoch {when}, so gradients from earlier (left on the model before "
                 "the call, or from the previous batch) are added into a step. Call optimizer.zero_grad() "
                 "before every backward pass.", "grads_accumulate")
    clean = copy.deepcopy(start)
    _train(train_one_epoch, clean, loader, lr)
    if _same_parameters(clean, reference):
        fail("on a model without old gradients your epoch is right, but gradients left on the model before the "
             "call leak into a step. Clear them before every backward pass, not only after the step.",
             "grads_accumulate")
    if _same_parameters(learner, start, atol=0):
        fail("after train_one_epoch the parameters have not changed: call optimizer.step() after each "
             "backward pass.", "no_step")
    fail(f"after one epoch the parameters are up to {_largest_difference(learner, reference):.3g} away from one "
         "SGD step per batch, in the loader's order. For every batch: zero_grad, forward, loss, backward, step.",
         "wrong_update")


@checks.of("train_one_epoch")
def returns_the_mean_loss_per_sample(train_one_epoch, num_samples=40, batch_size=16, seed=0):
    model, loader = _problem(num_samples, batch_size, seed)
    batches = _batch_losses(model, loader)
    # With lr=0 the model stays as it is, so the loss of each batch is known in advance.
    found = _train(train_one_epoch, model, loader, lr=0.0)
    _mean_diagnosis(found, batches, "returned loss")


# --- evaluate -------------------------------------------------------------------


def _evaluate(evaluate, model, loader):
    with _one_thread():
        result = evaluate(model, loader, nn.CrossEntropyLoss())
    loss, accuracy = as_pair(result, "evaluate")
    return as_float(loss, "the loss evaluate returns"), as_float(accuracy, "the accuracy evaluate returns")


@checks.of("evaluate")
def returns_the_loss_and_the_accuracy_as_floats(evaluate, num_samples=40, batch_size=16, seed=0):
    model, loader = _problem(num_samples, batch_size, seed)
    _evaluate(evaluate, model, loader)


@checks.of("evaluate")
def measures_in_eval_mode_without_a_graph(evaluate, num_samples=40, batch_size=16, seed=0):
    model, loader = _problem(num_samples, batch_size, seed)
    model.train()  # as training leaves it
    _evaluate(evaluate, model, loader)
    expect(len(model.calls) >= len(loader),
           f"the model ran {len(model.calls)} forward passes for {len(loader)} batches: evaluate every batch.",
           "skips_batches")
    expect(not any(training for _, training, _ in model.calls),
           "the model arrived in train mode and was evaluated in train mode: dropout would still drop units and "
           "batch norm would use (and update) the statistics of each batch. Call model.eval() first.",
           "missing_eval")
    expect(not any(recording for _, _, recording in model.calls),
           "the forward passes ran with autograd recording, so every output (and loss) requires grad and drags "
           "a graph along that is never used. Run the loop inside `with torch.no_grad():`.", "missing_no_grad")


@checks.of("evaluate")
def leaves_the_parameters_unchanged(evaluate, num_samples=40, batch_size=16, seed=0):
    model, loader = _problem(num_samples, batch_size, seed)
    before = copy.deepcopy(model)
    _evaluate(evaluate, model, loader)
    expect(_same_parameters(model, before, atol=0),
           f"evaluate changed the model's parameters (by up to {_largest_difference(model, before):.3g}): "
           "measuring must not train.", "changes_parameters")
    expect(all(p.grad is None for p in model.parameters()),
           "after evaluate the parameters hold gradients: evaluation needs no backward pass.", "changes_parameters")


@checks.of("evaluate")
def the_loss_is_the_mean_per_sample(evaluate, num_samples=40, batch_size=16, seed=0):
    model, loader = _problem(num_samples, batch_size, seed)
    loss, _ = _evaluate(evaluate, model, loader)
    _mean_diagnosis(loss, _batch_losses(model, loader), "loss evaluate returns")


@checks.of("evaluate")
def the_accuracy_is_the_fraction_of_right_arg_max_predictions(evaluate, num_samples=40, batch_size=16, seed=0):
    model, loader = _problem(num_samples, batch_size, seed)
    _, accuracy = _evaluate(evaluate, model, loader)
    _mean_diagnosis(accuracy, _batch_losses(model, loader), "accuracy evaluate returns", index=1)


# --- fit ------------------------------------------------------------------------

_KEYS = ("train_loss", "val_loss", "val_acc")


def _small_fit_problem(seed: int):
    """A probe model, a training loader of 3 batches of 8 and a validation loader of 2 batches of 5,
    so the batch size tells which loader a forward pass came from."""
    model = _Probe(6, 3, seed)
    gen = torch.Generator().manual_seed(seed + 200)
    X = torch.randn(34, 6, generator=gen)
    y = (X[:, 0] > 0).long() + (X[:, 1] > 0.5).long()
    dataset = TensorDataset(X, y)
    train = DataLoader(Subset(dataset, range(24)), batch_size=8, shuffle=True,
                       generator=torch.Generator().manual_seed(seed))
    val = DataLoader(Subset(dataset, range(24, 34)), batch_size=5)
    return model, train, val


def _fit(fit, model, train, val, optimizer, epochs):
    with _one_thread():
        history = fit(model, train, val, nn.CrossEntropyLoss(), optimizer, epochs)
    if not isinstance(history, dict):
        fail(f"fit should return a dict of lists (the history); it returned {describe(history)}.", "wrong_return")
    missing = [key for key in _KEYS if key not in history]
    expect(not missing, f"the history has no {', '.join(repr(k) for k in missing)}; it needs the keys "
           "'train_loss', 'val_loss' and 'val_acc'.", "missing_keys")
    for key in _KEYS:
        values = history[key]
        if type(values) is not list:
            fail(f"history[{key!r}] should be a list; it is {describe(values)}.", "wrong_type")
        expect(len(values) == epochs, f"history[{key!r}] holds {len(values)} values after {epochs} epochs; "
               "expected one per epoch.", "wrong_length")
        for value in values:
            as_float(value, f"each value in history[{key!r}]")
    return history


@checks.of("fit")
def returns_a_history_of_one_float_per_epoch(fit, epochs=5, seed=0):
    model, train, val = _small_fit_problem(seed)
    _fit(fit, model, train, val, torch.optim.SGD(model.parameters(), lr=0.1), epochs)


@checks.of("fit")
def trains_in_train_mode_and_validates_in_eval_mode_without_a_graph(fit, epochs=5, seed=0):
    model, train, val = _small_fit_problem(seed)
    _fit(fit, model, train, val, torch.optim.SGD(model.parameters(), lr=0.1), epochs)
    training = [(mode, recording) for size, mode, recording in model.calls if size == 8]
    validation = [(mode, recording) for size, mode, recording in model.calls if size == 5]
    expect(all(mode for mode, recording in training if recording),
           "some training steps ran in eval mode: after validating, the model stays in eval mode until "
           "model.train() is called. Switch to train mode at the start of every epoch.", "missing_train")
    expect(len(validation) >= epochs * len(val),
           f"the validation loader was used for {len(validation)} batches in {epochs} epochs; expected its "
           f"{len(val)} batches after every epoch ({epochs * len(val)} in all): validate once per epoch.",
           "no_validation")
    expect(not any(mode for mode, _ in validation),
           "validation ran in train mode: call model.eval() before measuring (evaluate does).", "missing_eval")
    expect(not any(recording for _, recording in validation),
           "validation ran with autograd recording: wrap it in torch.no_grad() (evaluate does).",
           "missing_no_grad")


@checks.of("fit")
def records_the_validation_numbers_after_each_epoch(fit, epochs=5, seed=0):
    model, train, val = _small_fit_problem(seed)
    history = _fit(fit, model, train, val, torch.optim.SGD(model.parameters(), lr=0.1), epochs)
    batches = _batch_losses(model, val)
    samples = sum(size for *_, size in batches)
    loss = sum(value * size for value, _, size in batches) / samples
    accuracy = sum(right for _, right, _ in batches) / samples
    expect(math.isclose(history["val_loss"][-1], loss, rel_tol=1e-4, abs_tol=1e-6)
           and math.isclose(history["val_acc"][-1], accuracy, abs_tol=1e-6),
           f"the last recorded validation loss and accuracy are {number(history['val_loss'][-1])} and "
           f"{number(history['val_acc'][-1])}, but the trained model scores {number(loss)} and {number(accuracy)} "
           "on the validation loader. Evaluate after training each epoch, on the validation loader.",
           "wrong_history")


@checks.of("fit")
def learns_the_digits(fit, epochs=5, seed=0):
    X, y = load_digits()
    torch.manual_seed(seed)
    order = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed)).tolist()
    dataset = TensorDataset(X, y)
    n_val = round(0.2 * len(X))
    train = DataLoader(Subset(dataset, order[n_val:]), batch_size=32, shuffle=True,
                       generator=torch.Generator().manual_seed(seed))
    val = DataLoader(Subset(dataset, order[:n_val]), batch_size=64)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    history = _fit(fit, model, train, val, torch.optim.Adam(model.parameters(), lr=0.01), epochs)
    first, last = history["val_loss"][0], history["val_loss"][-1]
    expect(last < first, f"over {epochs} epochs on the digits the validation loss went from {number(first)} to "
           f"{number(last)}; it should fall.", "loss_not_decreasing")
    accuracy = history["val_acc"][-1]
    expect(accuracy >= 0.9, f"after {epochs} epochs on the digits the validation accuracy is {accuracy:.1%}; "
           "expected at least 90%.", "low_accuracy")


# --- plot_history ---------------------------------------------------------------


def _history(epochs: int, seed: int) -> dict[str, list[float]]:
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(epochs, dtype=torch.float64)

    def noise():
        return 0.03 * torch.rand(epochs, generator=gen, dtype=torch.float64)

    return {
        "train_loss": (2.0 * torch.exp(-t / 3) + 0.05 + noise()).tolist(),
        "val_loss": (2.1 * torch.exp(-t / 4) + 0.25 + noise()).tolist(),
        "val_acc": (0.95 - 0.6 * torch.exp(-t / 2) + noise()).clamp(0, 1).tolist(),
    }


@contextlib.contextmanager
def _plot(plot_history, history):
    """The learner's figure; every figure the call opened is closed afterwards, so none is shown."""
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    before = set(plt.get_fignums())
    figure = None
    try:
        figure = plot_history(copy.deepcopy(history))
        if figure is None:
            fail("plot_history returned None: end it with `return fig` (plt.show() alone only draws it).",
                 "no_figure")
        if isinstance(figure, Axes):
            fail("plot_history returned an Axes, one panel; return the whole Figure (`ax.figure`, or the fig "
                 "that plt.subplots returns).", "not_a_figure")
        if not isinstance(figure, Figure):
            fail(f"plot_history should return a matplotlib Figure; it returned {describe(figure)}.",
                 "not_a_figure")
        yield figure
    finally:
        for number_ in set(plt.get_fignums()) - before:
            plt.close(number_)
        if figure is not None and isinstance(figure, Figure):
            plt.close(figure)


def _curves(figure):
    """(axis, y values) of every line drawn, as float tensors."""
    found = []
    for ax in figure.axes:
        for line in ax.get_lines():
            try:
                values = torch.tensor([float(v) for v in line.get_ydata()], dtype=torch.float64)
            except (TypeError, ValueError):
                continue
            found.append((ax, values))
    return found


def _matches(values: torch.Tensor, expected: list[float], scale: float = 1.0) -> bool:
    return is_close(values, torch.tensor(expected, dtype=torch.float64) * scale, atol=1e-6, rtol=1e-5)


@checks.of("plot_history")
def returns_a_figure_with_at_least_two_axes(plot_history, epochs=10, seed=0):
    with _plot(plot_history, _history(epochs, seed)) as figure:
        expect(len(figure.axes) >= 2,
               f"the figure has {len(figure.axes)} ax{'i' if len(figure.axes) == 1 else 'e'}s; expected two: the losses on one, the accuracy on the other "
               "(their scales differ). plt.subplots(1, 2) makes two.", "too_few_axes")


@checks.of("plot_history")
def labels_every_axis(plot_history, epochs=10, seed=0):
    with _plot(plot_history, _history(epochs, seed)) as figure:
        for index, ax in enumerate(figure.axes):
            if not ax.get_lines() and not ax.get_ylabel():
                continue
            siblings = ax.get_shared_x_axes().get_siblings(ax)
            has_x = any(other.get_xlabel().strip() for other in siblings)
            expect(has_x and bool(ax.get_ylabel().strip()),
                   f"axis {index + 1} of the figure lacks a label on its "
                   f"{'x' if not has_x else 'y'} axis: name what each axis shows with ax.set_xlabel and "
                   "ax.set_ylabel (for example 'epoch' and 'loss').", "missing_labels")


@checks.of("plot_history")
def plots_both_losses_together_and_the_accuracy_per_epoch(plot_history, epochs=10, seed=0):
    history = _history(epochs, seed)
    with _plot(plot_history, history) as figure:
        curves = _curves(figure)
        train_axes = [ax for ax, values in curves if _matches(values, history["train_loss"])]
        val_axes = [ax for ax, values in curves if _matches(values, history["val_loss"])]
        for key, axes in (("train_loss", train_axes), ("val_loss", val_axes)):
            expect(bool(axes), f"no line of the figure shows history[{key!r}], one point per epoch. Draw each "
                   "list with ax.plot.", "missing_curve")
        expect(any(ax in val_axes for ax in train_axes),
               "the training and the validation loss are drawn on different axes; draw them on the same one, "
               "where the gap between them shows.", "losses_apart")
        expect(any(_matches(values, history["val_acc"]) or _matches(values, history["val_acc"], 100.0)
                   for _, values in curves),
               "no line of the figure shows history['val_acc'], one point per epoch.", "missing_curve")
