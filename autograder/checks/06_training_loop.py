"""Checks for 06_training_loop: loaders, the training loop, evaluation, learning curves, a prediction, a repair
and the challenge.

The checks run as the judge (:mod:`autograder.learner`): the learner's functions arrive as references, what
their code returns comes back as data (a DataLoader stays where it is, and one pass over it comes back as its
batches), and what must run next to the learner's code is a probe, a function below marked as one. The
model the checks hand to the learner's loops is a small network that notes every forward pass (its input,
its mode, whether autograd recorded, its parameters at that moment), and its optimizer a StepRecorder that
notes every step on the same timeline; every loss, mean and gradient those notes should show is computed
here. The models and data are tiny on purpose: every check trains for well under a second.
"""

from __future__ import annotations

import contextlib
import io
import math

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Subset, TensorDataset

from autograder.checks._probes import StepRecorder
from autograder.checks._support import what_it_is as _what
from autograder.checks._support import (
    as_float,
    as_pair,
    as_tensor,
    blame,
    failure_of,
    is_close,
    number,
    shape_text,
)
from autograder.data import load_digits
from autograder.learner import is_instance, is_remote, probe, type_name
from autograder.registry import Checks
from autograder.results import expect, fail

checks = Checks("06_training_loop")




# --- probes: they run where the learner's code runs, and report ------------------------------------


def _seed(seed: int) -> None:
    """A probe: seed the learner's global random stream (the session puts it back after the check)."""
    torch.manual_seed(seed)


def _draw(count: int) -> None:
    """A probe: draw from the learner's global random stream, as other random work in between would."""
    torch.rand(count)


def _one_thread() -> None:
    """A probe: tiny models train fastest on one thread (the session puts the learner's count back)."""
    torch.set_num_threads(1)


def _loader(X, y, batch_size: int):
    """A probe: an unshuffled DataLoader over (X, y)."""
    return DataLoader(TensorDataset(X, y), batch_size=batch_size)


def _parameters(model) -> list:
    """A probe: the model's parameters as they are now (with their gradients)."""
    return list(model.parameters())


def _grads(model) -> list:
    """A probe: the gradient each parameter holds now (None where it holds none)."""
    return [p.grad for p in model.parameters()]


def _notes(model) -> list:
    """A probe: everything the model and its recorder noted, in order."""
    return list(model.log)


# --- make_loaders ---------------------------------------------------------------
#
# Rules of its text -> checks:
#   two_loaders     two DataLoaders of (inputs, targets) batches, each sample with its own target
#                   -> returns_two_dataloaders_of_input_target_pairs
#   seeded_split    random, decided by `seed` alone (not the global stream); another seed, another split
#                   -> the_split_is_random_and_set_by_the_seed
#   partition       every sample in exactly one split; validation holds round(val_fraction * n)
#                   -> the_two_splits_partition_the_samples
#   batches         batches of batch_size, the last of each loader may be smaller
#                   -> training_batches_are_shuffled_by_a_seeded_generator, validation_batches_are_not_shuffled
#   train_shuffled  the training loader shuffles, in an order `seed` decides
#                   -> training_batches_are_shuffled_by_a_seeded_generator
#   val_fixed       the validation loader does not shuffle -> validation_batches_are_not_shuffled


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
        if not is_instance(loader, DataLoader):
            fail(f"make_loaders should return two DataLoaders; its {name} is {_what(loader)}, which a training loop "
                 "cannot draw shuffled batches from.", "not_a_dataloader", fix="wrap each split in DataLoader(...)")
    return train, val


def _order(loader, what: str):
    """The indices of the samples one pass over ``loader`` yields, in order, and the batch sizes."""
    indices, sizes = [], []
    for batch in loader:
        if type(batch) not in (list, tuple) or len(batch) != 2:
            fail(f"each batch of the {what} should be a pair (inputs, targets), as a TensorDataset gives; "
                 f"found {_what(batch)}.", "wrong_batch")
        inputs = as_tensor(batch[0], f"the inputs of a batch of the {what}")
        targets = as_tensor(batch[1], f"the targets of a batch of the {what}")
        expect(inputs.dim() == 2 and targets.dim() == 1 and len(inputs) == len(targets),
               f"a batch of the {what} holds inputs of shape {shape_text(inputs.shape)} and targets of shape "
               f"{shape_text(targets.shape)}; expected inputs (B, features) and targets (B,) for the same B samples.",
               "wrong_batch")
        found = inputs[:, 0].round().long()
        expect(bool((targets == found % 10).all()),
               f"in the {what}, inputs and targets no longer belong together: sample {int(found[0])} came with "
               "another sample's label, as when X and y are shuffled apart.", "rows_mismatched",
               fix="build one TensorDataset(X, y) and split that")
        indices.extend(found.tolist())
        sizes.append(len(found))
    return indices, sizes


@checks.of("make_loaders", rule="two_loaders")
def returns_two_dataloaders_of_input_target_pairs(make_loaders, num_samples=1797, batch_size=32, val_fraction=0.2,
                                                  seed=0):
    train, val = _loaders(make_loaders, num_samples, batch_size, val_fraction, seed)
    _order(train, "training loader")
    _order(val, "validation loader")


@checks.of("make_loaders", rule="partition")
def the_two_splits_partition_the_samples(make_loaders, num_samples=1797, batch_size=32, val_fraction=0.2, seed=0):
    # 0.3 * 103 = 30.9: rounding and cutting off the decimals give different sizes.
    for n, fraction in ((num_samples, val_fraction), (103, 0.3)):
        train, val = _loaders(make_loaders, n, batch_size, fraction, seed)
        in_train, _ = _order(train, "training loader")
        in_val, _ = _order(val, "validation loader")
        both = set(in_train) & set(in_val)
        expect(not both, f"with {n} samples, {len(both)} of them are in the training set and in the validation "
               "set: the model is then graded on samples it trained on.", "overlap")
        expect(len(in_train) == len(set(in_train)) and len(in_val) == len(set(in_val)),
               f"with {n} samples, one pass over a loader yields some samples more than once.", "duplicate_samples")
        lost = n - len(in_train) - len(in_val)
        if lost > 0:
            hint = (" The training loader drops its incomplete last batch (drop_last)."
                    if getattr(train, "drop_last", False) else "")
            fail(f"with {n} samples, one pass over both loaders yields only {n - lost}: {lost} samples are in "
                 f"neither split.{hint}", "samples_lost")
        expected = round(fraction * n)
        if len(in_val) != expected:
            hint = ""
            if len(in_val) == math.floor(fraction * n):
                hint = " int() and random_split with fractions round down."
            elif len(in_val) == n - expected:
                hint = " The sizes are swapped: val_fraction is the share of the validation set."
            fail(f"with {n} samples and val_fraction={fraction} the validation set holds {len(in_val)} samples; "
                 f"expected round({fraction} * {n}) = {expected}.{hint}", "wrong_val_size",
                 fix="compute the size with round(val_fraction * n) and split with whole numbers")


