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

from autograder.checks._support import (
    one_cpu_core,
    as_float,
    as_pair,
    as_tensor,
    blame,
    describe,
    failure_of,
    is_close,
    number,
)
from autograder.data import load_digits
from autograder.registry import Checks
from autograder.results import expect, fail

checks = Checks("06_training_loop")


# --- make_loaders ---------------------------------------------------------------
#
# Clauses -> checks:
#   two DataLoaders of (inputs, targets) batches, rows still paired  -> returns_two_dataloaders_of_input_target_pairs
#   the splits partition the samples (no overlap, none lost, none twice); validation holds
#   round(val_fraction * n)          -> the_two_splits_partition_the_samples
#   the split is random, set by `seed` alone (not the global generator), another seed another split
#                                    -> the_split_is_random_and_set_by_the_seed
#   training batches of batch_size (last may be smaller), shuffled by a generator seeded by `seed`
#                                    -> training_batches_are_shuffled_by_a_seeded_generator
#   validation batches of batch_size, not shuffled
#                                    -> validation_batches_are_not_shuffled


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
    first, sizes = _order(val, "validation loader")
    expect(all(size == batch_size for size in sizes[:-1]) and 0 < sizes[-1] <= batch_size,
           f"the validation batches hold {sorted(set(sizes))} samples; expected batch_size={batch_size} "
           "(the last one may hold fewer).", "wrong_batch_size")
    second, _ = _order(val, "validation loader")
    expect(first == second,
           "two passes over the validation loader visit the samples in different orders: it shuffles. "
           "Shuffling buys nothing when measuring, and a fixed order keeps runs comparable: leave "
           "shuffle=False for validation.", "val_shuffled")


# --- a model that watches how it is used ----------------------------------------


class _Probe(nn.Module):
    """A small classifier that notes, at every forward pass, the batch size, its mode and whether
    autograd is recording; with ``label_of`` (the true class of an input, computable from the input
    itself) also the batch's cross-entropy and number of right answers, as the pass computed them."""

    def __init__(self, num_features: int, num_classes: int, seed: int, label_of=None):
        super().__init__()
        torch.manual_seed(seed)
        self.net = nn.Sequential(nn.Linear(num_features, 8), nn.Tanh(), nn.Linear(8, num_classes))
        with torch.no_grad():
            self.net[2].weight.mul_(4.0)  # confident logits, so right and wrong answers cost clearly different losses
        self.calls: list[tuple[int, bool, bool]] = []
        self.measured: list[tuple[float, int]] = []
        self.label_of = label_of
        self.last_input: torch.Tensor | None = None

    def forward(self, x):
        self.calls.append((len(x), self.training, torch.is_grad_enabled()))
        self.last_input = x.detach()
        logits = self.net(x)
        if self.label_of is not None:
            with torch.no_grad():
                labels = self.label_of(x)
                self.measured.append((F.cross_entropy(logits, labels).item(),
                                      int((logits.argmax(dim=1) == labels).sum())))
        return logits


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


