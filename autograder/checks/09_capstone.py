"""Checks for 09_capstone: a small CNN for the digits, a prediction about a convolution's size, its training,
a confusion matrix, a repair of a function that lays pixels out as images, and the challenge of a CNN under a
budget.

The checks are the judge (``autograder.learner``): the learner's functions and classes run where the learner's
code runs, on inputs sent from here, and every expected value is computed here from what comes back (logits,
state dicts, matrices, the calls a recording model saw). What must happen next to the learner's code is a probe
of this module: a model's logits without a graph, where a model keeps its numbers, a copy of it with its
convolutions switched off, a model that records how it was called, a training run with the data sets sealed
or the validation labels changed. The comparison with a reference (the counts of a real network, the
prediction's answer) and the challenge's hidden digits live in ``autograder/checks/instructor/09_capstone.py``.

Each exercise's rules are the ids of its contract list in the notebook; every check names the rules it enforces.
The learner's random state is seeded with torch.random.manual_seed, never torch.manual_seed: once an optimizer
has stepped, torch.manual_seed is a wrapper of torch._dynamo's, which cannot be named in the learner's process.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from autograder.checks._modules import build
from autograder.checks._probes import backward_through, call_with_data_sealed, outputs_of
from autograder.checks._support import what_it_is as _what
from autograder.checks._support import biggest_gap, blame, failure_of, is_close, shape_text
from autograder.data import load_digits
from autograder.learner import cpu_time, is_instance, is_remote, probe, type_name
from autograder.registry import Checks
from autograder.results import CheckFailure, expect, fail

checks = Checks("09_capstone")

MAX_NUMBERS = 50_000




def _images(num_samples: int, seed: int) -> torch.Tensor:
    """Random digit-like images (N, 1, 8, 8) with pixels in [0, 1]."""
    return torch.rand(num_samples, 1, 8, 8, generator=torch.Generator().manual_seed(seed))


# --- probes: they run where the learner's code runs, and report ------------------------------


def layers_of(model) -> list[dict]:
    """A probe: every submodule of ``model``, in order, with its name, its class and, for the layers the checks
    read, their settings."""
    found = []
    for name, module in model.named_modules():
        info = {"name": name, "type": type(module).__name__, "conv": isinstance(module, nn.Conv2d),
                "linear": isinstance(module, nn.Linear),
                "batchnorm": isinstance(module, nn.modules.batchnorm._BatchNorm)}
        if info["linear"]:
            info.update(inputs=module.in_features, outputs=module.out_features)
        if info["batchnorm"]:
            info.update(running=module.running_mean is not None)
        found.append(info)
    return found


_MODULE_INTERNALS = {"_parameters", "_buffers", "_modules", "_non_persistent_buffers_set"}


def _attribute_tensors(model) -> dict[str, object]:
    """Each tensor that a module of ``model`` keeps in a plain attribute (alone, or in a list, tuple or dict,
    the parameters and buffers of layers held in a plain list included), by where it is kept."""
    found: dict[str, object] = {}

    def walk(where: str, value, depth: int = 0) -> None:
        if isinstance(value, torch.Tensor):
            found[where] = value
        elif isinstance(value, nn.Module):
            for name, tensor in [*value.named_parameters(), *value.named_buffers()]:
                found[f"{where}.{name}"] = tensor
        elif depth < 3 and isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                walk(f"{where}[{i}]", item, depth + 1)
        elif depth < 3 and isinstance(value, dict):
            for key, item in value.items():
                walk(f"{where}[{key!r}]", item, depth + 1)

    for module_name, module in model.named_modules():
        for attribute, value in vars(module).items():
            if attribute not in _MODULE_INTERNALS:
                walk(f"{module_name}.{attribute}" if module_name else attribute, value)
    return found


def numbers_held(model, inputs) -> list[tuple[str, str, int]]:
    """A probe: where ``model`` keeps numbers, as (kind, where, how many) for each tensor, each tensor once: its
    parameters, its buffers, the tensors its modules keep in plain attributes (those a forward pass leaves as they
    were: what it overwrites is a cache of its last inputs, not something the model learned), and the tensors
    outside the model that its forward pass on ``inputs`` trains (leaves of the graph that require grad). The
    model's mode is the caller's."""
    found: list[tuple[str, str, int]] = []
    seen: set = set()

    def note(kind: str, where: str, tensor) -> None:
        key = (tensor.data_ptr(), tensor.numel()) if tensor.numel() else id(tensor)
        if id(tensor) not in seen and key not in seen:
            seen.update((id(tensor), key))
            found.append((kind, where, int(tensor.numel())))

    for name, tensor in model.named_parameters():
        note("parameter", name, tensor)
    for name, tensor in model.named_buffers():
        note("buffer", name, tensor)
    before = {where: (tensor, tensor.detach().clone()) for where, tensor in _attribute_tensors(model).items()}
    tensors = [*model.parameters(), *model.buffers()]
    device = tensors[0].device if tensors else torch.device("cpu")
    with torch.enable_grad():
        out = model(inputs.to(device))
    for where, tensor in _attribute_tensors(model).items():
        kept = before.get(where)
        if kept is not None and kept[0] is tensor and kept[1].shape == tensor.shape and torch.equal(kept[1], tensor.detach()):
            note("attribute", where, tensor)
    pending = [out.grad_fn] if isinstance(out, torch.Tensor) and out.grad_fn is not None else []
    visited: set[int] = set()
    while pending:
        node = pending.pop()
        if node is None or id(node) in visited:
            continue
        visited.add(id(node))
        leaf = getattr(node, "variable", None)
        if isinstance(leaf, torch.Tensor):
            note("outside", f"a tensor of shape {tuple(leaf.shape)} outside the model", leaf)
        pending.extend(next_node for next_node, _ in node.next_functions)
    return found


def without_convolutions(model, inputs):
    """A probe: the model's logits for ``inputs`` (no graph, the model's mode), the logits of a copy of it
    whose every nn.Conv2d is switched off (weights and biases zero), and how many convolutions it has."""
    import copy

    before = outputs_of(model, inputs)
    muted = copy.deepcopy(model)
    convolutions = [m for m in muted.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        for conv in convolutions:
            conv.weight.zero_()
            if conv.bias is not None:
                conv.bias.zero_()
    return before, outputs_of(muted, inputs), len(convolutions)


def cross_entropy_of(model, inputs, targets):
    """``F.cross_entropy(model(inputs), targets)`` (for backward_through)."""
    return F.cross_entropy(model(inputs), targets)


def named_gradients(model) -> list[tuple[str, bool, object]]:
    """A probe: (name, requires_grad, gradient or None) for each parameter of ``model``."""
    return [(name, p.requires_grad, p.grad) for name, p in model.named_parameters()]


# --- DigitsCNN -------------------------------------------------------------------------
#
# rule                  check
# logits                maps_images_N_by_1_by_8_by_8_to_N_by_10
# raw_logits            returns_raw_logits_without_a_softmax
# conv_carries_signal   the_convolutions_carry_the_signal
# max_numbers           holds_at_most_50000_numbers
# batch_independent     treats_each_image_on_its_own
# end_to_end            passes_gradients_to_every_parameter


def _cnn(DigitsCNN, seed: int):
    """A fresh DigitsCNN, built where the learner's code runs, its random state seeded."""
    return build(DigitsCNN, what="DigitsCNN", seed=seed)