@checks.of("make_loaders", rule="seeded_split")
def the_split_is_random_and_set_by_the_seed(make_loaders, num_samples=1797, batch_size=32, val_fraction=0.2, seed=0):
    probe(_seed, 1)
    _, val = _loaders(make_loaders, num_samples, batch_size, val_fraction, seed)
    chosen = sorted(_order(val, "validation loader")[0])
    steps = {b - a for a, b in zip(chosen, chosen[1:])}
    expect(len(steps) > 1,
           "the validation set is a regular slice of the samples (a block, or every k-th one), not a random "
           "choice; data files are often sorted, so such a slice is rarely a fair sample.", "split_not_random",
           fix="draw the split from a random permutation: torch.randperm(n, generator=...)")
    probe(_seed, 2)
    probe(_draw, 7)
    _, val = _loaders(make_loaders, num_samples, batch_size, val_fraction, seed)
    again = sorted(_order(val, "validation loader")[0])
    expect(again == chosen,
           f"two calls with seed={seed} chose different validation samples: the split draws from the global "
           "random generator, so it depends on whatever ran before.", "split_not_seeded",
           fix="draw the permutation with torch.Generator().manual_seed(seed)")
    _, val = _loaders(make_loaders, num_samples, batch_size, val_fraction, seed + 1)
    other = sorted(_order(val, "validation loader")[0])
    expect(other != chosen, f"seed={seed} and seed={seed + 1} chose the same validation samples: the seed "
           "argument is ignored.", "seed_ignored")


@checks.of("make_loaders", rule=("train_shuffled", "batches"))
def training_batches_are_shuffled_by_a_seeded_generator(make_loaders, num_samples=1797, batch_size=32,
                                                       val_fraction=0.2, seed=0):
    probe(_seed, 1)
    train, _ = _loaders(make_loaders, num_samples, batch_size, val_fraction, seed)
    first, sizes = _order(train, "training loader")
    expect(all(size == batch_size for size in sizes[:-1]) and 0 < sizes[-1] <= batch_size,
           f"the training batches hold {sorted(set(sizes))} samples; expected batch_size={batch_size} "
           "(the last one may hold fewer).", "wrong_batch_size")
    second, _ = _order(train, "training loader")
    expect(first != second,
           "two epochs over the training loader visit the samples in the same order: it does not shuffle.",
           "train_not_shuffled", fix="shuffle=True, with a seeded generator")
    probe(_seed, 2)
    train, _ = _loaders(make_loaders, num_samples, batch_size, val_fraction, seed)
    probe(_draw, 11)  # other random work between building the loader and using it
    again, _ = _order(train, "training loader")
    expect(again == first,
           f"two loaders made with seed={seed} shuffle their first epoch differently: the shuffling draws from "
           "the global random generator at the moment the loader is used.", "shuffle_not_seeded",
           fix="generator=torch.Generator().manual_seed(seed) for the training DataLoader")


@checks.of("make_loaders", rule=("val_fixed", "batches"))
def validation_batches_are_not_shuffled(make_loaders, num_samples=1797, batch_size=32, val_fraction=0.2, seed=0):
    _, val = _loaders(make_loaders, num_samples, batch_size, val_fraction, seed)
    first, sizes = _order(val, "validation loader")
    expect(all(size == batch_size for size in sizes[:-1]) and 0 < sizes[-1] <= batch_size,
           f"the validation batches hold {sorted(set(sizes))} samples; expected batch_size={batch_size} "
           "(the last one may hold fewer).", "wrong_batch_size")
    second, _ = _order(val, "validation loader")
    expect(first == second,
           "two passes over the validation loader visit the samples in different orders: it shuffles, which "
           "buys nothing when measuring and makes two runs harder to compare.", "val_shuffled",
           fix="shuffle=False for validation")


# --- a model that notes how it is used ----------------------------------------


class _Noting(nn.Module):
    """A small classifier (Linear, Tanh, Linear) that notes in ``log``, at every forward pass, the input, the
    mode, whether autograd records, and the parameters of that moment. It computes nothing else."""

    def __init__(self, num_features: int, num_classes: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(num_features, 8), nn.Tanh(), nn.Linear(8, num_classes))
        with torch.no_grad():
            self.net[2].weight.mul_(4.0)  # confident logits, so right and wrong answers cost clearly different losses
        self.log: list[dict] = []

    def forward(self, x):
        self.log.append({"kind": "forward", "input": x.detach().clone(), "training": self.training,
                         "recording": torch.is_grad_enabled(),
                         "params": [p.detach().clone() for p in self.net.parameters()]})
        return self.net(x)


def _noting_model(num_features: int, num_classes: int, seed: int, eval_mode: bool = False,
                  stale_seed: int | None = None):
    """A probe: the noting model, initialised from ``seed``; in eval mode, or holding gradients from before, if
    asked."""
    torch.manual_seed(seed)
    model = _Noting(num_features, num_classes)
    if eval_mode:
        model.eval()
    if stale_seed is not None:
        gen = torch.Generator().manual_seed(stale_seed)
        for p in model.parameters():
            p.grad = 5 * torch.randn(p.shape, generator=gen)
    return model


def _recorder(model, lr: float):
    """A probe: plain SGD over the model that notes its steps in the model's log."""
    return StepRecorder(model.parameters(), lr=lr, log=model.log)


def _logits(params, x):
    """What the noting model computes with these parameters."""
    W1, b1, W2, b2 = params
    return F.linear(torch.tanh(F.linear(x, W1, b1)), W2, b2)


def _problem(num_samples: int, batch_size: int, seed: int, num_features: int = 6, num_classes: int = 3, **model):
    """A noting model and an unshuffled loader whose last, smaller batch the model gets all wrong (and every
    other sample right), so that means over batches and over samples differ; with X, y and the starting
    parameters."""
    noting = probe(_noting_model, num_features, num_classes, seed, **model)
    params = [p.detach() for p in probe(_parameters, noting)]
    X = torch.randn(num_samples, num_features, generator=torch.Generator().manual_seed(seed + 100))
    predicted = _logits(params, X).argmax(dim=1)
    last = num_samples - (num_samples % batch_size or batch_size)
    y = predicted.clone()
    y[last:] = (predicted[last:] + 1) % num_classes
    return noting, probe(_loader, X, y, batch_size), X, y, params


def _batches(params, X, y, batch_size: int, label_smoothing: float = 0.0) -> list[tuple[float, int, int]]:
    """(mean loss, right answers, size) of every batch of the unshuffled loader, for these parameters."""
    out = []
    for start in range(0, len(X), batch_size):
        logits = _logits(params, X[start:start + batch_size])
        targets = y[start:start + batch_size]
        out.append((F.cross_entropy(logits, targets, label_smoothing=label_smoothing).item(),
                    int((logits.argmax(1) == targets).sum()), len(targets)))
    return out


