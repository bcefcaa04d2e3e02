"""Checks for 09_capstone: a small CNN for the digits, its training, a confusion matrix, and the
challenge of a CNN under a budget.

Public checks test properties. The comparison with a reference (the confusion matrix of a known model)
and the challenge's held-out split live in ``autograder/checks/instructor/09_capstone.py``.
"""

from __future__ import annotations

import copy
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from autograder.checks._support import (
    as_pair,
    as_tensor,
    biggest_gap,
    data_sealed,
    blame,
    describe,
    expect_dtype,
    expect_shape,
    failure_of,
    instantiate,
    is_close,
    one_cpu_core,
    parameter_count,
    shape_text,
)
from autograder.data import load_digits
from autograder.registry import Checks
from autograder.results import CheckFailure, expect, fail

checks = Checks("09_capstone")

MAX_PARAMETERS = 50_000
TARGET_ACCURACY = 0.95
TIME_LIMIT_S = 60


def _images(num_samples: int, seed: int) -> torch.Tensor:
    """Random digit-like images (N, 1, 8, 8) with pixels in [0, 1]."""
    return torch.rand(num_samples, 1, 8, 8, generator=torch.Generator().manual_seed(seed))


# --- DigitsCNN -------------------------------------------------------------------------
#
# clause (text and contract)                                  -> check
# takes images (N, 1, 8, 8), not flat rows                    -> maps_images_N_by_1_by_8_by_8_to_10_logits
# returns raw logits (N, 10), no softmax                      -> maps_images_N_by_1_by_8_by_8_to_10_logits
# has an nn.Conv2d                                            -> has_a_Conv2d_layer
# the convolution carries the signal                          -> the_convolutions_carry_the_signal
# at most 50,000 parameters                                   -> has_at_most_50000_parameters
# flatten keeps the batch dimension (no sample mixing)        -> treats_each_image_on_its_own
# every layer is used (trainable end to end)                  -> passes_gradients_to_every_parameter