def _logits(model, images: torch.Tensor, what: str = "DigitsCNN") -> torch.Tensor:
    """model(images) for (N, 1, 8, 8) images, or a diagnosis of why the model cannot take them."""
    num_samples = images.shape[0]
    try:
        out = probe(outputs_of, model, images)
    except RuntimeError as exc:
        try:
            probe(outputs_of, model, images.reshape(num_samples, 64))
        except Exception:
            raise exc from None
        fail(f"{what} raised `{str(exc)[:200]}` on images of shape {shape_text(images.shape)}, yet accepts flat rows "
             f"({num_samples}, 64): it expects flattened pixels, while nn.Conv2d takes images (N, C, H, W).",
             "wrong_input_shape", fix="reshape the data into images (N, 1, 8, 8) before it reaches the model")
    if not isinstance(out, torch.Tensor):
        fail(f"{what} returned {_what(out)}; expected a tensor of logits.", "not_a_tensor")
    if out.dim() == 2 and out.shape[1] == 10 and out.shape[0] != num_samples:
        fail(f"for {num_samples} images {what} returned {out.shape[0]} rows of logits: the reshape before the Linear "
             "layer spreads the features of one image over several rows (x.view(-1, k) with a k that is not the "
             "number of features per image).", "wrong_flatten",
             fix="flatten with x.flatten(1) or nn.Flatten(), which keep the batch dimension")
    expect(tuple(out.shape) == (num_samples, 10), f"{what}'s output has shape {shape_text(out.shape)}; expected "
           f"({num_samples}, 10), one row of 10 logits per image.", "wrong_shape")
    return out


@checks.of("DigitsCNN", rule="logits")
def maps_images_N_by_1_by_8_by_8_to_N_by_10(DigitsCNN, num_samples=6, seed=0):
    model = _cnn(DigitsCNN, seed)
    model.eval()
    _logits(model, _images(num_samples, seed))


@checks.of("DigitsCNN", rule="raw_logits")
def returns_raw_logits_without_a_softmax(DigitsCNN, num_samples=6, seed=0):
    model = _cnn(DigitsCNN, seed)
    model.eval()
    out = _logits(model, _images(num_samples, seed))
    if bool((out >= 0).all()) and is_close(out.sum(dim=1), torch.ones(num_samples), atol=1e-4):
        fail("each row of DigitsCNN's output sums to 1: the model ends with a softmax, and nn.CrossEntropyLoss "
             "applies log-softmax itself, on top of it.", "softmax_in_model",
             fix="return the last Linear layer's output as it is")
    if bool((out <= 0).all()) and is_close(out.exp().sum(dim=1), torch.ones(num_samples), atol=1e-4):
        fail("the exponentials of each row of DigitsCNN's output sum to 1: the model ends with a log-softmax, which "
             "nn.CrossEntropyLoss applies itself.", "softmax_in_model",
             fix="return the last Linear layer's output as it is")