def _labels_of(inputs, X, y):
    """The labels of these rows of X (each row found by its values)."""
    rows = (inputs[:, None, :] == X[None]).all(dim=2).float().argmax(dim=1)
    return y[rows]


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
        fail(f"the {what} is {number(found)}, the plain mean of the batches' values; over the samples it is "
             f"{number(weighted)}. The batches hold {sizes_text} samples, so the samples of the small last one "
             "count too much.", "unweighted_mean",
             fix=("count the right answers of every batch and divide once, by the number of samples" if index
                  else "add up loss.item() * len(batch), then divide by the number of samples"))
    if index == 1 and math.isclose(found, 100 * weighted, rel_tol=1e-5):
        fail(f"the accuracy is {number(found)}, a percentage; expected the fraction {number(weighted)} "
             "(between 0 and 1).", "percent_not_fraction")
    if index == 1 and math.isclose(found, sum(values)):
        fail(f"the accuracy is {number(found)}, the number of right answers; expected the fraction of the "
             f"{sum(sizes)} samples.", "count_not_fraction")
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
# Rules of its text -> checks:
#   train_mode       the epoch runs in train mode                  -> trains_in_train_mode
#   fresh_steps      one optimizer step per batch, each on the gradient of its own batch alone
#                    -> takes_one_step_per_batch_with_fresh_gradients,
#                       instructor: the_parameters_match_one_plain_sgd_epoch
#   mean_per_sample  the mean loss per sample, as a Python float  -> returns_the_mean_loss_as_a_float,
#                                                                    returns_the_mean_loss_per_sample
#   uses_loss_fn     the loss is loss_fn                           -> uses_the_loss_function_it_is_given


def _train(train_one_epoch, model, loader, lr: float, loss_fn=None) -> float:
    optimizer = probe(_recorder, model, lr)
    result = train_one_epoch(model, loader, loss_fn if loss_fn is not None else probe(nn.CrossEntropyLoss), optimizer)
    return as_float(result, "train_one_epoch's result")


def _same_grads(handed, expected) -> bool:
    return expected is not None and all(h is not None and is_close(h, e, atol=1e-6) for h, e in zip(handed, expected))


def _fresh_gradients(params, inputs, targets) -> list[torch.Tensor]:
    leaves = [p.detach().clone().requires_grad_() for p in params]
    loss = F.cross_entropy(_logits(leaves, inputs), targets)
    return [g.detach() for g in torch.autograd.grad(loss, leaves)]


@checks.of("train_one_epoch", rule="mean_per_sample")
def returns_the_mean_loss_as_a_float(train_one_epoch, num_samples=40, batch_size=16, seed=0):
    model, loader, *_ = _problem(num_samples, batch_size, seed)
    _train(train_one_epoch, model, loader, lr=0.1)


@checks.of("train_one_epoch", rule="train_mode")
def trains_in_train_mode(train_one_epoch, num_samples=40, batch_size=16, seed=0):
    model, loader, *_ = _problem(num_samples, batch_size, seed, eval_mode=True)  # as evaluate leaves it
    _train(train_one_epoch, model, loader, lr=0.1)
    passes = [note for note in probe(_notes, model) if note["kind"] == "forward"]
    batches = math.ceil(num_samples / batch_size)
    expect(len(passes) >= batches, f"the model ran {len(passes)} forward passes for {batches} batches: each batch "
           "needs one.", "skips_batches")
    expect(all(note["training"] for note in passes),
           "the model arrived in eval mode (as evaluate leaves it) and trained in eval mode: dropout and batch "
           "norm would then behave as in testing.", "missing_train", fix="model.train() at the start of the epoch")


@checks.of("train_one_epoch", rule="fresh_steps")
def takes_one_step_per_batch_with_fresh_gradients(train_one_epoch, num_samples=40, batch_size=16, seed=0):
    model, loader, X, y, _ = _problem(num_samples, batch_size, seed, stale_seed=seed + 7)
    stale = probe(_grads, model)
    _train(train_one_epoch, model, loader, lr=0.2)
    notes = probe(_notes, model)
    steps = [i for i, note in enumerate(notes) if note["kind"] == "step"]
    batches = math.ceil(num_samples / batch_size)
    expect(bool(steps), "after train_one_epoch the optimizer never stepped: the parameters did not change.",
           "no_step", fix="optimizer.step() after each backward pass")
    expect(len(steps) == batches, f"train_one_epoch made {len(steps)} optimizer steps for the {batches} batches of "
           "the loader; expected one step per batch.", "wrong_step_count")
    for number_, at in enumerate(steps):
        step = notes[at]
        seen = [note for note in notes[:at] if note["kind"] == "forward"]
        fresh = None
        if seen:
            inputs = seen[-1]["input"]
            fresh = _fresh_gradients(step["params"], inputs, _labels_of(inputs, X, y))
        if _same_grads(step["grads"], fresh):
            continue
        where = f"at the step for batch {number_ + 1} of {len(steps)}"
        if all(h is None or bool((h == 0).all()) for h in step["grads"]):
            fail(f"{where}, optimizer.step() found no gradients: they were cleared between backward() and step().",
                 "no_update")
        before = stale if number_ == 0 else [h if h is not None else torch.zeros_like(p)
                                             for h, p in zip(notes[steps[number_ - 1]]["grads"], step["params"])]
        if fresh is not None and _same_grads(step["grads"], [f + b for f, b in zip(fresh, before)]):
            source = ("gradients left on the model before the call" if number_ == 0
                      else "the gradients of the previous batch")
            fail(f"{where}, the step followed this batch's gradient plus {source}: backward() adds into .grad, and "
                 "nothing cleared it before this batch's backward.", "grads_accumulate",
                 fix="optimizer.zero_grad() (or model.zero_grad()) before every backward pass")
        fail(f"{where}, the gradients handed to optimizer.step() are not those of the loss of that batch alone.",
             "wrong_update")


@checks.of("train_one_epoch", rule="mean_per_sample")
def returns_the_mean_loss_per_sample(train_one_epoch, num_samples=40, batch_size=16, seed=0):
    model, loader, X, y, params = _problem(num_samples, batch_size, seed)
    # With lr=0 the model stays as it is, so the loss of each batch is known in advance.
    found = _train(train_one_epoch, model, loader, lr=0.0)
    _mean_diagnosis(found, _batches(params, X, y, batch_size), "returned loss")


@checks.of("train_one_epoch", rule="uses_loss_fn")
def uses_the_loss_function_it_is_given(train_one_epoch, num_samples=40, batch_size=16, seed=0):
    model, loader, X, y, params = _problem(num_samples, batch_size, seed)
    batches = _batches(params, X, y, batch_size, label_smoothing=0.3)
    found = _train(train_one_epoch, model, loader, lr=0.0, loss_fn=probe(nn.CrossEntropyLoss, label_smoothing=0.3))
    weighted = sum(value * size for value, _, size in batches) / sum(size for *_, size in batches)
    expect(math.isclose(found, weighted, rel_tol=1e-5, abs_tol=1e-6),
           f"with loss_fn = nn.CrossEntropyLoss(label_smoothing=0.3) (and lr=0) train_one_epoch returned "
           f"{number(found)}; that loss's mean per sample is {number(weighted)}: the loss was computed some other "
           "way than with the loss_fn it was given.", "loss_fn_ignored")