def _batch_losses(model: nn.Module, loader, loss_fn=F.cross_entropy) -> list[tuple[float, int, int]]:
    """(mean loss, right answers, size) of every batch, for the model as it is."""
    out = []
    with torch.no_grad():
        for inputs, targets in loader:
            logits = model.net(inputs)
            out.append((loss_fn(logits, targets).item(), int((logits.argmax(1) == targets).sum()),
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
#
# Clauses -> checks (the comparison with a reference epoch is an instructor check):
#   returns a Python float                            -> returns_the_mean_loss_as_a_float
#   train mode, one forward per batch                 -> trains_in_train_mode
#   one optimizer step per batch, each on the gradient of its own batch alone (nothing left from
#   before the call or from the previous batch)       -> takes_one_step_per_batch_with_fresh_gradients
#   the mean loss per sample, batches weighted by size -> returns_the_mean_loss_per_sample
#   the loss_fn argument is used                      -> uses_the_loss_function_it_is_given
#   (hidden) the parameters after the epoch equal a reference epoch's, other sizes, a ragged last
#   batch                     -> instructor: the_parameters_match_one_plain_sgd_epoch


def _train(train_one_epoch, model, loader, lr: float, optimizer=None, loss_fn=None) -> float:
    optimizer = optimizer or torch.optim.SGD(model.parameters(), lr=lr)
    with one_cpu_core():  # tiny models train fastest on one thread
        result = train_one_epoch(model, loader, loss_fn or nn.CrossEntropyLoss(), optimizer)
    return as_float(result, "train_one_epoch's result")


def _stale_gradients(model: nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed + 7)
    for p in model.parameters():
        p.grad = 5 * torch.randn(p.shape, generator=gen)


class _WatchedSGD(torch.optim.SGD):
    """Plain SGD that notes, at every step(), the gradients it was handed and the gradients that the
    batch the model last saw has at the parameters of that moment (what a fresh step would follow)."""

    def __init__(self, model: _Probe, dataset: TensorDataset, lr: float):
        super().__init__(model.parameters(), lr=lr)
        self.model = model
        self.X, self.y = dataset.tensors
        self.handed: list[list[torch.Tensor | None]] = []
        self.fresh: list[list[torch.Tensor] | None] = []

    def step(self, closure=None):
        params = list(self.model.parameters())
        self.handed.append([None if p.grad is None else p.grad.detach().clone() for p in params])
        x = self.model.last_input
        if x is None:
            self.fresh.append(None)
        else:
            rows = (x[:, None, :] == self.X[None]).all(dim=2).float().argmax(dim=1)
            twin = copy.deepcopy(self.model.net)
            with torch.enable_grad():
                loss = F.cross_entropy(twin(x), self.y[rows])
                self.fresh.append([g.detach() for g in torch.autograd.grad(loss, list(twin.parameters()))])
        return super().step(closure)


def _same_grads(handed, expected) -> bool:
    return expected is not None and all(h is not None and is_close(h, e, atol=1e-6) for h, e in zip(handed, expected))


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
    model, loader = _problem(num_samples, batch_size, seed)
    _stale_gradients(model, seed)
    stale = [p.grad.clone() for p in model.parameters()]
    optimizer = _WatchedSGD(model, loader.dataset, lr=0.2)
    _train(train_one_epoch, model, loader, lr=0.2, optimizer=optimizer)
    steps = len(optimizer.handed)
    expect(steps > 0, "after train_one_epoch the parameters have not changed: call optimizer.step() after each "
           "backward pass.", "no_step")
    expect(steps == len(loader), f"train_one_epoch made {steps} optimizer steps for the {len(loader)} batches of "
           "the loader; expected one step per batch.", "wrong_step_count")
    for index, (handed, fresh) in enumerate(zip(optimizer.handed, optimizer.fresh)):
        if _same_grads(handed, fresh):
            continue
        where = f"at the step for batch {index + 1} of {steps}"
        if all(h is None or bool((h == 0).all()) for h in handed):
            fail(f"{where}, optimizer.step() found no gradients: they were cleared between backward() and step().",
                 "no_update")
        before = stale if index == 0 else [h if h is not None else torch.zeros_like(f)
                                           for h, f in zip(optimizer.handed[index - 1], fresh)]
        if fresh is not None and _same_grads(handed, [f + b for f, b in zip(fresh, before)]):
            source = ("gradients left on the model before the call" if index == 0
                      else "the gradients of the previous batch")
            fail(f"{where}, the step followed this batch's gradient plus {source}: backward() adds into .grad. "
                 "Call optimizer.zero_grad() (or model.zero_grad()) before every backward pass, not only after "
                 "the step.", "grads_accumulate")
        fail(f"{where}, the gradients handed to optimizer.step() are not those of the loss of that batch alone. "
             "For every batch: zero_grad, forward, loss, backward, step.", "wrong_update")


@checks.of("train_one_epoch")
def returns_the_mean_loss_per_sample(train_one_epoch, num_samples=40, batch_size=16, seed=0):
    model, loader = _problem(num_samples, batch_size, seed)
    batches = _batch_losses(model, loader)
    # With lr=0 the model stays as it is, so the loss of each batch is known in advance.
    found = _train(train_one_epoch, model, loader, lr=0.0)
    _mean_diagnosis(found, batches, "returned loss")


@checks.of("train_one_epoch")
def uses_the_loss_function_it_is_given(train_one_epoch, num_samples=40, batch_size=16, seed=0):
    model, loader = _problem(num_samples, batch_size, seed)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.3)
    batches = _batch_losses(model, loader, loss_fn)
    found = _train(train_one_epoch, model, loader, lr=0.0, loss_fn=loss_fn)
    weighted = sum(value * size for value, _, size in batches) / sum(size for *_, size in batches)
    expect(math.isclose(found, weighted, rel_tol=1e-5, abs_tol=1e-6),
           f"with loss_fn = nn.CrossEntropyLoss(label_smoothing=0.3) (and lr=0) train_one_epoch returned "
           f"{number(found)}; that loss's mean per sample is {number(weighted)}. Use the loss_fn argument.",
           "loss_fn_ignored")


# --- evaluate -------------------------------------------------------------------
#
# Clauses -> checks:
#   returns (mean_loss, accuracy), two Python floats  -> returns_the_loss_and_the_accuracy_as_floats
#   eval mode, no graph, every batch                   -> measures_in_eval_mode_without_a_graph
#   no parameter changes, no gradients left            -> leaves_the_parameters_unchanged
#   loss per sample, batches weighted by size          -> the_loss_is_the_mean_per_sample
#   accuracy = fraction of right arg-max predictions   -> the_accuracy_is_the_fraction_of_right_arg_max_predictions
#   the loss_fn argument is used                       -> uses_the_loss_function_it_is_given
#   (hidden: other sizes, a last batch of one sample)


def _evaluate(evaluate, model, loader):
    with one_cpu_core():  # tiny models train fastest on one thread
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


@checks.of("evaluate")
def uses_the_loss_function_it_is_given(evaluate, num_samples=40, batch_size=16, seed=0):  # noqa: F811
    model, loader = _problem(num_samples, batch_size, seed)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.3)
    batches = _batch_losses(model, loader, loss_fn)
    with one_cpu_core():  # tiny models train fastest on one thread
        loss, _ = as_pair(evaluate(model, loader, loss_fn), "evaluate")
    loss = as_float(loss, "the loss evaluate returns")
    weighted = sum(value * size for value, _, size in batches) / sum(size for *_, size in batches)
    expect(math.isclose(loss, weighted, rel_tol=1e-5, abs_tol=1e-6),
           f"with loss_fn = nn.CrossEntropyLoss(label_smoothing=0.3) evaluate returned the loss {number(loss)}; "
           f"that loss's mean per sample is {number(weighted)}. Use the loss_fn argument.", "loss_fn_ignored")