def expect_convolutions_carry_the_signal(model, images: torch.Tensor, what: str) -> None:
    """Switching every Conv2d off (weights and biases zero) must change the logits materially: the convolutions
    carry the image to the output, they are not a decoration beside it."""
    before, after, count = probe(without_convolutions, model, images)
    if count == 0:
        fail(f"{what} has no nn.Conv2d layer: it is a multi-layer perceptron, not a convolutional network.",
             "missing_conv2d", fix="give it at least one nn.Conv2d over the (N, 1, 8, 8) images")
    if not (isinstance(before, torch.Tensor) and isinstance(after, torch.Tensor) and before.shape == after.shape):
        fail(f"{what} does not return a tensor of logits.", "not_a_tensor")
    spread = float(before.std(dim=0).mean())  # how much the logits vary from image to image
    change = float((after - before).abs().mean())
    expect(spread > 0 and change >= 0.1 * spread,
           f"switching off every Conv2d of {what} (weights and biases set to zero) changes its logits by "
           f"{change:.3g} on average, while they vary by {spread:.3g} from image to image: the convolutions do not "
           "carry the signal, the image reaches the logits some other way.", "conv_not_used",
           fix="compute the logits from the convolutions' output")


@checks.of("DigitsCNN", rule="conv_carries_signal")
def the_convolutions_carry_the_signal(DigitsCNN, num_samples=6, seed=0):
    model = _cnn(DigitsCNN, seed)
    model.eval()
    expect_convolutions_carry_the_signal(model, _images(max(num_samples, 4), seed + 3), "DigitsCNN")


def expect_at_most(model, limit: int, what: str, images: torch.Tensor) -> int:
    """Every number the model keeps counts (parameters, buffers, tensors in plain attributes, tensors its forward
    pass trains): at most ``limit`` of them."""
    held = probe(numbers_held, model, images)
    total = sum(count for _, _, count in held)
    in_parameters = sum(count for kind, _, count in held if kind == "parameter")
    if total <= limit:
        return total
    if in_parameters <= limit:
        elsewhere = [f"{where} ({count:,})" for kind, where, count in held if kind != "parameter" and count]
        fail(f"{what} keeps {total:,} numbers, {in_parameters:,} of them in its parameters and "
             f"{total - in_parameters:,} elsewhere ({', '.join(elsewhere[:4])}); the limit is {limit:,} numbers. "
             "The budget counts every number the model keeps and trains, wherever it is stored, not only what "
             "parameters() yields.", "numbers_outside_parameters")
    layers = probe(layers_of, model)
    linears = [m for m in layers if m["linear"]]
    biggest = max(linears, key=lambda m: m["inputs"] * m["outputs"], default=None)
    hint = ""
    if biggest is not None and biggest["inputs"] * biggest["outputs"] > total / 2:
        hint = (f" Most of them sit in {biggest['name'] or 'the'} Linear({biggest['inputs']}, {biggest['outputs']}), "
                "where every feature of the flattened maps meets every output.")
    fail(f"{what} keeps {total:,} numbers; the limit is {limit:,}.{hint}", "too_many_parameters",
         fix="pool (nn.MaxPool2d) before flattening, or use fewer channels")


@checks.of("DigitsCNN", rule="max_numbers")
def holds_at_most_50000_numbers(DigitsCNN, num_samples=6, seed=0):
    model = _cnn(DigitsCNN, seed)
    model.eval()
    expect_at_most(model, MAX_NUMBERS, "DigitsCNN", _images(num_samples, seed + 4))


@checks.of("DigitsCNN", rule="batch_independent")
def treats_each_image_on_its_own(DigitsCNN, num_samples=6, seed=0):
    model = _cnn(DigitsCNN, seed)
    model.eval()
    images = _images(max(num_samples, 2), seed + 1)
    batch = _logits(model, images)
    singles = torch.cat([_logits(model, images[i:i + 1]) for i in range(len(images))])
    # The same images in another order, with others beside them: a batch of one can hide what batches do.
    mixed = torch.cat([images.flip(0), _images(3, seed + 9)])
    reordered = _logits(model, mixed)[:len(images)].flip(0)
    if is_close(batch, singles, atol=1e-4) and is_close(batch, reordered, atol=1e-4):
        return
    gap = max(biggest_gap(batch, singles), biggest_gap(batch, reordered))
    no_statistics = [m["name"] for m in probe(layers_of, model) if m["batchnorm"] and not m["running"]]
    if no_statistics:
        fail(f"in eval mode an image's logits change (by up to {gap:.3g}) with the other images of its batch: the "
             f"batch norm {no_statistics[0]} keeps no running statistics (track_running_stats=False), so in eval "
             "mode too it normalises with the statistics of the batch it is given.", "no_running_stats",
             fix="keep batch norm's default track_running_stats=True")
    fail(f"in eval mode an image's logits change (by up to {gap:.3g}) with the other images of its batch: "
         "somewhere an operation crosses the batch dimension, such as a reshape or transpose that mixes the "
         "numbers of several images.", "mixes_samples",
         fix="keep the batch dimension first, and flatten with x.flatten(1)")


@checks.of("DigitsCNN", rule="end_to_end")
def passes_gradients_to_every_parameter(DigitsCNN, num_samples=6, seed=0):
    model = _cnn(DigitsCNN, seed)
    model.train()
    images = _images(max(num_samples, 2), seed + 2)
    targets = torch.arange(len(images)) % 10
    probe(torch.random.manual_seed, seed)
    probe(backward_through, cross_entropy_of, (model, images, targets), wrt=())
    missing = [name for name, trains, grad in probe(named_gradients, model) if trains and grad is None]
    expect(not missing, f"no gradient reached {', '.join(missing[:3])}: the layer is not used to compute the logits, "
           "or its output is detached, so training would never change it.", "detached")