# --- evaluate -------------------------------------------------------------------
#
# Rules of its text -> checks:
#   floats           (mean_loss, accuracy), two Python floats           -> returns_the_loss_and_the_accuracy_as_floats
#   eval_mode        measures in eval mode, every batch                  -> measures_in_eval_mode
#   unchanged        no parameter changes, no gradients left             -> leaves_the_parameters_unchanged
#   no_graph         builds no graph                                     -> builds_no_graph
#   mean_per_sample  the loss is the mean per sample                     -> the_loss_is_the_mean_per_sample
#   accuracy         the fraction of samples whose highest logit is right
#                    -> the_accuracy_is_the_fraction_of_right_arg_max_predictions
#   uses_loss_fn     the loss is loss_fn                                  -> uses_the_loss_function_it_is_given
#   (hidden: other sizes, a last batch of one sample)


def _evaluate(evaluate, model, loader, loss_fn=None):
    loss, accuracy = as_pair(evaluate(model, loader, loss_fn if loss_fn is not None else probe(nn.CrossEntropyLoss)), "evaluate")
    return as_float(loss, "the loss evaluate returns"), as_float(accuracy, "the accuracy evaluate returns")


def _passes(evaluate, num_samples, batch_size, seed):
    model, loader, *_ = _problem(num_samples, batch_size, seed)
    probe(_train_mode, model)  # as training leaves it
    _evaluate(evaluate, model, loader)
    passes = [note for note in probe(_notes, model) if note["kind"] == "forward"]
    batches = math.ceil(num_samples / batch_size)
    expect(len(passes) >= batches, f"the model ran {len(passes)} forward passes for {batches} batches: evaluate "
           "every batch.", "skips_batches")
    return passes


def _train_mode(model) -> None:
    """A probe: put the model in train mode, as training leaves it."""
    model.train()


@checks.of("evaluate", rule="floats")
def returns_the_loss_and_the_accuracy_as_floats(evaluate, num_samples=40, batch_size=16, seed=0):
    model, loader, *_ = _problem(num_samples, batch_size, seed)
    _evaluate(evaluate, model, loader)


@checks.of("evaluate", rule="eval_mode")
def measures_in_eval_mode(evaluate, num_samples=40, batch_size=16, seed=0):
    passes = _passes(evaluate, num_samples, batch_size, seed)
    expect(not any(note["training"] for note in passes),
           "the model arrived in train mode and was evaluated in train mode: dropout would still drop units and "
           "batch norm would use (and update) the statistics of each batch.", "missing_eval",
           fix="model.eval() first")


@checks.of("evaluate", rule="unchanged")
def leaves_the_parameters_unchanged(evaluate, num_samples=40, batch_size=16, seed=0):
    model, loader, _, _, before = _problem(num_samples, batch_size, seed)
    _evaluate(evaluate, model, loader)
    after = probe(_parameters, model)
    moved = max(float((p.detach() - q).abs().max()) for p, q in zip(after, before))
    expect(moved == 0, f"evaluate changed the model's parameters (by up to {moved:.3g}): measuring must not train.",
           "changes_parameters")
    expect(all(p.grad is None for p in after),
           "after evaluate the parameters hold gradients: evaluation needs no backward pass.", "changes_parameters")


@checks.of("evaluate", rule="no_graph")
def builds_no_graph(evaluate, num_samples=40, batch_size=16, seed=0):
    passes = _passes(evaluate, num_samples, batch_size, seed)
    expect(not any(note["recording"] for note in passes),
           "the forward passes ran with autograd recording, so every output (and loss) drags a graph along for a "
           "backward pass that never comes.", "missing_no_grad", fix="run the loop inside `with torch.no_grad():`")


@checks.of("evaluate", rule="mean_per_sample")
def the_loss_is_the_mean_per_sample(evaluate, num_samples=40, batch_size=16, seed=0):
    model, loader, X, y, params = _problem(num_samples, batch_size, seed)
    loss, _ = _evaluate(evaluate, model, loader)
    _mean_diagnosis(loss, _batches(params, X, y, batch_size), "loss evaluate returns")


@checks.of("evaluate", rule="accuracy")
def the_accuracy_is_the_fraction_of_right_arg_max_predictions(evaluate, num_samples=40, batch_size=16, seed=0):
    model, loader, X, y, params = _problem(num_samples, batch_size, seed)
    _, accuracy = _evaluate(evaluate, model, loader)
    _mean_diagnosis(accuracy, _batches(params, X, y, batch_size), "accuracy evaluate returns", index=1)


@checks.of("evaluate", rule="uses_loss_fn")
def uses_the_loss_function_it_is_given(evaluate, num_samples=40, batch_size=16, seed=0):  # noqa: F811
    model, loader, X, y, params = _problem(num_samples, batch_size, seed)
    batches = _batches(params, X, y, batch_size, label_smoothing=0.3)
    loss, _ = _evaluate(evaluate, model, loader, probe(nn.CrossEntropyLoss, label_smoothing=0.3))
    weighted = sum(value * size for value, _, size in batches) / sum(size for *_, size in batches)
    expect(math.isclose(loss, weighted, rel_tol=1e-5, abs_tol=1e-6),
           f"with loss_fn = nn.CrossEntropyLoss(label_smoothing=0.3) evaluate returned the loss {number(loss)}; "
           f"that loss's mean per sample is {number(weighted)}: the loss was computed some other way than with the "
           "loss_fn it was given.", "loss_fn_ignored")


# --- fit ------------------------------------------------------------------------
#
# fit relies on train_one_epoch and evaluate; when one of them is the cause of a failure, the message names it.
# Rules of its text -> checks:
#   history        a dict of lists train_loss, val_loss, val_acc, one Python float per epoch
#                  -> returns_a_history_of_one_float_per_epoch
#   trains         every epoch trains on every training batch, in train mode
#                  -> trains_every_epoch_in_train_mode, instructor: learns_the_digits
#   train_loss     train_loss[e] is what epoch e's training batches gave (mean per sample)
#                  -> records_the_training_loss_of_each_epoch
#   validation     after each epoch's training, validation in eval mode without a graph; val_loss[e] and
#                  val_acc[e] are its numbers -> validates_after_every_epoch_in_eval_mode_without_a_graph,
#                                                records_the_validation_numbers_after_each_epoch
#   silent         with progress false, nothing shown or printed   -> shows_nothing_unless_asked
#   progress_bar   with progress true, a progress bar              -> shows_a_progress_bar_when_asked

_KEYS = ("train_loss", "val_loss", "val_acc")
_TRAIN_SIZES, _VAL_SIZES = (8, 6), (5, 2)  # the batch sizes of the small fit problem's two loaders