# --- fit ------------------------------------------------------------------------
#
# Clauses -> checks (fit relies on train_one_epoch and evaluate; when one of them is the cause of a
# failure, the message names it):
#   a dict with lists train_loss, val_loss, val_acc of `epochs` Python floats
#                                 -> returns_a_history_of_one_float_per_epoch
#   trains in train mode; validates once per epoch in eval mode without a graph
#                                 -> trains_in_train_mode_and_validates_in_eval_mode_without_a_graph
#   train_loss[e] is what epoch e's training batches gave (mean per sample), not a validation number
#   and not a measurement made after the epoch
#                                 -> records_the_training_loss_of_each_epoch
#   val_loss[e], val_acc[e] are the validation numbers after epoch e's training
#                                 -> records_the_validation_numbers_after_each_epoch
#   (hidden) on the digits, validation loss falls and accuracy reaches 0.9
#                                 -> instructor: learns_the_digits

_KEYS = ("train_loss", "val_loss", "val_acc")
_TRAIN_SIZES, _VAL_SIZES = (8, 6), (5, 2)  # the batch sizes of the small fit problem's two loaders


def _fit_label(x: torch.Tensor) -> torch.Tensor:
    """The class of a sample of the small fit problem, from the sample itself."""
    return (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()


def _small_fit_problem(seed: int):
    """A probe model, a training loader of 22 samples (batches of 8, 8 and 6) and a validation loader
    of 12 (batches of 5, 5 and 2), so the batch size tells which loader a forward pass came from, and
    the ragged last batches tell a mean per sample from a mean of batch means."""
    model = _Probe(6, 3, seed, label_of=_fit_label)
    gen = torch.Generator().manual_seed(seed + 200)
    X = torch.randn(34, 6, generator=gen)
    dataset = TensorDataset(X, _fit_label(X))
    train = DataLoader(Subset(dataset, range(22)), batch_size=8, shuffle=True,
                       generator=torch.Generator().manual_seed(seed))
    val = DataLoader(Subset(dataset, range(22, 34)), batch_size=5)
    return model, train, val


def _fit(fit, model, train, val, optimizer, epochs):
    with one_cpu_core():  # tiny models train fastest on one thread
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


def _run_fit(fit, epochs, seed):
    model, train, val = _small_fit_problem(seed)
    history = _fit(fit, model, train, val, torch.optim.SGD(model.parameters(), lr=0.1), epochs)
    return model, train, val, history


def _passes(model: _Probe, kind: str) -> list[int]:
    """Indices (into model.calls) of the training passes (train mode, recording) or validation passes
    (batches of 5 and 2)."""
    if kind == "train":
        return [i for i, (size, mode, recording) in enumerate(model.calls) if mode and recording]
    return [i for i, (size, _, _) in enumerate(model.calls) if size in _VAL_SIZES]


def _weighted(model: _Probe, indices: list[int]) -> tuple[float, float]:
    sizes = [model.calls[i][0] for i in indices]
    losses = [model.measured[i][0] for i in indices]
    rights = [model.measured[i][1] for i in indices]
    return sum(l * s for l, s in zip(losses, sizes)) / sum(sizes), sum(rights) / sum(sizes)


def _blame_or_fail(exercise_objects: dict, other: str, what: str, message: str, code: str) -> None:
    broken = failure_of(other, **exercise_objects)
    if broken is not None:
        blame("fit", what, other, broken)
    fail(message, code)


@checks.of("fit")
def returns_a_history_of_one_float_per_epoch(fit, epochs=5, seed=0):
    _run_fit(fit, epochs, seed)


@checks.of("fit")
def trains_in_train_mode_and_validates_in_eval_mode_without_a_graph(fit, evaluate, train_one_epoch, epochs=5,
                                                                     seed=0):
    model, train, val, _ = _run_fit(fit, epochs, seed)
    training = [(mode, recording) for size, mode, recording in model.calls if size in _TRAIN_SIZES]
    validation = [(mode, recording) for size, mode, recording in model.calls if size in _VAL_SIZES]
    if not all(mode for mode, recording in training if recording):
        _blame_or_fail(dict(train_one_epoch=train_one_epoch), "train_one_epoch",
                       "fit trained some epochs in eval mode",
                       "some training steps ran in eval mode: after validating, the model stays in eval mode until "
                       "model.train() is called. Switch to train mode at the start of every epoch.", "missing_train")
    expect(len(validation) >= epochs * len(val),
           f"the validation loader was used for {len(validation)} batches in {epochs} epochs; expected its "
           f"{len(val)} batches after every epoch ({epochs * len(val)} in all): validate once per epoch.",
           "no_validation")
    if any(mode for mode, _ in validation):
        _blame_or_fail(dict(evaluate=evaluate), "evaluate", "fit validated in train mode",
                       "validation ran in train mode: call model.eval() before measuring (evaluate(), if it is "
                       "right, does).", "missing_eval")
    if any(recording for _, recording in validation):
        _blame_or_fail(dict(evaluate=evaluate), "evaluate", "fit validated with autograd recording",
                       "validation ran with autograd recording: measure inside torch.no_grad() (evaluate(), if "
                       "it is right, does).", "missing_no_grad")


@checks.of("fit")
def records_the_training_loss_of_each_epoch(fit, train_one_epoch, epochs=5, seed=0):
    model, train, val, history = _run_fit(fit, epochs, seed)
    passes = _passes(model, "train")
    per_epoch = len(train)
    if len(passes) != epochs * per_epoch:
        fail(f"in {epochs} epochs the model ran {len(passes)} training forward passes (train mode, recording); "
             f"expected {per_epoch} per epoch, one per batch of the training loader.", "wrong_step_count")
    expected = [_weighted(model, passes[e * per_epoch:(e + 1) * per_epoch])[0] for e in range(epochs)]
    found = history["train_loss"]
    if all(math.isclose(f, e, rel_tol=1e-4, abs_tol=1e-6) for f, e in zip(found, expected)):
        return
    shown = f"history['train_loss'] is {[round(v, 4) for v in found]}; the epochs' training batches gave " \
            f"{[round(v, 4) for v in expected]} (mean per sample)"
    if all(math.isclose(f, v, rel_tol=1e-6, abs_tol=1e-9) for f, v in zip(found, history["val_loss"])):
        fail(f"{shown}. It holds the validation losses: record what train_one_epoch returns for the epoch as "
             "train_loss, and the loss evaluate returns as val_loss.", "train_loss_is_val_loss")
    _blame_or_fail(dict(train_one_epoch=train_one_epoch), "train_one_epoch", "fit's training loss is wrong",
                   f"{shown}. Record the loss of each epoch as its training batches computed it, the value "
                   "train_one_epoch returns, not a measurement made afterwards.", "wrong_train_loss")


@checks.of("fit")
def records_the_validation_numbers_after_each_epoch(fit, evaluate, epochs=5, seed=0):
    model, train, val, history = _run_fit(fit, epochs, seed)
    passes = _passes(model, "val")
    per_epoch = len(val)
    found = list(zip(history["val_loss"], history["val_acc"]))
    if len(passes) == epochs * per_epoch:
        expected = [_weighted(model, passes[e * per_epoch:(e + 1) * per_epoch]) for e in range(epochs)]
    else:  # validated more or less often than once per epoch: judge the last entry by the trained model
        expected = None
    batches = _batch_losses(model, val)
    samples = sum(size for *_, size in batches)
    final = (sum(value * size for value, _, size in batches) / samples, sum(right for _, right, _ in batches) / samples)

    def same(a, b):
        return math.isclose(a[0], b[0], rel_tol=1e-4, abs_tol=1e-6) and math.isclose(a[1], b[1], abs_tol=1e-6)

    if (expected is None or all(same(f, e) for f, e in zip(found, expected))) and same(found[-1], final):
        return
    objects = dict(evaluate=evaluate)
    if expected is not None and not all(same(f, e) for f, e in zip(found, expected)):
        _blame_or_fail(objects, "evaluate", "fit's validation loss or accuracy is wrong",
                       f"the recorded validation numbers {[(round(a, 4), round(b, 4)) for a, b in found]} are not "
                       f"what the validation passes gave, {[(round(a, 4), round(b, 4)) for a, b in expected]}: "
                       "record the loss and accuracy of the validation loader, means per sample.", "wrong_history")
    _blame_or_fail(objects, "evaluate", "fit's validation loss or accuracy is wrong",
                   f"the last recorded validation loss and accuracy are {number(found[-1][0])} and "
                   f"{number(found[-1][1])}, but the trained model scores {number(final[0])} and {number(final[1])} "
                   "on the validation loader. Evaluate after training each epoch, on the validation loader.",
                   "wrong_history")


# --- plot_history ---------------------------------------------------------------
#
# Clauses -> checks:
#   returns a matplotlib Figure (not None, not an Axes)      -> every check (through _plot)
#   at least two axes                                        -> returns_a_figure_with_at_least_two_axes
#   every axis that shows something labelled (x and y)       -> labels_every_axis
#   train and validation loss on the same axes, the accuracy on a line of its own, one point per epoch
#                                                            -> plots_both_losses_together_and_the_accuracy_per_epoch


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


# --- training_settings (challenge) ------------------------------------------------------------
#
# Graded by outcome: the learner picks the batch size, learning rate and momentum; the check splits
# the digits with the learner's make_loaders, trains a network of its own with the learner's fit and
# SGD with those settings for SETTINGS_EPOCHS epochs, and measures the validation loss.
# Clauses -> checks:
#   a dict with batch_size (an int, at least SETTINGS_MIN_BATCH), lr (> 0) and momentum (in [0, 1))
#                        -> returns_a_batch_size_a_learning_rate_and_a_momentum
#   after SETTINGS_EPOCHS epoch(s), validation loss <= SETTINGS_TARGET
#                        -> reaches_the_target_within_the_epoch_budget (the notebook's split),
#                           instructor: reaches_the_target_on_a_split_it_never_saw
#   (relies on make_loaders, train_one_epoch, evaluate and fit: a broken one is named as the cause)

SETTINGS_EPOCHS = 1
_BUDGET = "one epoch" if SETTINGS_EPOCHS == 1 else f"{SETTINGS_EPOCHS} epochs"
SETTINGS_TARGET = 0.45
SETTINGS_MIN_BATCH = 8


def _settings(training_settings) -> tuple[int, float, float]:
    settings = training_settings()
    if not isinstance(settings, dict):
        fail(f"training_settings should return a dict; it returned {describe(settings)}.", "wrong_return")
    missing = [key for key in ("batch_size", "lr", "momentum") if key not in settings]
    expect(not missing, f"the settings have no {', '.join(repr(k) for k in missing)}; expected the keys "
           "'batch_size', 'lr' and 'momentum'.", "missing_keys")
    batch_size, lr, momentum = settings["batch_size"], settings["lr"], settings["momentum"]
    expect(type(batch_size) is int and batch_size >= SETTINGS_MIN_BATCH,
           f"batch_size is {batch_size!r}; expected an int of at least {SETTINGS_MIN_BATCH} (smaller batches make "
           "the check too slow).", "wrong_settings")
    expect(type(lr) in (int, float) and lr > 0, f"lr is {lr!r}; expected a positive number.", "wrong_settings")
    expect(type(momentum) in (int, float) and 0 <= momentum < 1,
           f"momentum is {momentum!r}; expected a number in [0, 1).", "wrong_settings")
    return batch_size, float(lr), float(momentum)


def settings_validation_loss(training_settings, make_loaders, fit, split_seed: int, width: int,
                             model_seed: int) -> float:
    """Train a digits network of the check's own with the learner's settings, loaders and fit; its loss
    on the validation split (all of it at once)."""
    batch_size, lr, momentum = _settings(training_settings)
    X, y = load_digits()
    train_loader, val_loader = as_pair(make_loaders(X, y, batch_size=batch_size, val_fraction=0.2,
                                                    seed=split_seed), "make_loaders")
    torch.manual_seed(model_seed)
    # tanh, not the ReLU of DigitsClassifier: the settings must suit a network they were not tuned on
    model = nn.Sequential(nn.Linear(64, width), nn.Tanh(), nn.Linear(width, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    with one_cpu_core():  # tiny models train fastest on one thread
        fit(model, train_loader, val_loader, nn.CrossEntropyLoss(), optimizer, SETTINGS_EPOCHS)
    samples = [val_loader.dataset[i] for i in range(len(val_loader.dataset))]
    inputs = torch.stack([as_tensor(x, "a validation input") for x, _ in samples])
    targets = torch.stack([as_tensor(t, "a validation target") for _, t in samples])
    model.eval()
    with torch.no_grad():
        return F.cross_entropy(model(inputs), targets).item()


def expect_settings_loss(loss: float, where: str, objects: dict) -> None:
    if loss <= SETTINGS_TARGET:
        return
    for other in ("make_loaders", "train_one_epoch", "evaluate", "fit"):
        broken = failure_of(other, **objects)
        if broken is not None:
            blame("training_settings", f"after {_BUDGET} the validation loss is {number(loss)}, "
                  f"above the target {SETTINGS_TARGET}, and that may not be your settings' fault: the run relies "
                  "on your own code,", other, broken)
    fail(f"after {_BUDGET} with your settings the validation loss {where} is {number(loss)}; the "
         f"target is at most {SETTINGS_TARGET}. Smaller batches take more steps per epoch; momentum and the "
         "learning rate decide how far each step goes (too far, and the loss jumps around).", "below_target")


@checks.of("training_settings")
def returns_a_batch_size_a_learning_rate_and_a_momentum(training_settings):
    _settings(training_settings)


@checks.of("training_settings")
def reaches_the_target_within_the_epoch_budget(training_settings, make_loaders, train_one_epoch, evaluate, fit,
                                               seed=0):
    loss = settings_validation_loss(training_settings, make_loaders, fit, split_seed=seed, width=32,
                                    model_seed=seed)
    expect_settings_loss(loss, "on the notebook's split", dict(make_loaders=make_loaders,
                                                               train_one_epoch=train_one_epoch, evaluate=evaluate,
                                                               fit=fit))