def _blame_DigitsCNN(DigitsCNN, what_happened: str) -> None:
    """When DigitsCNN fails its own public checks, name it as the likely cause of train_digits' failure."""
    failure = failure_of("DigitsCNN", DigitsCNN=DigitsCNN)
    if failure is not None:
        blame("train_digits", what_happened, "DigitsCNN", failure)


# --- predict, then run: conv_prediction ------------------------------------------------------
#
# rule              check
# form              answers_with_a_count_and_a_shape
# matches_the_run   instructor: predicts_what_the_cell_prints


@checks.of("conv_prediction", rule="form")
def answers_with_a_count_and_a_shape(conv_prediction):
    answer = conv_prediction()
    shape = answer[1] if type(answer) in (tuple, list) and len(answer) == 2 else None
    expect(type(answer) in (tuple, list) and len(answer) == 2 and type(answer[0]) is int
           and type(shape) in (tuple, list, torch.Size) and len(shape) == 4 and all(type(d) is int for d in shape),
           f"conv_prediction() returned {answer!r}; expected a pair: a whole number (the parameters) and a tuple of "
           "four whole numbers (the output's shape), such as (100, (1, 2, 3, 4)).", "wrong_form")


# --- train_digits -----------------------------------------------------------------------
#
# rule                  check
# returns               returns_a_DigitsCNN_and_one_history_entry_per_epoch
# images                returns_... (images of the wrong shape); the_history_..., reaches_95_percent_...
#                       (transposed images)
# seeded                same_seed_same_model_other_seed_other_model
# training_split_only   validation_labels_never_reach_the_model
# accuracy              reaches_95_percent_validation_accuracy_in_20_epochs (hidden: another seed)
# history_matches       the_history_describes_the_returned_model


def _train(train_digits, DigitsCNN, epochs, seed):
    """train_digits(epochs=epochs, seed=seed) (epochs None: its default), its form checked: (model, history)."""
    try:
        result = train_digits(epochs=epochs, seed=seed) if epochs is not None else train_digits(seed=seed)
    except (CheckFailure, NotImplementedError):
        raise
    except Exception as exc:
        text = str(exc)
        if isinstance(exc, RuntimeError) and ("channels" in text or "4D" in text or "3D" in text):
            fail(f"training raised `{text[:200]}`: nn.Conv2d takes batches of images shaped (N, 1, 8, 8), and the "
                 "digits arrive as rows of 64 pixels.", "wrong_input_shape",
                 fix="reshape the digits into images before making the loaders")
        _blame_DigitsCNN(DigitsCNN, f"train_digits raised {getattr(exc, 'learner_type', type(exc).__name__)} "
                                    f"({text[:200]})")
        raise
    if type(result) not in (tuple, list) or len(result) != 2:
        fail(f"train_digits should return a pair (model, history); it returned {_what(result)}.", "wrong_return")
    model, history = result
    if not is_remote(model) or not probe(isinstance, model, DigitsCNN):
        fail(f"train_digits should return the trained DigitsCNN first; it returned {_what(model)}.", "wrong_return")
    if type(history) is not dict:
        fail(f"the history should be the dict that fit returns; it is {_what(history)}.", "wrong_return")
    count = epochs if epochs is not None else 20
    for key in ("train_loss", "val_loss", "val_acc"):
        values = history.get(key)
        if type(values) is not list:
            fail(f"history[{key!r}] should be a list with one value per epoch; found {_what(values)}.",
                 "wrong_history")
        expect(len(values) == count,
               f"history[{key!r}] holds {len(values)} values after train_digits(epochs={count}); expected {count}.",
               "wrong_history")
        for value in values:
            if type(value) not in (float, int):
                fail(f"history[{key!r}] holds {_what(value)}; expected Python numbers.", "wrong_history")
    return model, history


def _same_model(a, b) -> bool:
    first, second = a.state_dict(), b.state_dict()
    return list(first) == list(second) and all(torch.equal(first[key], second[key]) for key in first)


def _validation_indices(make_loaders, seed: int) -> torch.Tensor:
    """Which samples of the digits make_loaders(..., seed=seed) holds out for validation (asked of the
    notebook's own make_loaders, on the samples' indices)."""
    index = torch.arange(len(load_digits()[1]))
    _, val_loader = make_loaders(index.float(), index, seed=seed)
    return torch.cat([targets for _, targets in val_loader])


@checks.of("train_digits", rule=("returns", "images"))
def returns_a_DigitsCNN_and_one_history_entry_per_epoch(train_digits, DigitsCNN, epochs=2, seed=0):
    _train(train_digits, DigitsCNN, epochs, seed)


@checks.of("train_digits", rule="seeded")
def same_seed_same_model_other_seed_other_model(train_digits, DigitsCNN, seed=0):
    first = _train(train_digits, DigitsCNN, 1, seed)[0]
    probe(torch.random.manual_seed, seed + 12_345)  # whatever the random state was, the seed inside must decide
    again = _train(train_digits, DigitsCNN, 1, seed)[0]
    expect(_same_model(first, again),
           f"two calls of train_digits(epochs=1, seed={seed}) returned models with different weights: the run depends "
           "on PyTorch's random state before the call.", "not_seeded",
           fix="call torch.manual_seed(seed) first, before the model, the loaders or anything else random is made")
    other = _train(train_digits, DigitsCNN, 1, seed + 1)[0]
    expect(not _same_model(first, other),
           f"train_digits(epochs=1, seed={seed}) and train_digits(epochs=1, seed={seed + 1}) returned the same model: "
           "the seed is ignored.", "seed_ignored", fix="use the seed for torch.manual_seed and for make_loaders")