def _fit_label(x: torch.Tensor) -> torch.Tensor:
    """The class of a sample of the small fit problem, from the sample itself."""
    return (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()


def _fit_loaders(X, y, seed: int):
    """A probe: a training loader of 22 samples (batches of 8, 8 and 6, shuffled) and a validation loader of 12
    (batches of 5, 5 and 2), so the batch size tells which loader a forward pass came from, and the ragged last
    batches tell a mean per sample from a mean of batch means."""
    dataset = TensorDataset(X, y)
    return (DataLoader(Subset(dataset, range(22)), batch_size=8, shuffle=True,
                       generator=torch.Generator().manual_seed(seed)),
            DataLoader(Subset(dataset, range(22, 34)), batch_size=5))


def _fit_quietly(fit, model, train, val, loss_fn, optimizer, epochs: int, progress=None) -> dict:
    """A probe: call fit (with ``progress`` when given) and note what it printed and, for every tqdm bar it opened,
    whether it asked for the bar to be shown. No bar is drawn: each opens disabled, so that nothing shows up in
    the test's output."""
    from tqdm import std

    bars: list[bool] = []
    original = std.tqdm.__init__

    def noting(self, *args, **kwargs):
        asked = kwargs.get("disable", args[9] if len(args) > 9 else False)
        bars.append(not asked)
        if len(args) > 9:
            args = args[:9] + (True,) + args[10:]
        else:
            kwargs["disable"] = True
        original(self, *args, **kwargs)

    printed = io.StringIO()
    std.tqdm.__init__ = noting
    try:
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
            extra = {} if progress is None else {"progress": progress}
            history = fit(model, train, val, loss_fn, optimizer, epochs, **extra)
    finally:
        std.tqdm.__init__ = original
    return {"history": history, "printed": printed.getvalue(), "bars": bars}


def _digits_run(X, y, order, n_val: int, seed: int):
    """A probe: loaders of the digits split by ``order`` (the first ``n_val`` for validation), a tanh network
    initialised from ``seed``, Adam and the loss, built where the learner's code runs."""
    dataset = TensorDataset(X, y)
    train = DataLoader(Subset(dataset, order[n_val:]), batch_size=32, shuffle=True,
                       generator=torch.Generator().manual_seed(seed))
    val = DataLoader(Subset(dataset, order[:n_val]), batch_size=64)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 10))
    return model, train, val, torch.optim.Adam(model.parameters(), lr=0.01), nn.CrossEntropyLoss()


def _run_fit(fit, epochs: int, seed: int, progress=None):
    model = probe(_noting_model, 6, 3, seed)
    X = torch.randn(34, 6, generator=torch.Generator().manual_seed(seed + 200))
    train, val = probe(_fit_loaders, X, _fit_label(X), seed)
    seen = probe(_fit_quietly, fit, model, train, val, probe(nn.CrossEntropyLoss), probe(_recorder, model, 0.1),
                 epochs, progress)
    history = seen["history"]
    if not isinstance(history, dict):
        fail(f"fit should return a dict of lists (the history); it returned {_what(history)}.", "wrong_return")
    missing = [key for key in _KEYS if key not in history]
    expect(not missing, f"the history has no {', '.join(repr(k) for k in missing)}; it needs the keys "
           "'train_loss', 'val_loss' and 'val_acc'.", "missing_keys")
    for key in _KEYS:
        values = history[key]
        if type(values) is not list:
            fail(f"history[{key!r}] should be a list; it is {_what(values)}.", "wrong_type")
        expect(len(values) == epochs, f"history[{key!r}] holds {len(values)} values after {epochs} epochs; "
               "expected one per epoch.", "wrong_length")
        for value in values:
            as_float(value, f"each value in history[{key!r}]")
    passes = [note for note in probe(_notes, model) if note["kind"] == "forward"]
    return history, passes, seen


def _measured(passes: list[dict]) -> tuple[float, float]:
    """The loss and accuracy these forward passes computed, means per sample."""
    total = right = count = 0.0
    for note in passes:
        logits, labels = _logits(note["params"], note["input"]), _fit_label(note["input"])
        total += F.cross_entropy(logits, labels).item() * len(labels)
        right += int((logits.argmax(1) == labels).sum())
        count += len(labels)
    return total / count, right / count


def _training_passes(passes):
    return [note for note in passes if note["training"] and note["recording"]]


def _validation_passes(passes):
    return [note for note in passes if len(note["input"]) in _VAL_SIZES]


def _blame_or_fail(objects: dict, other: str, what: str, message: str, code: str, fix: str = "") -> None:
    broken = failure_of(other, **objects)
    if broken is not None:
        blame("fit", what, other, broken)
    fail(message, code, fix=fix)


@checks.of("fit", rule="history")
def returns_a_history_of_one_float_per_epoch(fit, epochs=5, seed=0):
    _run_fit(fit, epochs, seed)


@checks.of("fit", rule="trains")
def trains_every_epoch_in_train_mode(fit, train_one_epoch, epochs=5, seed=0):
    _, passes, _ = _run_fit(fit, epochs, seed)
    training = [note for note in passes if len(note["input"]) in _TRAIN_SIZES and note["recording"]]
    if not all(note["training"] for note in training):
        _blame_or_fail(dict(train_one_epoch=train_one_epoch), "train_one_epoch", "fit trained some epochs in eval mode",
                       "some training steps ran in eval mode: after validating, the model stays in eval mode until "
                       "something switches it back.", "missing_train", fix="model.train() at the start of every epoch")
    expect(len(training) == epochs * 3, f"in {epochs} epochs the model ran {len(training)} training forward passes; "
           f"expected 3 per epoch, one per batch of the training loader.", "wrong_step_count")


@checks.of("fit", rule="validation")
def validates_after_every_epoch_in_eval_mode_without_a_graph(fit, evaluate, epochs=5, seed=0):
    _, passes, _ = _run_fit(fit, epochs, seed)
    validation = _validation_passes(passes)
    expect(len(validation) >= epochs * 3,
           f"the validation loader was used for {len(validation)} batches in {epochs} epochs; expected its 3 batches "
           f"after every epoch ({epochs * 3} in all).", "no_validation")
    if any(note["training"] for note in validation):
        _blame_or_fail(dict(evaluate=evaluate), "evaluate", "fit validated in train mode",
                       "validation ran in train mode, so dropout and batch norm would distort the numbers.",
                       "missing_eval", fix="model.eval() before measuring (as a right evaluate does)")
    if any(note["recording"] for note in validation):
        _blame_or_fail(dict(evaluate=evaluate), "evaluate", "fit validated with autograd recording",
                       "validation ran with autograd recording, building graphs nothing uses.", "missing_no_grad",
                       fix="measure inside torch.no_grad() (as a right evaluate does)")


@checks.of("fit", rule="train_loss")
def records_the_training_loss_of_each_epoch(fit, train_one_epoch, epochs=5, seed=0):
    history, passes, _ = _run_fit(fit, epochs, seed)
    training = _training_passes(passes)
    if len(training) != epochs * 3:
        fail(f"in {epochs} epochs the model ran {len(training)} training forward passes (train mode, recording); "
             "expected 3 per epoch, one per batch of the training loader.", "wrong_step_count")
    expected = [_measured(training[e * 3:(e + 1) * 3])[0] for e in range(epochs)]
    found = history["train_loss"]
    if all(math.isclose(f, e, rel_tol=1e-4, abs_tol=1e-6) for f, e in zip(found, expected)):
        return
    shown = (f"history['train_loss'] is {[round(v, 4) for v in found]}; the epochs' training batches gave "
             f"{[round(v, 4) for v in expected]} (mean per sample)")
    if all(math.isclose(f, v, rel_tol=1e-6, abs_tol=1e-9) for f, v in zip(found, history["val_loss"])):
        fail(f"{shown}. It holds the validation losses.", "train_loss_is_val_loss",
             fix="record what train_one_epoch returns as train_loss, and evaluate's loss as val_loss")
    _blame_or_fail(dict(train_one_epoch=train_one_epoch), "train_one_epoch", "fit's training loss is wrong",
                   f"{shown}: a measurement made after the epoch, or something other than the epoch's batches.",
                   "wrong_train_loss", fix="record the value train_one_epoch returns")