def _cnn(DigitsCNN, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return instantiate(DigitsCNN, what="DigitsCNN")


def _logits(model: nn.Module, images: torch.Tensor, what: str = "DigitsCNN") -> torch.Tensor:
    """model(images) for (N, 1, 8, 8) images, or a diagnosis of why the model cannot take them."""
    num_samples = images.shape[0]
    try:
        out = model(images)
    except RuntimeError as exc:
        try:
            with torch.no_grad():
                model(images.reshape(num_samples, 64))
        except Exception:
            raise exc from None
        fail(f"{what} raised `{exc}` on images of shape {shape_text(images.shape)}, yet accepts flat rows "
             f"({num_samples}, 64): it expects flattened pixels. It should take images (N, 1, 8, 8), like "
             "nn.Conv2d: reshape the data (X.reshape(-1, 1, 8, 8)) before it reaches the model.", "wrong_input_shape")
    out = as_tensor(out, f"{what}'s output")
    if out.dim() == 2 and out.shape[1] == 10 and out.shape[0] != num_samples:
        fail(f"for {num_samples} images {what} returned {out.shape[0]} rows of logits: the flatten before the "
             "Linear layer mixes samples (x.view(-1, k) with a k that is not the number of features per sample). "
             "Flatten with x.flatten(1) or nn.Flatten(), which keep the batch dimension.", "wrong_flatten")
    expect_shape(out, (num_samples, 10), f"{what}'s output", hint="One row of 10 logits per image.")
    return out


@checks.of("DigitsCNN")
def maps_images_N_by_1_by_8_by_8_to_10_logits(DigitsCNN, num_samples=6, seed=0):
    model = _cnn(DigitsCNN, seed)
    model.eval()
    with torch.no_grad():
        out = _logits(model, _images(num_samples, seed))
    if bool((out >= 0).all()) and is_close(out.sum(dim=1), torch.ones(num_samples), atol=1e-4):
        fail("each row of DigitsCNN's output sums to 1: the model ends with a softmax. Return raw logits; "
             "nn.CrossEntropyLoss applies log-softmax itself.", "softmax_in_model")


@checks.of("DigitsCNN")
def has_a_Conv2d_layer(DigitsCNN, seed=0):
    model = _cnn(DigitsCNN, seed)
    expect(any(isinstance(m, nn.Conv2d) for m in model.modules()),
           "DigitsCNN has no nn.Conv2d layer: it is still a multi-layer perceptron. Give it at least one "
           "convolution over the (N, 1, 8, 8) images.", "missing_conv2d")


def expect_convolutions_carry_the_signal(model: nn.Module, images: torch.Tensor, what: str) -> None:
    """Switching every Conv2d off (weights and biases zero) must change the logits materially: the
    convolutions carry the image to the output, they are not a decoration beside it."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        fail(f"{what} has no nn.Conv2d layer: it is a multi-layer perceptron, not a convolutional network.",
             "missing_conv2d")
    model = copy.deepcopy(model)
    model.eval()
    images = images.to(next(model.parameters(), torch.empty(0)).device)  # a learner's model may live on a GPU
    with torch.no_grad():
        before = _logits(model, images, what)
        for conv in (m for m in model.modules() if isinstance(m, nn.Conv2d)):
            conv.weight.zero_()
            if conv.bias is not None:
                conv.bias.zero_()
        after = _logits(model, images, what)
    spread = float(before.std(dim=0).mean())  # how much the logits vary from image to image
    change = float((after - before).abs().mean())
    expect(spread > 0 and change >= 0.1 * spread,
           f"switching off every Conv2d of {what} (weights and biases set to zero) changes its logits by "
           f"{change:.3g} on average, while they vary by {spread:.3g} from image to image: the convolutions do "
           "not carry the signal, the image reaches the output some other way. Feed the convolutions' output "
           "into the layers that produce the logits.", "conv_not_used")


@checks.of("DigitsCNN")
def the_convolutions_carry_the_signal(DigitsCNN, num_samples=6, seed=0):
    expect_convolutions_carry_the_signal(_cnn(DigitsCNN, seed), _images(max(num_samples, 4), seed + 3), "DigitsCNN")


@checks.of("DigitsCNN")
def has_at_most_50000_parameters(DigitsCNN, seed=0):
    _expect_at_most(_cnn(DigitsCNN, seed), MAX_PARAMETERS, "DigitsCNN")


def _expect_at_most(model: nn.Module, limit: int, what: str) -> None:
    found = parameter_count(model)
    biggest = max(((name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)),
                  key=lambda item: item[1].weight.numel(), default=None)
    hint = ""
    if biggest is not None and biggest[1].weight.numel() > found / 2:
        hint = (f" Most of them sit in {biggest[0] or 'the'} Linear({biggest[1].in_features}, "
                f"{biggest[1].out_features}): pool (nn.MaxPool2d) before flattening, or use fewer channels.")
    expect(found <= limit, f"{what} has {found:,} parameters; the limit is {limit:,}.{hint}", "too_many_parameters")


@checks.of("DigitsCNN")
def treats_each_image_on_its_own(DigitsCNN, num_samples=6, seed=0):
    model = _cnn(DigitsCNN, seed)
    model.eval()
    images = _images(num_samples, seed + 1)
    with torch.no_grad():
        batch = _logits(model, images)
        singles = torch.cat([_logits(model, images[i:i + 1]) for i in range(num_samples)])
    expect(is_close(batch, singles, atol=1e-4),
           f"in eval mode an image's logits depend on the other images in its batch (by up to "
           f"{biggest_gap(batch, singles):.3g}): somewhere a reshape mixes samples. Keep the batch dimension first "
           "and flatten with x.flatten(1).", "wrong_flatten")


@checks.of("DigitsCNN")
def passes_gradients_to_every_parameter(DigitsCNN, num_samples=6, seed=0):
    model = _cnn(DigitsCNN, seed)
    model.train()
    out = _logits(model, _images(num_samples, seed + 2))
    F.cross_entropy(out, torch.arange(num_samples) % 10).backward()
    missing = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    expect(not missing, f"no gradient reached {', '.join(missing[:3])}: that layer is not used in forward, or its "
           "output is detached.", "detached")


def _blame_DigitsCNN(DigitsCNN, what_happened: str) -> None:
    """When DigitsCNN fails its own public checks, name it as the likely cause of train_digits' failure."""
    failure = failure_of("DigitsCNN", DigitsCNN=DigitsCNN)
    if failure is not None:
        blame("train_digits", what_happened, "DigitsCNN", failure)


# --- train_digits -----------------------------------------------------------------------
#
# clause (text and contract)                                  -> check
# returns (model, history); model a DigitsCNN                 -> returns_a_DigitsCNN_and_one_history_entry_per_epoch
# history as fit returns it: lists of length `epochs`         -> returns_a_DigitsCNN_and_one_history_entry_per_epoch
# seeds PyTorch with `seed`: same seed, same model            -> same_seed_same_model_other_seed_other_model
# another seed, another model (split and weights)             -> same_seed_same_model_other_seed_other_model
# trains on the training split only (validation held out)     -> validation_labels_never_reach_the_model
# images reshaped to (N, 1, 8, 8), not transposed             -> reaches_95_percent_validation_accuracy_in_20_epochs
# >= 95% on the validation split of make_loaders(seed)        -> reaches_95_percent_validation_accuracy_in_20_epochs
#   (hidden: another seed, so another split and other weights)
# the history describes the returned model                    -> reaches_95_percent_validation_accuracy_in_20_epochs
# finishes within the graded cell's time                      -> reaches_95_percent_validation_accuracy_in_20_epochs


def _train(train_digits, DigitsCNN, epochs, seed):
    """Call train_digits and return (model, history, seconds) after checking their form."""
    started = time.perf_counter()
    try:
        result = train_digits(epochs=epochs, seed=seed) if epochs is not None else train_digits(seed=seed)
    except (CheckFailure, NotImplementedError):
        raise
    except Exception as exc:
        text = str(exc)
        if isinstance(exc, RuntimeError) and ("channels" in text or "4D" in text or "3D" in text):
            fail(f"training raised `{text[:200]}`. nn.Conv2d takes batches of images shaped (N, 1, 8, 8): "
                 "reshape the digits with X.reshape(-1, 1, 8, 8) before making the loaders.", "wrong_input_shape")
        _blame_DigitsCNN(DigitsCNN, f"train_digits raised {type(exc).__name__} ({text[:200]})")
        raise
    seconds = time.perf_counter() - started
    model, history = as_pair(result, "train_digits")
    if not isinstance(model, DigitsCNN if isinstance(DigitsCNN, type) else nn.Module):
        fail(f"train_digits should return the trained DigitsCNN first; it returned {describe(model)}.",
             "wrong_return")
    if type(history) is not dict:
        fail(f"the history should be the dict that fit returns; it is {describe(history)}.", "wrong_return")
    count = epochs if epochs is not None else 20
    for key in ("train_loss", "val_loss", "val_acc"):
        values = history.get(key)
        if type(values) is not list:
            fail(f"history[{key!r}] should be a list with one value per epoch; found {describe(values)}.",
                 "wrong_history")
        expect(len(values) == count,
               f"history[{key!r}] holds {len(values)} values after train_digits(epochs={count}); expected {count}.",
               "wrong_history")
        for value in values:
            if type(value) not in (float, int):
                fail(f"history[{key!r}] holds {describe(value)}; expected Python numbers.", "wrong_history")
    return model, history, seconds


def _validation_images(make_loaders, seed):
    images, labels = load_digits()
    _, val_loader = make_loaders(images.reshape(-1, 1, 8, 8), labels, seed=seed)
    inputs, targets = zip(*val_loader)
    return torch.cat(inputs), torch.cat(targets)


def _validation_indices(make_loaders, seed) -> torch.Tensor:
    """Which samples of the digits make_loaders(..., seed=seed) holds out for validation."""
    count = len(load_digits()[1])
    index = torch.arange(count)
    with torch.random.fork_rng(devices=[]):  # iterating a loader draws from the global generator
        _, val_loader = make_loaders(index.float(), index, seed=seed)
        return torch.cat([targets for _, targets in val_loader])


def _accuracy(model, inputs, targets) -> float:
    """Accuracy of a copy of the model in eval mode, on whichever device the model was trained."""
    model = copy.deepcopy(model)
    model.eval()
    device = next(model.parameters(), torch.empty(0)).device
    with torch.no_grad():
        predictions = model(inputs.to(device)).argmax(dim=1).cpu()
    return float((predictions == targets).float().mean())


def _same_model(a: nn.Module, b: nn.Module) -> bool:
    first, second = a.state_dict(), b.state_dict()
    return list(first) == list(second) and all(
        torch.equal(first[key].cpu(), second[key].cpu()) for key in first)


@checks.of("train_digits")
def returns_a_DigitsCNN_and_one_history_entry_per_epoch(train_digits, DigitsCNN, epochs=2, seed=0):
    _train(train_digits, DigitsCNN, epochs, seed)


@checks.of("train_digits")
def same_seed_same_model_other_seed_other_model(train_digits, DigitsCNN, seed=0):
    first = _train(train_digits, DigitsCNN, 1, seed)[0]
    torch.manual_seed(seed + 12345)  # whatever the global state was, the seed inside must decide
    again = _train(train_digits, DigitsCNN, 1, seed)[0]
    expect(_same_model(first, again),
           f"two calls of train_digits(epochs=1, seed={seed}) returned models with different weights: the run "
           "depends on PyTorch's random state before the call. Call torch.manual_seed(seed) first, before the "
           "model, the loaders or anything else random is made.", "not_seeded")
    other = _train(train_digits, DigitsCNN, 1, seed + 1)[0]
    expect(not _same_model(first, other),
           f"train_digits(epochs=1, seed={seed}) and train_digits(epochs=1, seed={seed + 1}) returned the same "
           "model: the seed is ignored. Use it for torch.manual_seed and for make_loaders.", "seed_ignored")


def _poison(labels: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    labels = labels.clone()
    labels[positions] = (labels[positions] + 1 + positions % 9) % 10
    return labels


class _PoisonedValidation:
    """While active, the validation labels are wrong wherever train_digits gets them: load_digits() returns
    the digits with the labels of make_loaders' validation samples changed, and the notebook's make_loaders
    changes the labels of the samples it holds out."""

    def __init__(self, train_digits, make_loaders, validation: torch.Tensor):
        self.validation, self.real_make_loaders, self.calls = validation, make_loaders, 0
        self.learner_globals = getattr(train_digits, "__globals__", None)

    def load_digits(self):
        self.calls += 1
        images, labels = load_digits()
        return images, _poison(labels, self.validation)

    def make_loaders(self, X, y, *args, **kwargs):
        self.calls += 1
        index = torch.arange(len(y))
        with torch.random.fork_rng(devices=[]):  # iterating a loader draws from the global generator
            _, val_loader = self.real_make_loaders(index.float(), index, *args, **kwargs)
            held_out = torch.cat([targets for _, targets in val_loader])
        return self.real_make_loaders(X, _poison(y, held_out), *args, **kwargs)

    def __enter__(self):
        import autograder.data as data

        self.saved = [(data.__dict__, "load_digits", data.load_digits)]
        if isinstance(self.learner_globals, dict):
            self.saved += [(self.learner_globals, name, self.learner_globals[name])
                           for name in ("load_digits", "make_loaders") if name in self.learner_globals]
        for owner, name, _ in self.saved:
            owner[name] = getattr(self, name)
        return self

    def __exit__(self, *exc):
        for owner, name, value in self.saved:
            owner[name] = value


@checks.of("train_digits")
def validation_labels_never_reach_the_model(train_digits, DigitsCNN, make_loaders, seed=0):
    clean = _train(train_digits, DigitsCNN, 1, seed)[0]
    with _PoisonedValidation(train_digits, make_loaders, _validation_indices(make_loaders, seed)) as poisoned:
        changed = _train(train_digits, DigitsCNN, 1, seed)[0]
    if poisoned.calls == 0:
        fail("train_digits called neither load_digits() nor make_loaders, so the check cannot follow which "
             "samples it trains on. Load the digits with load_digits() and split them with make_loaders.",
             "data_not_loaded")
    if _same_model(clean, changed):
        return
    again = _train(train_digits, DigitsCNN, 1, seed)[0]
    expect(_same_model(clean, again),
           f"two calls of train_digits(epochs=1, seed={seed}) returned models with different weights: call "
           "torch.manual_seed(seed) first, before the model or the loaders are made.", "not_seeded")
    fail("when the labels of the validation samples (those make_loaders holds out) are changed, train_digits "
         "returns another model: the validation split reaches training. Train on the training loader only (fit "
         "does), and let the validation loader only measure.", "trains_on_validation")


@checks.of("train_digits")
def reaches_95_percent_validation_accuracy_in_20_epochs(train_digits, DigitsCNN, make_loaders, seed=0):
    model, history, seconds = _train(train_digits, DigitsCNN, None, seed)
    expect(seconds < TIME_LIMIT_S,
           f"train_digits() took {seconds:.0f} s; it must finish in under {TIME_LIMIT_S} s (graded cells are stopped "
           "after 60 s). Use a smaller network, a larger batch or a larger learning rate.", "too_slow")
    inputs, targets = _validation_images(make_loaders, seed)
    accuracy = _accuracy(model, inputs, targets)
    if accuracy < TARGET_ACCURACY:
        transposed = _accuracy(model, inputs.transpose(2, 3), targets)
        if transposed >= TARGET_ACCURACY and transposed > accuracy + 0.1:
            fail(f"the trained model recognises {accuracy:.1%} of the validation images, but {transposed:.1%} of "
                 "the same images transposed: it was trained on digits with rows and columns swapped. Reshape "
                 "with X.reshape(-1, 1, 8, 8), without transposing.", "wrong_reshape")
        found = (f"after 20 epochs the model classifies {accuracy:.1%} of the validation split of "
                 f"make_loaders(..., seed={seed}) correctly; expected at least {TARGET_ACCURACY:.0%}.")
        _blame_DigitsCNN(DigitsCNN, found.rstrip("."))
        fail(f"{found} Check the learning rate, the optimizer and the batch size, and that training uses the "
             "training loader.", "low_accuracy")
    reported = history["val_acc"][-1]
    expect(abs(reported - accuracy) <= 0.05,
           f"the history's final val_acc is {reported:.3f}, but the returned model classifies {accuracy:.1%} of the "
           "validation split correctly: the history does not describe the model that was returned.",
           "history_mismatch")


# --- confusion_matrix ---------------------------------------------------------------------
#
# clause (text and contract)                                  -> check
# long tensor (C, C), even for classes that never occur       -> counts_true_classes_in_rows_and_predictions_in_columns
# rows true classes, columns predictions                      -> counts_true_classes_in_rows_and_predictions_in_columns
# every sample counted once, every batch (sum = N)            -> counts_true_classes_in_rows_and_predictions_in_columns
#   (repeated pairs in a batch, a ragged last batch)
# predictions in eval mode                                    -> counts_true_classes_in_rows_and_predictions_in_columns
# predictions without a graph                                 -> predicts_without_building_a_graph
# predictions are the arg-max of the logits                   -> instructor: matches_the_counts_of_a_trained_model
#
# The public checks use a probe whose predictions are known by construction: each image carries, in its
# first pixel, the class the probe predicts for it in eval mode (in train mode it predicts the next class).
# The expected matrix is drawn first and the samples are made from it, so nothing here counts pairs.


class _EncodedProbe(nn.Module):
    """Predicts the class written in each image's first pixel (eval mode) or the next one (train mode),
    and remembers how it was called."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.num_classes = num_classes
        self.scale = nn.Parameter(torch.tensor(4.0))
        self.calls: list[tuple[bool, bool]] = []

    def forward(self, x):
        self.calls.append((self.training, torch.is_grad_enabled()))
        classes = x[:, 0, 0, 0].round().long()
        if self.training:
            classes = (classes + 1) % self.num_classes
        logits = F.one_hot(classes, self.num_classes).to(x.dtype) * self.scale
        return logits + x[:, 0, 1:2, 0] * 0.01  # a little noise that never changes the arg-max


def _known_matrix(num_classes: int, seed: int, batch_size: int):
    """A probe, a loader, and the matrix the loader's samples must give: (true, predicted) pairs drawn as a
    matrix first. The last class never occurs (its row and column stay zero), pairs repeat within batches,
    and the last batch is ragged."""
    gen = torch.Generator().manual_seed(seed)
    expected = torch.randint(0, 4, (num_classes, num_classes), generator=gen)
    expected[-1, :] = 0
    expected[:, -1] = 0
    expected[0, 0] += 3  # at least one pair that repeats
    if int(expected.sum()) % batch_size == 0:
        expected[0, 0] += 1
    cells = torch.arange(num_classes * num_classes).repeat_interleave(expected.flatten())
    cells = cells[torch.randperm(len(cells), generator=gen)]
    truth, predicted = cells // num_classes, cells % num_classes
    images = torch.rand(len(cells), 1, 8, 8, generator=gen)
    images[:, 0, 0, 0] = predicted.float()
    loader = DataLoader(TensorDataset(images, truth), batch_size=batch_size, shuffle=False)
    return _EncodedProbe(num_classes), loader, expected


def _matrix(confusion_matrix, model, loader, num_classes: int) -> torch.Tensor:
    matrix = as_tensor(confusion_matrix(model, loader, num_classes=num_classes),
                       "confusion_matrix(model, loader, num_classes)")
    if matrix.dim() == 2 and matrix.shape[0] == matrix.shape[1] and matrix.shape[0] < num_classes:
        fail(f"the matrix is {shape_text(matrix.shape)} for num_classes={num_classes}: it only covers the classes "
             "that occur in the data. Make it (num_classes, num_classes) whatever the data holds.", "wrong_shape")
    expect_shape(matrix, (num_classes, num_classes), "the confusion matrix")
    return matrix


@checks.of("confusion_matrix")
def counts_true_classes_in_rows_and_predictions_in_columns(confusion_matrix, num_classes=10, batch_size=8, seed=0):
    model, loader, expected = _known_matrix(num_classes, seed, batch_size)
    model.train()
    matrix = _matrix(confusion_matrix, model, loader, num_classes)
    expect(bool(model.calls), "confusion_matrix never called the model.", "model_not_called")
    if any(training for training, _ in model.calls):
        fail("confusion_matrix ran the model in train mode: dropout would be active and batch norm would use the "
             "statistics of each batch, so the counts would change from call to call. Call model.eval() before "
             "predicting.", "missing_eval")
    num_samples = int(expected.sum())
    total = float(matrix.double().sum())
    if total != num_samples:
        last_batch = num_samples - (len(loader) - 1) * batch_size
        if total == last_batch:
            fail(f"the matrix counts {total:g} samples, the size of the last batch, instead of {num_samples}: it is "
                 "rebuilt for every batch. Create it once, before the loop, and add every batch to it.",
                 "wrong_total")
        if total < num_samples and bool((matrix.double() <= expected.double()).all()):
            fail(f"the matrix counts {total:g} samples instead of {num_samples}, and every entry is at most the "
                 "right count: a (true, predicted) pair that occurs several times in one batch was counted once. "
                 "`matrix[targets, predictions] += 1` does that; count every pair.", "duplicates_not_accumulated")
        fail(f"the entries of the matrix sum to {total:g}; the loader holds {num_samples} samples, and each should "
             "be counted exactly once.", "wrong_total")
    if not is_close(matrix, expected, atol=0, rtol=0):
        if is_close(matrix, expected.T, atol=0, rtol=0):
            fail("the matrix is transposed: rows should be the true classes and columns the predictions, "
                 "matrix[true, predicted]. Yours counts matrix[predicted, true].", "transposed")
        fail(f"{int((matrix != expected).sum())} of the {num_classes * num_classes} entries differ from the counts of "
             "(true class, arg-max prediction) pairs.", "wrong_counts")
    expect_dtype(matrix, torch.long, "the confusion matrix")


@checks.of("confusion_matrix")
def predicts_without_building_a_graph(confusion_matrix, num_classes=10, batch_size=8, seed=0):
    model, loader, _ = _known_matrix(num_classes, seed, batch_size)
    model.eval()
    confusion_matrix(model, loader, num_classes=num_classes)
    expect(bool(model.calls), "confusion_matrix never called the model.", "model_not_called")
    expect(not any(grad for _, grad in model.calls),
           "confusion_matrix ran the model with gradient tracking on, recording a graph that is never used. "
           "Predict inside `with torch.no_grad():`.", "missing_no_grad")


# --- challenge: train_small_cnn -----------------------------------------------------------
#
# clause (text)                                               -> check
# returns an nn.Module: images (N, 1, 8, 8) to logits (N, 10) -> reaches_the_target_within_the_budgets
# a CNN: its convolutions carry the signal                    -> reaches_the_target_within_the_budgets
# at most CHALLENGE_PARAMETERS parameters                     -> reaches_the_target_within_the_budgets
# trains only on the samples it receives                      -> reaches_the_target_within_the_budgets (data sealed)
# at least CHALLENGE_ACCURACY on held-out digits              -> reaches_the_target_within_the_budgets (visible split)
#                                                                instructor: ..._on_the_graders_split (hidden split)
# at most CHALLENGE_CPU_SECONDS of CPU time on one core       -> both (CPU time of the call, one PyTorch thread)

CHALLENGE_PARAMETERS = 2_000
CHALLENGE_ACCURACY = 0.95
CHALLENGE_CPU_SECONDS = 10.0


def challenge_outcome(train_small_cnn, seed: int, val_fraction: float, where: str) -> None:
    """Train the learner's design on part of the digits and measure it on the rest."""
    images, labels = load_digits()
    images = images.reshape(-1, 1, 8, 8)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    held_out, training = order[:round(val_fraction * len(labels))], order[round(val_fraction * len(labels)):]
    with data_sealed(train_small_cnn, "train_small_cnn"), one_cpu_core() as clock:
        model = train_small_cnn(images[training].clone(), labels[training].clone())
        seconds = clock["seconds"]()
    if not isinstance(model, nn.Module):
        fail(f"train_small_cnn should return the trained model, an nn.Module; it returned {describe(model)}.",
             "wrong_return")
    _expect_at_most(model, CHALLENGE_PARAMETERS, "your model")
    expect_convolutions_carry_the_signal(model, images[held_out[:16]], "your model")
    accuracy = _accuracy(model, images[held_out], labels[held_out])
    expect(accuracy >= CHALLENGE_ACCURACY,
           f"your model classifies {accuracy:.1%} of {len(held_out)} held-out digits ({where}) correctly; the target "
           f"is {CHALLENGE_ACCURACY:.0%}.", "below_target")
    expect(seconds <= CHALLENGE_CPU_SECONDS,
           f"training used {seconds:.1f} s of CPU time on one core; the budget is {CHALLENGE_CPU_SECONDS:g} s. Fewer "
           "epochs, a larger batch or a larger learning rate.", "over_time_budget")


@checks.of("train_small_cnn")
def reaches_the_target_within_the_budgets(train_small_cnn, seed=0):
    challenge_outcome(train_small_cnn, seed, 0.2, f"the validation split of make_loaders(..., seed={seed})")
