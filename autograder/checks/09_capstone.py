"""Checks for 09_capstone: a small CNN for the digits, its training, and a confusion matrix."""

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
    describe,
    expect_dtype,
    expect_shape,
    instantiate,
    is_close,
    parameter_count,
    shape_text,
)
from autograder.data import load_digits
from autograder.registry import Checks
from autograder.results import expect, fail

checks = Checks("09_capstone")

MAX_PARAMETERS = 50_000
TARGET_ACCURACY = 0.95
TIME_LIMIT_S = 60


def _images(num_samples: int, seed: int) -> torch.Tensor:
    """Random digit-like images (N, 1, 8, 8) with pixels in [0, 1]."""
    return torch.rand(num_samples, 1, 8, 8, generator=torch.Generator().manual_seed(seed))


# --- DigitsCNN -------------------------------------------------------------------------


def _cnn(DigitsCNN, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return instantiate(DigitsCNN, what="DigitsCNN")


def _logits(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
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
        fail(f"DigitsCNN raised `{exc}` on images of shape {shape_text(images.shape)}, yet accepts flat rows "
             f"({num_samples}, 64): it expects flattened pixels. DigitsCNN takes images (N, 1, 8, 8), like "
             "nn.Conv2d: reshape the data (X.reshape(-1, 1, 8, 8)) before it reaches the model.", "wrong_input_shape")
    out = as_tensor(out, "DigitsCNN()(images)")
    if out.dim() == 2 and out.shape[1] == 10 and out.shape[0] != num_samples:
        fail(f"for {num_samples} images DigitsCNN returned {out.shape[0]} rows of logits: the flatten before the "
             "Linear layer mixes samples (x.view(-1, k) with a k that is not the number of features per sample). "
             "Flatten with x.flatten(1) or nn.Flatten(), which keep the batch dimension.", "wrong_flatten")
    expect_shape(out, (num_samples, 10), "DigitsCNN()(images)", hint="One row of 10 logits per image.")
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
           "DigitsCNN has no nn.Conv2d layer: it is still a multi-layer perceptron. Start with a convolution such "
           "as nn.Conv2d(1, 16, kernel_size=3, padding=1).", "missing_conv2d")


@checks.of("DigitsCNN")
def has_at_most_50000_parameters(DigitsCNN, seed=0):
    model = _cnn(DigitsCNN, seed)
    found = parameter_count(model)
    biggest = max(((name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)),
                  key=lambda item: item[1].weight.numel(), default=None)
    hint = ""
    if biggest is not None and biggest[1].weight.numel() > found / 2:
        hint = (f" Most of them sit in {biggest[0] or 'the'} Linear({biggest[1].in_features}, "
                f"{biggest[1].out_features}): pool (nn.MaxPool2d) before flattening, or use fewer channels.")
    expect(found <= MAX_PARAMETERS, f"DigitsCNN has {found:,} parameters; the limit is {MAX_PARAMETERS:,}.{hint}",
           "too_many_parameters")


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


# --- train_digits -----------------------------------------------------------------------


def _train(train_digits, DigitsCNN, epochs, seed):
    """Call train_digits and return (model, history, seconds) after checking their form."""
    started = time.perf_counter()
    try:
        result = train_digits(epochs=epochs, seed=seed) if epochs is not None else train_digits(seed=seed)
    except RuntimeError as exc:
        text = str(exc)
        if "channels" in text or "4D" in text or "3D" in text:
            fail(f"training raised `{text[:200]}`. nn.Conv2d takes batches of images shaped (N, 1, 8, 8): "
                 "reshape the digits with X.reshape(-1, 1, 8, 8) before making the loaders.", "wrong_input_shape")
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


def _accuracy(model, inputs, targets) -> float:
    """Accuracy of a copy of the model in eval mode, on whichever device the model was trained."""
    model = copy.deepcopy(model)
    model.eval()
    device = next(model.parameters(), torch.empty(0)).device
    with torch.no_grad():
        predictions = model(inputs.to(device)).argmax(dim=1).cpu()
    return float((predictions == targets).float().mean())


@checks.of("train_digits")
def returns_a_DigitsCNN_and_one_history_entry_per_epoch(train_digits, DigitsCNN, epochs=2, seed=0):
    _train(train_digits, DigitsCNN, epochs, seed)


@checks.of("train_digits")
def reaches_95_percent_validation_accuracy_in_20_epochs(train_digits, DigitsCNN, make_loaders, seed=0):
    model, history, seconds = _train(train_digits, DigitsCNN, None, seed)
    expect(seconds < TIME_LIMIT_S,
           f"train_digits() took {seconds:.0f} s; it must finish in under {TIME_LIMIT_S} s (graded cells are stopped "
           "after 60 s). Use a smaller network, a larger batch (128) or a larger learning rate.", "too_slow")
    inputs, targets = _validation_images(make_loaders, seed)
    accuracy = _accuracy(model, inputs, targets)
    if accuracy < TARGET_ACCURACY:
        transposed = _accuracy(model, inputs.transpose(2, 3), targets)
        if transposed >= TARGET_ACCURACY and transposed > accuracy + 0.1:
            fail(f"the trained model recognises {accuracy:.1%} of the validation images, but {transposed:.1%} of "
                 "the same images transposed: it was trained on digits with rows and columns swapped. Reshape "
                 "with X.reshape(-1, 1, 8, 8), without transposing.", "wrong_reshape")
        fail(f"after 20 epochs the model classifies {accuracy:.1%} of the validation split of "
             f"make_loaders(..., seed={seed}) correctly; expected at least {TARGET_ACCURACY:.0%}. Check the learning "
             "rate and the optimizer, and that training uses the training loader.", "low_accuracy")
    reported = history["val_acc"][-1]
    expect(abs(reported - accuracy) <= 0.05,
           f"the history's final val_acc is {reported:.3f}, but the returned model classifies {accuracy:.1%} of the "
           "validation split correctly: the history does not describe the model that was returned.",
           "history_mismatch")


# --- confusion_matrix ---------------------------------------------------------------------


class _ImageProbe(nn.Module):
    """A small image classifier with batch norm and dropout that remembers how it was called."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.hidden = nn.Linear(64, 24)
        self.norm = nn.BatchNorm1d(24)
        self.drop = nn.Dropout(0.5)
        self.out = nn.Linear(24, num_classes)
        self.calls: list[tuple[bool, bool]] = []

    def forward(self, x):
        self.calls.append((self.training, torch.is_grad_enabled()))
        return self.out(self.drop(F.relu(self.norm(self.hidden(x.flatten(1))))))


def _probe_and_loader(num_samples: int, num_classes: int, seed: int, batch_size: int = 8):
    torch.manual_seed(seed)
    model = _ImageProbe(num_classes)
    with torch.no_grad():
        # The last class is never the true class nor a prediction: the matrix must still have num_classes rows.
        model.out.bias[-1] = -1e4
    gen = torch.Generator().manual_seed(seed + 1)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(16, 1, 8, 8, generator=gen) * 2)
    model.calls.clear()
    images = torch.rand(num_samples, 1, 8, 8, generator=gen)
    labels = torch.randint(0, num_classes - 1, (num_samples,), generator=gen)
    loader = DataLoader(TensorDataset(images, labels), batch_size=batch_size, shuffle=False)
    return model, loader


def _reference(model: _ImageProbe, loader, num_classes: int):
    """The right matrix, and what counting each batch's distinct pairs only once would give."""
    was = model.training
    model.eval()
    right = torch.zeros(num_classes, num_classes, dtype=torch.long)
    deduplicated = torch.zeros_like(right)
    with torch.no_grad():
        for inputs, targets in loader:
            predictions = model(inputs).argmax(dim=1)
            for t, p in zip(targets.tolist(), predictions.tolist()):
                right[t, p] += 1
            for t, p in {(t, p) for t, p in zip(targets.tolist(), predictions.tolist())}:
                deduplicated[t, p] += 1
    model.train(was)
    model.calls.clear()
    return right, deduplicated


@checks.of("confusion_matrix")
def counts_true_classes_in_rows_and_predictions_in_columns(confusion_matrix, num_samples=50, num_classes=10,
                                                           seed=0):
    model, loader = _probe_and_loader(num_samples, num_classes, seed)
    expected, deduplicated = _reference(model, loader, num_classes)
    model.train()
    matrix = as_tensor(confusion_matrix(model, loader, num_classes=num_classes),
                       "confusion_matrix(model, loader, num_classes)")
    if matrix.dim() == 2 and matrix.shape[0] == matrix.shape[1] and matrix.shape[0] < num_classes:
        fail(f"the matrix is {shape_text(matrix.shape)} for num_classes={num_classes}: it only covers the classes that "
             "occur in the data. Make it (num_classes, num_classes) from the start, e.g. "
             "torch.zeros(num_classes, num_classes, dtype=torch.long).", "wrong_shape")
    expect_shape(matrix, (num_classes, num_classes), "the confusion matrix")
    if any(training for training, _ in model.calls):
        fail("confusion_matrix ran the model in train mode: dropout was active and batch norm used the statistics "
             "of each batch, so the counts change from call to call. Call model.eval() before predicting.",
             "missing_eval")
    total = float(matrix.double().sum())
    if total != num_samples:
        last_batch = num_samples - (len(loader) - 1) * loader.batch_size
        if is_close(matrix, deduplicated, atol=0, rtol=0):
            fail(f"the matrix counts {total:g} samples instead of {num_samples}: `matrix[targets, predictions] += 1` "
                 "adds 1 only once for a pair that occurs several times in a batch. Use "
                 "matrix.index_put_((targets, predictions), torch.ones_like(targets), accumulate=True), "
                 "torch.bincount, or a loop over the pairs.", "duplicates_not_accumulated")
        if total == last_batch:
            fail(f"the matrix counts {total:g} samples, the size of the last batch, instead of {num_samples}: it is "
                 "rebuilt for every batch. Create it once, before the loop, and add every batch to it.",
                 "wrong_total")
        fail(f"the entries of the matrix sum to {total:g}; the loader holds {num_samples} samples, and each should be "
             "counted exactly once.", "wrong_total")
    if not is_close(matrix, expected, atol=0, rtol=0):
        if is_close(matrix, expected.T, atol=0, rtol=0):
            fail("the matrix is transposed: rows should be the true classes and columns the predictions, "
                 "matrix[true, predicted]. Yours counts matrix[predicted, true].", "transposed")
        fail(f"{int((matrix != expected).sum())} of the {num_classes * num_classes} entries differ from the counts of "
             "(true class, arg-max prediction) pairs.", "wrong_counts")
    expect_dtype(matrix, torch.long, "the confusion matrix")


@checks.of("confusion_matrix")
def predicts_without_building_a_graph(confusion_matrix, num_samples=50, num_classes=10, seed=0):
    model, loader = _probe_and_loader(num_samples, num_classes, seed)
    model.eval()
    confusion_matrix(model, loader, num_classes=num_classes)
    expect(bool(model.calls), "confusion_matrix never called the model.", "model_not_called")
    expect(not any(grad for _, grad in model.calls),
           "confusion_matrix ran the model with gradient tracking on, recording a graph that is never used. "
           "Predict inside `with torch.no_grad():`.", "missing_no_grad")