@checks.of("fit", rule="validation")
def records_the_validation_numbers_after_each_epoch(fit, evaluate, epochs=5, seed=0):
    history, passes, _ = _run_fit(fit, epochs, seed)
    validation = _validation_passes(passes)
    found = list(zip(history["val_loss"], history["val_acc"]))
    expected = None
    if len(validation) == epochs * 3:
        expected = [_measured(validation[e * 3:(e + 1) * 3]) for e in range(epochs)]

    def same(a, b):
        return math.isclose(a[0], b[0], rel_tol=1e-4, abs_tol=1e-6) and math.isclose(a[1], b[1], abs_tol=1e-6)

    objects = dict(evaluate=evaluate)
    if expected is not None and not all(same(f, e) for f, e in zip(found, expected)):
        _blame_or_fail(objects, "evaluate", "fit's validation loss or accuracy is wrong",
                       f"the recorded validation numbers {[(round(a, 4), round(b, 4)) for a, b in found]} are not "
                       f"what the validation passes gave, {[(round(a, 4), round(b, 4)) for a, b in expected]}.",
                       "wrong_history")
    # the last entry, judged by the trained model: validated after training, not before
    last_train = max((i for i, note in enumerate(passes) if note["training"] and note["recording"]), default=-1)
    after = [note for note in passes[last_train + 1:] if len(note["input"]) in _VAL_SIZES]
    final = _measured(after) if after else None
    if final is None or not same(found[-1], final):
        _blame_or_fail(objects, "evaluate", "fit's validation loss or accuracy is wrong",
                       f"the last recorded validation loss and accuracy are {number(found[-1][0])} and "
                       f"{number(found[-1][1])}, but the model after its last epoch of training scores "
                       + (f"{number(final[0])} and {number(final[1])}" if final else "something never measured")
                       + " on the validation loader: validate after each epoch's training.", "wrong_history")


@checks.of("fit", rule="silent")
def shows_nothing_unless_asked(fit, epochs=5, seed=0):
    _, _, seen = _run_fit(fit, epochs, seed)
    shown = sum(seen["bars"])
    expect(not shown and not seen["printed"].strip(),
           "called without progress=True, fit " + (f"showed {shown} progress bar{'s' if shown > 1 else ''}"
                                                   if shown else f"printed {seen['printed'].strip()[:80]!r}")
           + ": a loop that tests and other code call must stay silent unless asked.", "not_silent",
           fix="tqdm(..., disable=not progress)")


@checks.of("fit", rule="progress_bar")
def shows_a_progress_bar_when_asked(fit, epochs=5, seed=0):
    _, _, seen = _run_fit(fit, epochs, seed, progress=True)
    expect(any(seen["bars"]), "called with progress=True, fit showed no progress bar.", "no_progress",
           fix="wrap the epochs in tqdm(range(epochs), disable=not progress)")


# --- plot_history ---------------------------------------------------------------
#
# Rules of its text -> checks:
#   returns_figure  returns the matplotlib Figure (not None, not an Axes)   -> returns_the_figure
#   losses_left     the left axes: training and validation loss, one point per epoch, on the same axes
#                   -> draws_both_losses_on_the_left_axes
#   accuracy_right  the right axes: the validation accuracy per epoch     -> draws_the_accuracy_on_the_right_axes
#   labels          every axis that shows something labelled, x and y     -> labels_every_axis


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


def _figure_facts(plot_history, history) -> dict:
    """A probe: call plot_history, close every figure it opened (so none is shown), and describe what it
    returned: its kind and, for a Figure, each axes' place, labels and lines."""
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    before = set(plt.get_fignums())
    figure = None
    try:
        figure = plot_history(history)
        kind = ("figure" if isinstance(figure, Figure) else "axes" if isinstance(figure, Axes)
                else "none" if figure is None else type(figure).__name__)
        axes = []
        for ax in figure.axes if isinstance(figure, Figure) else []:
            box = ax.get_position()
            lines = []
            for line in ax.get_lines():
                try:
                    lines.append([float(v) for v in line.get_ydata()])
                except (TypeError, ValueError):
                    continue
            axes.append({"x0": float(box.x0), "xlabels": [other.get_xlabel() for other in
                                                         ax.get_shared_x_axes().get_siblings(ax)],
                         "ylabel": ax.get_ylabel(), "lines": lines})
        return {"kind": kind, "axes": axes}
    finally:
        for number_ in set(plt.get_fignums()) - before:
            plt.close(number_)
        if isinstance(figure, Figure):
            plt.close(figure)


def _figure(plot_history, epochs: int, seed: int):
    history = _history(epochs, seed)
    facts = probe(_figure_facts, plot_history, history)
    kind = facts["kind"]
    if kind == "none":
        fail("plot_history returned None: the figure was drawn (or shown) but not handed back, so the caller can "
             "neither save it nor look inside.", "no_figure", fix="end with `return fig`")
    if kind == "axes":
        fail("plot_history returned an Axes, one panel of the figure; the caller needs the whole Figure.",
             "not_a_figure", fix="return ax.figure, or the fig that plt.subplots returns")
    expect(kind == "figure", f"plot_history should return a matplotlib Figure; it returned a {kind}.", "not_a_figure")
    return history, facts["axes"]


def _shows(lines, values: list[float], scale: float = 1.0) -> bool:
    expected = torch.tensor(values, dtype=torch.float64) * scale
    return any(is_close(torch.tensor(line, dtype=torch.float64), expected, atol=1e-6, rtol=1e-5) for line in lines)


def _columns(axes):
    """The axes on the left (the smallest x position) and those to their right."""
    left = min(ax["x0"] for ax in axes)
    return [ax for ax in axes if ax["x0"] <= left + 1e-6], [ax for ax in axes if ax["x0"] > left + 1e-6]


@checks.of("plot_history", rule="returns_figure")
def returns_the_figure(plot_history, epochs=10, seed=0):
    _figure(plot_history, epochs, seed)