def _poisoned(labels: torch.Tensor, positions: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """The labels with those at ``positions`` replaced by the next class of the digit's true one (``clean``, the
    digits' labels), so that poisoning twice changes nothing more. A better model scores lower against such
    labels, so a run that keeps its best epoch by validation accuracy keeps another epoch."""
    labels = labels.clone()
    if len(labels) == len(clean):
        labels[positions] = (clean[positions] + 1) % 10
    else:
        labels[positions] = (positions * 7 + 3) % 10
    return labels


def trained_with_poisoned_validation(train_digits, make_loaders, held_out, seed: int, epochs: int):
    """A probe: ``train_digits(epochs=epochs, seed=seed)`` while the validation labels are wrong wherever it can get
    them: load_digits() returns the digits with the labels of the samples ``held_out`` changed, and the
    notebook's make_loaders changes the labels of the samples it holds out. Returns what it returned and how
    many times it called either."""
    import autograder.data as data

    calls = []
    real_load_digits = data.load_digits

    clean = real_load_digits()[1]

    def load_digits():
        calls.append("load_digits")
        X, y = real_load_digits()
        return X, _poisoned(y, held_out, clean)

    def poisoned_make_loaders(X, y, *args, **kwargs):
        calls.append("make_loaders")
        index = torch.arange(len(y))
        with torch.random.fork_rng(devices=[]):  # iterating a loader draws from the global generator
            _, val_loader = make_loaders(index.float(), index, *args, **kwargs)
            held = torch.cat([targets for _, targets in val_loader])
        return make_loaders(X, _poisoned(y, held, clean), *args, **kwargs)

    owners = [(vars(data), "load_digits", load_digits)]
    learner_globals = getattr(train_digits, "__globals__", None)
    if isinstance(learner_globals, dict):
        owners += [(learner_globals, name, value) for name, value in
                   (("load_digits", load_digits), ("make_loaders", poisoned_make_loaders)) if name in learner_globals]
    saved = [(owner, name, owner[name]) for owner, name, _ in owners]
    for owner, name, value in owners:
        owner[name] = value
    try:
        return train_digits(epochs=epochs, seed=seed), len(calls)
    finally:
        for owner, name, value in saved:
            owner[name] = value


@checks.of("train_digits", rule="training_split_only")
def validation_labels_never_reach_the_model(train_digits, DigitsCNN, make_loaders, epochs=2, seed=0):
    clean = _train(train_digits, DigitsCNN, epochs, seed)[0]
    result, calls = probe(trained_with_poisoned_validation, train_digits, make_loaders,
                          _validation_indices(make_loaders, seed), seed, epochs)
    if calls == 0:
        fail("train_digits called neither load_digits() nor make_loaders, so the check cannot follow which samples it "
             "trains on.", "data_not_loaded", fix="load the digits with load_digits() and split them with make_loaders")
    changed = result[0] if type(result) in (tuple, list) and result else result
    if is_remote(changed) and _same_model(clean, changed):
        return
    again = _train(train_digits, DigitsCNN, epochs, seed)[0]
    expect(_same_model(clean, again),
           f"two calls of train_digits(epochs={epochs}, seed={seed}) returned models with different weights.",
           "not_seeded", fix="call torch.manual_seed(seed) first, before the model or the loaders are made")
    fail(f"when the labels of the validation samples (those make_loaders holds out) are changed, "
         f"train_digits(epochs={epochs}, seed={seed}) returns another model: the validation split reaches training, "
         "or picks the model that is returned.",
         "trains_on_validation", fix="train on the training loader only, and let the validation loader only measure")


def _validation_accuracy(model, make_loaders, seed: int, transposed: bool = False) -> float:
    images, labels = load_digits()
    held = _validation_indices(make_loaders, seed)
    inputs = images.reshape(-1, 1, 8, 8)[held]
    if transposed:
        inputs = inputs.transpose(2, 3)
    model.eval()
    logits = _logits(model, inputs, "the model train_digits returned")
    return float((logits.argmax(dim=1) == labels[held]).float().mean())


def _expect_not_transposed(model, make_loaders, seed: int, accuracy: float, than: float) -> None:
    """A model that recognises the validation digits transposed (and ``than`` of them or more), far better than
    as they are, was trained on transposed digits."""
    transposed = _validation_accuracy(model, make_loaders, seed, transposed=True)
    if transposed >= than and transposed > accuracy + 0.1:
        fail(f"the trained model recognises {accuracy:.1%} of the validation images, but {transposed:.1%} of the same "
             "images transposed: it was trained on digits with rows and columns swapped.", "wrong_reshape",
             fix="reshape each row of 64 pixels row by row: X.reshape(-1, 1, 8, 8), without transposing")


@checks.of("train_digits", rule=("history_matches", "images"))
def the_history_describes_the_returned_model(train_digits, DigitsCNN, make_loaders, epochs=3, seed=0):
    model, history = _train(train_digits, DigitsCNN, epochs, seed)
    accuracy = _validation_accuracy(model, make_loaders, seed)
    reported = history["val_acc"][-1]
    if abs(reported - accuracy) <= 0.02:
        return
    _expect_not_transposed(model, make_loaders, seed, accuracy, than=reported - 0.05)
    fail(f"the history's final val_acc is {reported:.3f}, but the returned model classifies {accuracy:.1%} of the "
         f"validation split correctly (train_digits(epochs={epochs}, seed={seed})): the history does not describe "
         "the model that was returned.", "history_mismatch",
         fix="return the model that fit trained, and the history fit returned for it")


TARGET_ACCURACY = 0.95


@checks.of("train_digits", rule=("accuracy", "images"))
def reaches_95_percent_validation_accuracy_in_20_epochs(train_digits, DigitsCNN, make_loaders, seed=0):
    model, _ = _train(train_digits, DigitsCNN, None, seed)
    accuracy = _validation_accuracy(model, make_loaders, seed)
    if accuracy >= TARGET_ACCURACY:
        return
    _expect_not_transposed(model, make_loaders, seed, accuracy, than=TARGET_ACCURACY)
    count = len(_validation_indices(make_loaders, seed))
    # counts, not rounded percentages: 94.99% would print as the 95.0% it falls short of
    found = (f"after 20 epochs the model classifies {round(accuracy * count)} of the {count} digits of the validation "
             f"split of make_loaders(..., seed={seed}) correctly ({accuracy:.2%}); expected at least "
             f"{math.ceil(TARGET_ACCURACY * count - 1e-9)} ({TARGET_ACCURACY:.0%})")
    _blame_DigitsCNN(DigitsCNN, found)
    fail(f"{found}. The DigitsCNN design, the learning rate, the optimizer or the batch size leave the model short of "
         "the target; a design and settings that reach it with a margin on one seed reach it on others too.",
         "low_accuracy", fix="the design of DigitsCNN's hints with Adam, lr=0.01 and batches of 128 gets there in a "
                             "few seconds")


# --- confusion_matrix ---------------------------------------------------------------------
#
# rule                 check
# long_square          is_a_long_matrix_of_num_classes_by_num_classes
# eval_mode            predicts_in_eval_mode
# no_graph             predicts_without_building_a_graph
# every_sample_once    counts_every_sample_of_every_batch_once
# true_rows            counts_true_classes_in_rows_and_predictions_in_columns
# argmax               counts_true_classes_in_rows_and_predictions_in_columns;
#                      instructor: matches_the_counts_of_a_real_network
#
# The public checks use a model whose predictions are known by construction (built where the learner's code
# runs): each image carries, in its first pixel, the class it predicts for it in eval mode (in train mode it
# predicts the next class). The expected matrix is drawn first and the samples are made from it, so nothing here
# counts pairs.


class EncodedModel(nn.Module):
    """Predicts the class written in each image's first pixel (eval mode) or the next one (train mode), and
    remembers how it was called: (training, grad enabled) for each forward pass."""

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


class ImageNetwork(nn.Module):
    """A small image classifier with batch norm and dropout, for the instructor's check of confusion_matrix on a
    real network (built in the judge's process and, in the same state, where the learner's code runs)."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.hidden = nn.Linear(64, 24)
        self.norm = nn.BatchNorm1d(24)
        self.drop = nn.Dropout(0.5)
        self.out = nn.Linear(24, num_classes)

    def forward(self, x):
        return self.out(self.drop(F.relu(self.norm(self.hidden(x.flatten(1))))))


def loader_of(inputs, targets, batch_size: int):
    """A probe: an unshuffled DataLoader of (inputs, targets) batches."""
    return DataLoader(TensorDataset(inputs, targets), batch_size=batch_size, shuffle=False)


def _known_matrix(num_classes: int, seed: int, batch_size: int):
    """A recording model, a loader (both where the learner's code runs) and the matrix the loader's samples must
    give: (true, predicted) pairs drawn as a matrix first. The last class never occurs (its row and column stay
    zero), pairs repeat within batches, and the last batch is ragged."""
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
    return probe(EncodedModel, num_classes), probe(loader_of, images, truth, batch_size), expected


def _matrix(confusion_matrix, model, loader, num_classes: int) -> torch.Tensor:
    matrix = confusion_matrix(model, loader, num_classes=num_classes)
    if not isinstance(matrix, torch.Tensor):
        fail(f"confusion_matrix returned {_what(matrix)}; expected a tensor.", "not_a_tensor")
    return matrix


def _counted(confusion_matrix, num_classes: int, batch_size: int, seed: int, start_in_train_mode: bool = True):
    model, loader, expected = _known_matrix(num_classes, seed, batch_size)
    model.train(start_in_train_mode)
    matrix = _matrix(confusion_matrix, model, loader, num_classes)
    return model, matrix, expected


@checks.of("confusion_matrix", rule="long_square")
def is_a_long_matrix_of_num_classes_by_num_classes(confusion_matrix, num_classes=10, batch_size=8, seed=0):
    _, matrix, _ = _counted(confusion_matrix, num_classes, batch_size, seed, start_in_train_mode=False)
    if matrix.dim() == 2 and matrix.shape[0] == matrix.shape[1] and matrix.shape[0] < num_classes:
        fail(f"the matrix is {shape_text(matrix.shape)} for num_classes={num_classes}: it covers only the classes that "
             "occur in the data (here the last class never does).", "wrong_shape",
             fix="make it (num_classes, num_classes) from the start, whatever the data holds")
    expect(tuple(matrix.shape) == (num_classes, num_classes), f"the confusion matrix has shape "
           f"{shape_text(matrix.shape)}; expected ({num_classes}, {num_classes}).", "wrong_shape")
    expect(matrix.dtype == torch.long, f"the confusion matrix has dtype {str(matrix.dtype).replace('torch.', '')}; "
           "expected long (int64): it holds counts.", "wrong_dtype")


@checks.of("confusion_matrix", rule="eval_mode")
def predicts_in_eval_mode(confusion_matrix, num_classes=10, batch_size=8, seed=0):
    model, _, _ = _counted(confusion_matrix, num_classes, batch_size, seed)
    calls = model.calls
    expect(bool(calls), "confusion_matrix never called the model.", "model_not_called")
    expect(not any(training for training, _ in calls),
           "confusion_matrix ran the model in train mode: dropout would be active and batch norm would use the "
           "statistics of each batch, so the counts would change from call to call.", "missing_eval",
           fix="call model.eval() before predicting")


@checks.of("confusion_matrix", rule="no_graph")
def predicts_without_building_a_graph(confusion_matrix, num_classes=10, batch_size=8, seed=0):
    model, _, _ = _counted(confusion_matrix, num_classes, batch_size, seed, start_in_train_mode=False)
    calls = model.calls
    expect(bool(calls), "confusion_matrix never called the model.", "model_not_called")
    expect(not any(grad for _, grad in calls),
           "confusion_matrix ran the model with gradient tracking on, so autograd recorded a graph that is never used "
           "(a .detach() afterwards comes too late: the graph was already built).", "missing_no_grad",
           fix="predict inside `with torch.no_grad():`")


@checks.of("confusion_matrix", rule="every_sample_once")
def counts_every_sample_of_every_batch_once(confusion_matrix, num_classes=10, batch_size=8, seed=0):
    _, matrix, expected = _counted(confusion_matrix, num_classes, batch_size, seed, start_in_train_mode=False)
    num_samples = int(expected.sum())
    total = float(matrix.double().sum())
    if total == num_samples:
        return
    batches = -(-num_samples // batch_size)
    last_batch = num_samples - (batches - 1) * batch_size
    if total == last_batch:
        fail(f"the matrix counts {total:g} samples, the size of the last batch, instead of {num_samples}: it starts "
             "again from zeros at every batch.", "wrong_total", fix="create it once, before the loop over batches")
    same_shape = matrix.shape == expected.shape
    if same_shape and total < num_samples and bool((matrix.double() <= expected.double()).all()):
        fail(f"the matrix counts {total:g} samples instead of {num_samples}, and no entry is above the right count: a "
             "(true, predicted) pair that occurs several times in one batch was counted once.",
             "duplicates_not_accumulated",
             fix="`matrix[targets, predictions] += 1` adds 1 once per distinct pair: count with index_put_(..., "
                 "accumulate=True), torch.bincount or a loop")
    fail(f"the entries of the matrix sum to {total:g}; the loader holds {num_samples} samples (in {batches} batches), "
         "and each should be counted exactly once.", "wrong_total")


@checks.of("confusion_matrix", rule=("true_rows", "argmax"))
def counts_true_classes_in_rows_and_predictions_in_columns(confusion_matrix, num_classes=10, batch_size=8, seed=0):
    _, matrix, expected = _counted(confusion_matrix, num_classes, batch_size, seed, start_in_train_mode=False)
    if is_close(matrix, expected, atol=0, rtol=0):
        return
    if is_close(matrix, expected.T, atol=0, rtol=0):
        fail("the matrix is transposed: its rows are the predictions and its columns the true classes, so every "
             "confusion reads backwards.", "transposed", fix="count matrix[true, predicted]")
    differ = int((matrix.double() != expected.double()).sum()) if matrix.shape == expected.shape else "all"
    fail(f"{differ} of the {num_classes * num_classes} entries differ from the counts of (true class, arg-max "
         "prediction) pairs.", "wrong_counts")


# --- repair: to_images ---------------------------------------------------------------------
#
# rule         check
# shape        returns_images_N_by_1_by_size_by_size
# row_by_row   lays_each_row_of_pixels_out_row_by_row


def _pixels(num_samples: int, size: int, seed: int) -> torch.Tensor:
    """Rows of size * size distinct values, so that every value tells where it came from."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randperm(num_samples * size * size, generator=gen).float().reshape(num_samples, size * size)


def _as_images(to_images, X: torch.Tensor, size: int) -> torch.Tensor:
    if size == 8:
        out = to_images(X)
    else:
        try:
            out = to_images(X, size=size)
        except NotImplementedError:
            raise  # not written yet (a RuntimeError too)
        except RuntimeError as exc:
            fail(f"to_images(X, size={size}) for X of shape {shape_text(X.shape)} raised `{str(exc)[:160]}`: it lays "
                 f"the rows out as images of another size than the {size} x {size} it is asked for.", "wrong_shape",
                 fix="use the size argument wherever the image's side appears")
    if not isinstance(out, torch.Tensor):
        fail(f"to_images returned {_what(out)}; expected a tensor.", "not_a_tensor")
    return out


@checks.of("to_images", rule="shape")
def returns_images_N_by_1_by_size_by_size(to_images, num_samples=5, size=8, seed=0):
    X = _pixels(num_samples, size, seed)
    out = _as_images(to_images, X, size)
    expected = (num_samples, 1, size, size)
    if tuple(out.shape) == (num_samples, size, size, 1):
        fail(f"to_images returned shape {shape_text(out.shape)}: channels last. nn.Conv2d reads the second dimension as "
             f"the channels, so it would see {size} channels of {size} x 1 images.", "channels_last")
    expect(tuple(out.shape) == expected, f"to_images(X{'' if size == 8 else f', size={size}'}) for X of shape "
           f"{shape_text(X.shape)} returned shape {shape_text(out.shape)}; expected {shape_text(expected)}: one image "
           "per row of X, one channel, size x size pixels.", "wrong_shape")


@checks.of("to_images", rule="row_by_row")
def lays_each_row_of_pixels_out_row_by_row(to_images, num_samples=5, size=8, seed=0):
    X = _pixels(num_samples, size, seed)
    out = _as_images(to_images, X, size)
    if tuple(out.shape) != (num_samples, 1, size, size):
        return  # the shape's own check says what is wrong
    out = out.double()
    rows = X.double()
    for n in range(num_samples):
        if not torch.equal(out[n].flatten().sort().values, rows[n].sort().values):
            fail(f"image {n} of to_images(X) holds pixels of other rows of X: the layout mixes samples, so each "
                 "image is made of pieces of several digits.", "mixes_samples")
    expected_pixel = [[float(rows[0, i * size + j]) for j in range(size)] for i in range(size)]
    found = out[0, 0].tolist()
    if found == expected_pixel:
        return
    if found == [list(column) for column in zip(*expected_pixel)]:
        fail(f"image 0 of to_images(X) is transposed: pixel k of a row lands at row k % {size}, column k // {size}. "
             "The rows of X hold each image row by row (the first size pixels are its top row), so the network "
             "learns digits mirrored along their diagonal, and images laid out correctly look foreign to it.",
             "transposed")
    fail(f"the pixels of image 0 are not where the row holds them: pixel k of a row belongs at row k // {size}, "
         f"column k % {size}.", "wrong_layout")


# --- challenge: train_small_cnn -----------------------------------------------------------
#
# rule                  check (one training of the learner's design serves them all)
# logits                reaches_the_target_within_the_budgets
# conv_carries_signal   reaches_the_target_within_the_budgets
# max_numbers           reaches_the_target_within_the_budgets
# accuracy              reaches_the_target_within_the_budgets; instructor: ..._on_the_graders_digits
# cpu_budget            reaches_the_target_within_the_budgets
# given_data_only       reaches_the_target_within_the_budgets (the data sets cannot be loaded meanwhile);
#                       instructor: another split, mirrored, the classes renamed

CHALLENGE_NUMBERS = 2_000
CHALLENGE_ACCURACY = 0.95
CHALLENGE_CPU_SECONDS = 10.0


def visible_split(seed: int = 0, val_fraction: float = 0.2):
    """(training images, their labels, held-out images, their labels): the digits as images, split as
    make_loaders(..., seed=seed) splits them (the held-out ones are its validation samples)."""
    X, y = load_digits()
    images = X.reshape(-1, 1, 8, 8)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    held_out, training = order[:round(val_fraction * len(y))], order[round(val_fraction * len(y)):]
    return images[training], y[training], images[held_out], y[held_out]


def challenge_outcome(train_small_cnn, images, labels, held_images, held_labels, where: str) -> None:
    """Train the learner's design on (images, labels) where its code runs, on one core, with the data sets sealed,
    and measure it in eval mode on (held_images, held_labels)."""
    probe(torch.set_num_threads, 1)
    started = cpu_time()
    model = probe(call_with_data_sealed, "train_small_cnn", train_small_cnn, images, labels)
    seconds = cpu_time() - started
    if not is_instance(model, nn.Module):
        fail(f"train_small_cnn should return the trained model, an nn.Module; it returned {_what(model)}.",
             "wrong_return")
    model.eval()
    logits = _logits(model, held_images, "your model")
    expect_at_most(model, CHALLENGE_NUMBERS, "your model", held_images[:16])
    expect_convolutions_carry_the_signal(model, held_images[:16], "your model")
    accuracy = float((logits.argmax(dim=1) == held_labels).float().mean())
    expect(accuracy >= CHALLENGE_ACCURACY,
           f"your model classifies {accuracy:.1%} of {len(held_labels)} held-out digits ({where}) correctly; the target "
           f"is {CHALLENGE_ACCURACY:.0%}.", "below_target")
    expect(seconds <= CHALLENGE_CPU_SECONDS,
           f"training used {seconds:.1f} s of CPU time on one core; the budget is {CHALLENGE_CPU_SECONDS:g} s.",
           "over_time_budget", fix="fewer epochs, larger batches or a larger learning rate")


@checks.of("train_small_cnn", rule=("logits", "conv_carries_signal", "max_numbers", "accuracy", "cpu_budget",
                                    "given_data_only"))
def reaches_the_target_within_the_budgets(train_small_cnn, seed=0):
    images, labels, held_images, held_labels = visible_split(seed)
    challenge_outcome(train_small_cnn, images, labels, held_images, held_labels,
                      f"the validation split of make_loaders(..., seed={seed})")