@checks.of("plot_history", rule="losses_left")
def draws_both_losses_on_the_left_axes(plot_history, epochs=10, seed=0):
    history, axes = _figure(plot_history, epochs, seed)
    expect(bool(axes), "the figure has no axes: nothing was drawn into it.", "too_few_axes")
    left, right = _columns(axes)
    on_left = [ax for ax in left if _shows(ax["lines"], history["train_loss"]) and _shows(ax["lines"],
                                                                                          history["val_loss"])]
    if on_left:
        return
    elsewhere = [key for key in ("train_loss", "val_loss") if any(_shows(ax["lines"], history[key]) for ax in right)]
    if elsewhere and not any(ax["lines"] for ax in left):
        fail(f"the left axes are empty, and the {' and '.join(elsewhere)} line{'s are' if len(elsewhere) > 1 else ' is'} "
             "on the axes to the right: plt.plot draws into the current axes, which is the last one created, not "
             "the one you meant.", "wrong_axes", fix="draw with the axes' own method: ax_left.plot(...)")
    if any(_shows(ax["lines"], history["train_loss"]) and _shows(ax["lines"], history["val_loss"]) for ax in right):
        fail("the training and the validation loss are drawn together, but on the axes to the right; the losses go "
             "on the left axes, the accuracy on the right.", "wrong_axes")
    missing = [key for key in ("train_loss", "val_loss") if not any(_shows(ax["lines"], history[key]) for ax in axes)]
    if missing:
        fail(f"no line of the figure shows history[{missing[0]!r}], one point per epoch.", "missing_curve",
             fix="draw each list with ax.plot")
    fail("the training and the validation loss are not drawn together on the left axes; on the same axes, the gap "
         "between them shows.", "losses_apart")


@checks.of("plot_history", rule="accuracy_right")
def draws_the_accuracy_on_the_right_axes(plot_history, epochs=10, seed=0):
    history, axes = _figure(plot_history, epochs, seed)
    left, right = _columns(axes) if axes else ([], [])
    expect(bool(right), f"the figure has {len(axes)} ax{'i' if len(axes) == 1 else 'e'}s in one column; the accuracy "
           "goes on axes of its own, to the right of the losses (their scales differ).", "too_few_axes",
           fix="plt.subplots(1, 2) makes two axes side by side")
    acc = history["val_acc"]
    if any(_shows(ax["lines"], acc) or _shows(ax["lines"], acc, 100.0) for ax in right):
        return
    if any(_shows(ax["lines"], acc) or _shows(ax["lines"], acc, 100.0) for ax in left):
        fail("the validation accuracy is drawn on the left axes, with the losses; it belongs on the axes to the "
             "right.", "wrong_axes")
    fail("no line on the right axes shows history['val_acc'], one point per epoch.", "missing_curve")


@checks.of("plot_history", rule="labels")
def labels_every_axis(plot_history, epochs=10, seed=0):
    _, axes = _figure(plot_history, epochs, seed)
    for index, ax in enumerate(axes):
        if not ax["lines"] and not ax["ylabel"]:
            continue
        has_x = any(label.strip() for label in ax["xlabels"])
        expect(has_x and bool(ax["ylabel"].strip()),
               f"axes {index + 1} of the figure lacks a label on its {'x' if not has_x else 'y'} axis (a label set "
               "with plt.xlabel or plt.ylabel goes to the last axes only).", "missing_labels",
               fix="ax.set_xlabel('epoch') and ax.set_ylabel(...) on every axes")


# --- predicted_higher_loss (predict, then run) ---------------------------------------------------
#
# Rules of its text -> checks:
#   a_choice      returns "train_loss" or "val_loss"   -> returns_a_string, names_one_of_the_two_losses
#   right_choice  the right one                        -> instructor: is_the_loss_that_is_higher

_CHOICES = ("train_loss", "val_loss")


def _choice(predicted_higher_loss):
    value = predicted_higher_loss()
    if not isinstance(value, str):
        fail(f"predicted_higher_loss() returned {_what(value)}; it should return your choice, the string "
             "\"train_loss\" or \"val_loss\".", "not_a_choice")
    return value


@checks.of("predicted_higher_loss", rule="a_choice")
def returns_a_string(predicted_higher_loss):
    _choice(predicted_higher_loss)


@checks.of("predicted_higher_loss", rule="a_choice")
def names_one_of_the_two_losses(predicted_higher_loss):
    value = _choice(predicted_higher_loss)
    expect(value in _CHOICES, f"predicted_higher_loss() returned {value!r}; the choices are \"train_loss\" and "
           "\"val_loss\", the two keys of the history.", "not_a_choice")


# --- standardized_loaders (repair) ------------------------------------------------------------
#
# The given version scales the features with the mean and the standard deviation of every sample, validation
# samples included, before it splits: what the validation samples hold leaks into the training inputs.
# Graded by behaviour on data of the check's, whose targets name the samples (y = 0, 1, ..., n - 1).
# Rules of its text -> checks:
#   same_split          the split and batches of make_loaders(X, y, ...) with the same arguments
#                       -> keeps_the_split_of_make_loaders
#   no_leak             the validation inputs are scaled with the training statistics; nothing of the validation
#                       samples reaches the training inputs
#                       -> keeps_the_validation_samples_out_of_the_training_inputs,
#                          instructor: scales_the_validation_inputs_with_the_training_statistics
#   train_standardized  every feature of the training inputs: mean 0, standard deviation 1
#                       -> standardizes_the_training_inputs


def _named_data(num_samples: int, num_features: int, seed: int):
    """Features of very different scales and centres, and targets that name the samples."""
    gen = torch.Generator().manual_seed(seed + 300)
    scales = torch.logspace(-1, 2, num_features)
    centres = torch.linspace(-5, 40, num_features)
    X = torch.randn(num_samples, num_features, generator=gen) * scales + centres
    return X, torch.arange(num_samples)


def _split_inputs(loaders, what: str) -> tuple[dict, dict, list[int]]:
    """{sample: its inputs} of the training and of the validation loader, and the validation batch sizes."""
    train, val = as_pair(loaders, what)
    found = []
    for name, loader in (("training loader", train), ("validation loader", val)):
        if not is_instance(loader, DataLoader):
            fail(f"{what} should return two DataLoaders; its {name} is {_what(loader)}.", "not_a_dataloader")
        rows, sizes = {}, []
        for batch in loader:
            if type(batch) not in (list, tuple) or len(batch) != 2:
                fail(f"each batch of the {name} should be a pair (inputs, targets); found {_what(batch)}.", "wrong_batch")
            inputs, targets = as_tensor(batch[0], "a batch's inputs"), as_tensor(batch[1], "a batch's targets")
            rows.update({int(t): x for t, x in zip(targets.tolist(), inputs)})
            sizes.append(len(targets))
        found.append((rows, sizes))
    return found[0][0], found[1][0], found[1][1]


def _standardized(standardized_loaders, X, y, batch_size, val_fraction, seed):
    return _split_inputs(standardized_loaders(X, y, batch_size=batch_size, val_fraction=val_fraction, seed=seed),
                         "standardized_loaders")


@checks.of("standardized_loaders", rule="same_split")
def keeps_the_split_of_make_loaders(standardized_loaders, make_loaders, num_samples=200, num_features=5,
                                    batch_size=32, val_fraction=0.2, seed=0):
    X, y = _named_data(num_samples, num_features, seed)
    train, val, sizes = _standardized(standardized_loaders, X, y, batch_size, val_fraction, seed)
    plain_train, plain_val, _ = _split_inputs(make_loaders(X, y, batch_size=batch_size, val_fraction=val_fraction,
                                                           seed=seed), "make_loaders")
    if set(train) == set(plain_train) and set(val) == set(plain_val):
        expect(all(size == batch_size for size in sizes[:-1]), f"the validation batches hold {sorted(set(sizes))} "
               f"samples; make_loaders makes batches of batch_size={batch_size}.", "wrong_batch_size")
        return
    broken = failure_of("make_loaders", make_loaders=make_loaders)
    if broken is not None:
        blame("standardized_loaders", "the split is not the one make_loaders makes", "make_loaders", broken)
    fail(f"standardized_loaders puts {len(set(val) ^ set(plain_val))} samples in another split than "
         f"make_loaders(X, y, ..., seed={seed}) does: same arguments, same split.", "wrong_split",
         fix="split with make_loaders, whose seed decides the split")


def _spread(rows: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    inputs = torch.stack(list(rows.values())).double()
    return inputs.mean(dim=0), inputs.std(dim=0), inputs.std(dim=0, correction=0)


@checks.of("standardized_loaders", rule="no_leak")
def keeps_the_validation_samples_out_of_the_training_inputs(standardized_loaders, num_samples=200, num_features=5,
                                                           batch_size=32, val_fraction=0.2, seed=0):
    X, y = _named_data(num_samples, num_features, seed)
    train, val, _ = _standardized(standardized_loaders, X, y, batch_size, val_fraction, seed)
    changed = X.clone()
    for sample in list(val)[:3]:
        changed[sample] = changed[sample] * 10 + 50  # three validation samples, far off
    again, _, _ = _standardized(standardized_loaders, changed, y, batch_size, val_fraction, seed)
    moved = [sample for sample in train if sample in again and not is_close(train[sample], again[sample], atol=1e-6)]
    expect(not moved, f"changing three validation samples changed the inputs of {len(moved)} of the "
           f"{len(train)} training samples: the scaling was computed with the validation samples in it, so what "
           "the model is graded on leaks into what it trains on.", "validation_leaks",
           fix="compute the mean and the standard deviation from the training samples alone")


@checks.of("standardized_loaders", rule="train_standardized")
def standardizes_the_training_inputs(standardized_loaders, num_samples=200, num_features=5, batch_size=32,
                                     val_fraction=0.2, seed=0):
    X, y = _named_data(num_samples, num_features, seed)
    train, _, _ = _standardized(standardized_loaders, X, y, batch_size, val_fraction, seed)
    mean, std, std_all = _spread(train)
    ones = torch.ones(num_features, dtype=torch.float64)
    expect(is_close(mean, torch.zeros(num_features), atol=1e-4)
           and (is_close(std, ones, atol=1e-3) or is_close(std_all, ones, atol=1e-3)),
           f"over the training samples, the features' means are {[round(v, 3) for v in mean.tolist()]} and their "
           f"standard deviations {[round(v, 3) for v in std.tolist()]}; expected 0 and 1 for every feature.",
           "not_standardized")


# --- training_settings (challenge) ------------------------------------------------------------
#
# Graded by outcome: the learner picks the batch size, learning rate and momentum; the check splits the
# digits with the learner's make_loaders, trains a network of its own (where the learner's code runs) with the
# learner's fit and SGD at those settings for SETTINGS_EPOCHS epochs, and measures the validation loss here.
# Rules of its text -> checks:
#   settings_form  a dict: batch_size an int of at least SETTINGS_MIN_BATCH, lr > 0, momentum in [0, 1)
#                  -> returns_a_batch_size_a_learning_rate_and_a_momentum
#   target         after SETTINGS_EPOCHS epoch(s), validation loss <= SETTINGS_TARGET
#                  -> reaches_the_target_within_the_epoch_budget (the notebook's split),
#                     instructor: reaches_the_target_on_a_split_it_never_saw
#   (relies on make_loaders, train_one_epoch, evaluate and fit: a broken one is named as the cause)

SETTINGS_EPOCHS = 1
_BUDGET = "one epoch" if SETTINGS_EPOCHS == 1 else f"{SETTINGS_EPOCHS} epochs"
SETTINGS_TARGET = 0.45
SETTINGS_MIN_BATCH = 8


def _settings(training_settings) -> tuple[int, float, float]:
    settings = training_settings()
    if not isinstance(settings, dict):
        fail(f"training_settings should return a dict; it returned {_what(settings)}.", "wrong_return")
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


def _challenge_setup(width: int, seed: int, lr: float, momentum: float):
    """A probe: the challenge's network (tanh, as the notebook's digits_network, initialised from ``seed``), plain
    SGD at the learner's settings, and the loss, built where the learner's code runs."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, width), nn.Tanh(), nn.Linear(width, 10))
    return model, torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum), nn.CrossEntropyLoss()


def settings_validation_loss(training_settings, make_loaders, fit, split_seed: int, width: int,
                             model_seed: int) -> float:
    """Train the challenge's network with the learner's settings, loaders and fit; its loss on the validation
    split, computed here from the trained parameters."""
    batch_size, lr, momentum = _settings(training_settings)
    X, y = load_digits()
    train_loader, val_loader = as_pair(make_loaders(X, y, batch_size=batch_size, val_fraction=0.2, seed=split_seed),
                                       "make_loaders")
    model, optimizer, loss_fn = probe(_challenge_setup, width, model_seed, lr, momentum)
    probe(_one_thread)
    probe(_fit_quietly, fit, model, train_loader, val_loader, loss_fn, optimizer, SETTINGS_EPOCHS)
    batches = list(val_loader)
    inputs = torch.cat([as_tensor(inputs, "a validation input") for inputs, _ in batches])
    targets = torch.cat([as_tensor(targets, "a validation target") for _, targets in batches])
    W1, b1, W2, b2 = probe(_parameters, model)
    return F.cross_entropy(F.linear(torch.tanh(F.linear(inputs, W1, b1)), W2, b2), targets).item()


def expect_settings_loss(loss: float, where: str, objects: dict) -> None:
    if loss <= SETTINGS_TARGET:
        return
    for other in ("make_loaders", "train_one_epoch", "evaluate", "fit"):
        broken = failure_of(other, **{other: objects[other]})
        if broken is not None:
            blame("training_settings", f"after {_BUDGET} the validation loss is {number(loss)}, "
                  f"above the target {SETTINGS_TARGET}, and that may not be your settings' fault: the run relies "
                  "on your own code,", other, broken)
    fail(f"after {_BUDGET} with your settings the validation loss {where} is {number(loss)}; the "
         f"target is at most {SETTINGS_TARGET}.", "below_target",
         fix="smaller batches take more steps per epoch; momentum and the learning rate decide how far each goes")


@checks.of("training_settings", rule="settings_form")
def returns_a_batch_size_a_learning_rate_and_a_momentum(training_settings):
    _settings(training_settings)


@checks.of("training_settings", rule="target")
def reaches_the_target_within_the_epoch_budget(training_settings, make_loaders, train_one_epoch, evaluate, fit,
                                               seed=0):
    loss = settings_validation_loss(training_settings, make_loaders, fit, split_seed=seed, width=32,
                                    model_seed=seed)
    expect_settings_loss(loss, "on the notebook's split", dict(make_loaders=make_loaders,
                                                               train_one_epoch=train_one_epoch, evaluate=evaluate,
                                                               fit=fit))
