"""Checks for 07_devices_checkpoints: choosing a device, moving batches, saving and resuming, and the
challenge of a model whose checkpoint fits a small budget.

No GPU is needed: ``get_device`` is checked on pretended machines (the
availability functions are replaced for the duration of one call), tensors are
moved to the ``meta`` device, which exists everywhere, and checkpoints are
written only into temporary folders that are removed afterwards. The load checks write their
checkpoint in the format the notebook's text states (three keys, state dicts). The challenge's hidden
split lives in ``autograder/checks/instructor/07_devices_checkpoints.py``.
"""

from __future__ import annotations

import contextlib
import inspect
import tempfile
from pathlib import Path

import torch
from torch import nn

from autograder.checks._support import as_int, data_sealed, describe, is_close, one_cpu_core
from autograder.registry import Checks
from autograder.results import expect, fail

checks = Checks("07_devices_checkpoints")

_KEYS = ("model_state_dict", "optimizer_state_dict", "epoch")


# --- get_device -----------------------------------------------------------------
#
# clause (text and contract)                                  -> check
# returns a torch.device, not a string                        -> returns_a_torch_device_not_a_string
# CUDA when available and preferred                           -> prefers_cuda_then_mps_then_cpu (pretended machines)
# else MPS when available and preferred                       -> prefers_cuda_then_mps_then_cpu (hidden: MPS only,
#                                                                CUDA and MPS)
# else the CPU; prefer_gpu=False always the CPU               -> prefers_cuda_then_mps_then_cpu
# usable on the machine that runs it                          -> gives_a_usable_device_on_this_machine


def _real_device_type() -> str:
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


@contextlib.contextmanager
def _pretend(available):
    """Make PyTorch report exactly the GPUs in ``available`` ("cuda", "mps") for the duration."""
    cuda, mps = "cuda" in available, "mps" in available
    accelerator = torch.device("cuda") if cuda else torch.device("mps") if mps else None
    patches = [
        (torch.cuda, "is_available", lambda: cuda),
        (torch.cuda, "device_count", lambda: 1 if cuda else 0),
        (torch.backends.mps, "is_available", lambda: mps),
        (torch.backends.mps, "is_built", lambda: mps),
    ]
    if hasattr(getattr(torch, "mps", None), "is_available"):
        patches.append((torch.mps, "is_available", lambda: mps))
    if hasattr(torch, "accelerator"):
        patches += [(torch.accelerator, "is_available", lambda: accelerator is not None),
                    (torch.accelerator, "current_accelerator", lambda check_available=False: accelerator)]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    try:
        for owner, name, value in patches:
            setattr(owner, name, value)
        yield
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)


def _as_device(value, call: str) -> torch.device:
    if isinstance(value, str):
        fail(f"{call} returned the string {value!r}; return torch.device({value!r}). A torch.device is checked "
             "when it is made and can be asked for its .type.", "returns_string")
    if type(value) is not torch.device:
        fail(f"{call} should return a torch.device; it returned {describe(value)}.", "not_a_device")
    return value


def _machine(available) -> str:
    names = {"cuda": "CUDA", "mps": "MPS"}
    found = [names[kind] for kind in ("cuda", "mps") if kind in available]
    return f"a machine with {' and '.join(found)}" if found else "a machine without any GPU"


@checks.of("get_device")
def returns_a_torch_device_not_a_string(get_device):
    _as_device(get_device(), "get_device()")
    _as_device(get_device(prefer_gpu=False), "get_device(prefer_gpu=False)")


@checks.of("get_device")
def prefers_cuda_then_mps_then_cpu(get_device, available=("cuda",)):
    available = tuple(available)
    best = "cuda" if "cuda" in available else "mps" if "mps" in available else "cpu"
    for machine, prefer, expected in ((available, True, best), (available, False, "cpu"), ((), True, "cpu")):
        with _pretend(machine):
            device = _as_device(get_device(prefer_gpu=prefer), f"get_device(prefer_gpu={prefer})")
        if device.type == expected:
            continue
        where = f"on {_machine(machine)}, get_device(prefer_gpu={prefer}) returned {device}; expected {expected}."
        if not prefer:
            fail(f"{where} prefer_gpu=False asks for the CPU even when a GPU is there.", "ignores_preference")
        if not machine:
            fail(f"{where} Ask torch.cuda.is_available() (and torch.backends.mps.is_available()) before "
                 "choosing a GPU.", "no_availability_check")
        if expected == "cuda" and device.type == "mps":
            fail(f"{where} CUDA comes first: check it before MPS.", "wrong_priority")
        if expected == "mps":
            fail(f"{where} Apple GPUs are available through MPS: check torch.backends.mps.is_available() after "
                 "CUDA.", "missing_mps")
        fail(where, "wrong_device")


@checks.of("get_device")
def gives_a_usable_device_on_this_machine(get_device):
    device = _as_device(get_device(), "get_device()")
    expected = _real_device_type()
    expect(device.type == expected, f"on this machine get_device() returned {device}; expected {expected}.",
           "wrong_device")
    torch.zeros(1, device=device)


# --- move_to --------------------------------------------------------------------
#
# clause (text and contract)                                  -> check
# a tensor comes back moved (the copy .to() returns)          -> moves_a_single_tensor
# every tensor at any depth of tuples, lists and dicts moved  -> moves_every_tensor_in_nested_containers_and_keeps_...
# a tuple stays a tuple, a list a list, a dict keeps its keys -> moves_every_tensor_in_nested_containers_and_keeps_...
#   (empty containers too)
# values and dtypes of the tensors unchanged                  -> keeps_values_and_leaves_other_objects_untouched
# non-tensors (str, numbers, bool, None) returned untouched   -> keeps_values_and_leaves_other_objects_untouched
# a new structure: the caller's containers are not modified   -> leaves_the_callers_batch_as_it_was
#   (hidden: deeper nesting, another seed)

_META = torch.device("meta")


def _batch(seed: int, depth: int):
    """A batch as real code meets it: tensors in tuples, lists and dicts, nested ``depth`` levels deep,
    with strings, numbers, booleans and None among them."""
    gen = torch.Generator().manual_seed(seed)

    def tensor(*shape):
        return torch.randn(*shape, generator=gen)

    inner = {"image": tensor(2, 3), "id": f"sample_{seed}", "weight": 0.5, "missing": None,
             "empty": ([], {}, ())}
    for level in range(depth):
        inner = {"level": level, "pair": (tensor(3), inner), "items": [tensor(2, 2), (level, tensor(1))],
                 "flag": level % 2 == 0, "mask": tensor(2) > 0, "half": tensor(2).half()}
    return (tensor(4, 3), torch.arange(4), [inner, "tag"])


def _move(move_to, obj, device):
    try:
        return move_to(obj, device)
    except AttributeError as exc:
        if "has no attribute 'to'" in str(exc):
            kind = str(exc).split("'")[1]
            article = "an" if kind[:1] in "aeiou" else "a"
            fail(f"move_to called .to() on {article} {kind}, which has no such method: only tensors move. Return "
                 "values that are not tensors (or containers) as they are.", "non_tensor_moved")
        raise


def _compare(original, moved, device: torch.device, path: str, depth: int = 0) -> None:
    """Walk both structures together and fail at the first difference."""
    if isinstance(original, torch.Tensor):
        if not isinstance(moved, torch.Tensor):
            fail(f"{path} was a tensor and came back as {describe(moved)}.", "structure_changed")
        if moved.device.type != device.type:
            code = "not_moved" if depth <= 1 else "not_recursive"
            hint = (" It sits inside a nested container: call move_to on every item of a container, so that it "
                    "reaches any depth." if code == "not_recursive" else
                    " tensor.to(device) returns a moved copy and leaves the original where it was: return the copy.")
            fail(f"{path} is on {moved.device}, not on {device}.{hint}", code)
        expect(moved.shape == original.shape and moved.dtype == original.dtype,
               f"{path} changed from {describe(original)} to {describe(moved)}; moving must keep shape and dtype.",
               "tensor_changed")
        if device.type != "meta":
            expect(is_close(moved, original, atol=0, rtol=0), f"{path} changed its values on the way.",
                   "tensor_changed")
        return
    if type(original) in (dict, list, tuple):
        if type(moved) is not type(original):
            fail(f"{path} was a {type(original).__name__} and came back as {describe(moved)}: keep the container's "
                 f"type (build a {type(original).__name__} of the moved items).", "structure_changed")
        if isinstance(original, dict):
            expect(list(moved) == list(original), f"{path} had the keys {list(original)}; it came back with "
                   f"{list(moved)}.", "structure_changed")
            for key in original:
                _compare(original[key], moved[key], device, f"{path}[{key!r}]", depth + 1)
            return
        expect(len(moved) == len(original), f"{path} had {len(original)} items; it came back with {len(moved)}.",
               "structure_changed")
        for index, (a, b) in enumerate(zip(original, moved)):
            _compare(a, b, device, f"{path}[{index}]", depth + 1)
        return
    expect(moved is original, f"{path} was {original!r}, not a tensor, and came back as {moved!r}: leave values "
           "that are not tensors untouched.", "non_tensor_changed")


@checks.of("move_to")
def moves_a_single_tensor(move_to, seed=0, depth=2):
    tensor = torch.randn(3, 2, generator=torch.Generator().manual_seed(seed))
    _compare(tensor, _move(move_to, tensor, _META), _META, "move_to(tensor, device)")
    _compare(tensor, _move(move_to, tensor, torch.device("cpu")), torch.device("cpu"), "move_to(tensor, cpu)")


@checks.of("move_to")
def moves_every_tensor_in_nested_containers_and_keeps_their_types(move_to, seed=0, depth=2):
    batch = _batch(seed, depth)
    _compare(batch, _move(move_to, batch, _META), _META, "batch")


@checks.of("move_to")
def keeps_values_and_leaves_other_objects_untouched(move_to, seed=0, depth=2):
    batch = _batch(seed, depth)
    _compare(batch, _move(move_to, batch, torch.device("cpu")), torch.device("cpu"), "batch")


def _snapshot(obj):
    """Which object sits where in a nested batch: (id, kind, device or value) for every node, in order."""
    if torch.is_tensor(obj):
        return [(id(obj), "tensor", obj.device.type)]
    if type(obj) is dict:
        return [(id(obj), "dict", tuple(obj))] + [node for value in obj.values() for node in _snapshot(value)]
    if type(obj) in (list, tuple):
        return [(id(obj), type(obj).__name__, len(obj))] + [node for item in obj for node in _snapshot(item)]
    return [(id(obj), "value", None)]


@checks.of("move_to")
def leaves_the_callers_batch_as_it_was(move_to, seed=0, depth=2):
    batch = _batch(seed, depth)
    before = _snapshot(batch)
    moved = _move(move_to, batch, _META)
    after = _snapshot(batch)
    if after != before:
        fail("move_to changed the batch it was given: after the call, the caller's containers hold other objects "
             "than before (the moved tensors). Build a new container of the moved items instead of assigning into "
             "the old one (`obj[key] = ...`): the caller may still need its batch as it was.", "modified_input")
    _compare(batch, moved, _META, "batch")
    originals = {node_id for node_id, kind, _ in before if kind in ("dict", "list")}
    reused = [kind for node_id, kind, _ in _snapshot(moved) if node_id in originals]
    expect(not reused, f"move_to returned the caller's own {reused[0] if reused else ''} (the same object, "
           "refilled): return a new container, so that the caller's batch and the moved one are independent.",
           "modified_input")


# --- checkpoints ----------------------------------------------------------------
#
# save_checkpoint: clause (text and contract)                 -> check
# writes the file at `path`                                   -> writes_a_file_that_loads_with_weights_only
# readable by torch.load(path, weights_only=True)             -> writes_a_file_that_loads_with_weights_only
#   (state dicts, never the pickled module or the method)
# a dict with exactly the three keys                          -> holds_exactly_the_three_keys
# epoch as a Python int, the one it was given                 -> stores_the_epoch_as_an_int
# model state (buffers too) and optimizer state, so training  -> saves_what_it_takes_to_resume_exactly
#   resumes exactly (Adam; SGD with momentum)                    (hidden: another model seed and epoch)
#
# load_checkpoint: clause (text and contract)                 -> check
# returns the saved epoch as an int                           -> returns_the_saved_epoch
# restores the model it is given (in place)                   -> restores_the_model_it_is_given
# restores the optimizer, so the next steps are identical     -> restores_the_optimizer_so_training_resumes_exactly
# the optimizer is optional                                   -> works_without_an_optimizer
# passes map_location on to torch.load                        -> reads_with_the_map_location_it_is_given
#                                                                (tests/checks/test_07: a real GPU, where there is one)


def _model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))


def _optimizer(kind: str, model: nn.Module) -> torch.optim.Optimizer:
    if kind == "adam":
        return torch.optim.Adam(model.parameters(), lr=0.02)
    return torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)


def _data(seed: int, steps: int):
    gen = torch.Generator().manual_seed(seed + 50)
    return [(torch.randn(16, 5, generator=gen), torch.randint(0, 3, (16,), generator=gen)) for _ in range(steps)]


def _train(model: nn.Module, optimizer: torch.optim.Optimizer, batches) -> None:
    model.train()
    for inputs, targets in batches:
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(inputs), targets).backward()
        optimizer.step()


def _trained(seed: int, kind: str = "adam"):
    """A model with buffers and an optimizer with state, after a few steps."""
    model = _model(seed)
    optimizer = _optimizer(kind, model)
    _train(model, optimizer, _data(seed, 3))
    return model, optimizer


def _outputs(model: nn.Module, seed: int) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(torch.randn(6, 5, generator=torch.Generator().manual_seed(seed + 99)))


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    return all(is_close(p, q, atol=1e-7, rtol=1e-6) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


@contextlib.contextmanager
def _scratch():
    """A temporary folder for checkpoint files, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="autograder-checkpoints-") as folder:
        yield Path(folder)


def _save(save_checkpoint, folder: Path, model, optimizer, epoch: int) -> Path:
    path = folder / "checkpoint.pt"
    save_checkpoint(path, model, optimizer, epoch)
    if not path.exists():
        others = sorted(p.name for p in folder.iterdir())
        where = f" (it wrote {', '.join(others)} instead)" if others else ""
        fail(f"save_checkpoint wrote nothing at the path it was given{where}: pass `path` to torch.save.", "no_file")
    return path


def _read_saved(path: Path):
    """The checkpoint as torch.load(path, weights_only=True) reads it, or a diagnosis of why it cannot."""
    try:
        return torch.load(path, weights_only=True)
    except Exception as exc:  # the learner's file is the subject here, so any failure is a finding
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        try:
            whole = torch.load(path, weights_only=False)
        except Exception:
            whole = None
        values = list(whole.values()) if isinstance(whole, dict) else [whole]
        if any(isinstance(v, (nn.Module, torch.optim.Optimizer)) for v in values):
            fail("the checkpoint holds a whole module or optimizer, pickled, so torch.load(path, weights_only=True) "
                 "refuses it. Save their state dicts instead: model.state_dict(), optimizer.state_dict().",
                 "pickled_module")
        if any(inspect.ismethod(v) for v in values):
            fail("the checkpoint holds the method state_dict itself (and with it the whole module): call it, "
                 "model.state_dict(), optimizer.state_dict().", "pickled_module")
        fail(f"torch.load(path, weights_only=True) cannot read the checkpoint ({first_line[:200]}). Save only "
             "state dicts, ints and other plain values.", "pickled_module")


@checks.of("save_checkpoint")
def writes_a_file_that_loads_with_weights_only(save_checkpoint, epoch=3, seed=0):
    model, optimizer = _trained(seed)
    with _scratch() as folder:
        _read_saved(_save(save_checkpoint, folder, model, optimizer, epoch))


@checks.of("save_checkpoint")
def holds_exactly_the_three_keys(save_checkpoint, epoch=3, seed=0):
    model, optimizer = _trained(seed)
    with _scratch() as folder:
        saved = _read_saved(_save(save_checkpoint, folder, model, optimizer, epoch))
    if not isinstance(saved, dict):
        fail(f"the checkpoint should be a dict with the keys {', '.join(_KEYS)}; it is {describe(saved)}.",
             "missing_keys")
    missing = [key for key in _KEYS if key not in saved]
    expect(not missing, f"the checkpoint lacks the key{'s' if len(missing) > 1 else ''} "
           f"{', '.join(repr(k) for k in missing)}; it has {', '.join(repr(k) for k in saved) or 'none'}.",
           "missing_keys")
    extra = [key for key in saved if key not in _KEYS]
    expect(not extra, f"the checkpoint has keys beyond the three asked for: {', '.join(repr(k) for k in extra)}.",
           "extra_keys")


@checks.of("save_checkpoint")
def stores_the_epoch_as_an_int(save_checkpoint, epoch=3, seed=0):
    model, optimizer = _trained(seed)
    with _scratch() as folder:
        saved = _read_saved(_save(save_checkpoint, folder, model, optimizer, epoch))
    if not isinstance(saved, dict) or "epoch" not in saved:
        fail("the checkpoint has no 'epoch' entry.", "missing_keys")
    value = saved["epoch"]
    if type(value) is not int:
        hint = " Save int(epoch), not a tensor." if isinstance(value, torch.Tensor) else " Save int(epoch)."
        fail(f"the saved epoch is {describe(value)}; expected a Python int.{hint}", "epoch_not_int")
    expect(value == epoch, f"save_checkpoint(..., epoch={epoch}) saved the epoch {value}; save the number it was "
           "given.", "wrong_epoch")


def _restore(saved, kind: str, seed: int):
    """A fresh model and optimizer restored from a checkpoint dict by the course's own recipe."""
    model = _model(seed + 1)
    optimizer = _optimizer(kind, model)
    state = saved["model_state_dict"]
    if isinstance(state, dict):
        missing = [key for key in model.state_dict() if key not in state]
        if missing and len(missing) < len(model.state_dict()):
            fail(f"the saved model state lacks {', '.join(missing)}. Save model.state_dict(): it holds the buffers "
                 "(such as batch norm's running statistics) as well as the parameters.", "wrong_state_dict")
    try:
        model.load_state_dict(state)
    except Exception as exc:
        fail(f"model.load_state_dict(checkpoint['model_state_dict']) fails ({type(exc).__name__}: "
             f"{str(exc).strip().splitlines()[0][:200]}): save model.state_dict() there.", "wrong_state_dict")
    try:
        optimizer.load_state_dict(saved["optimizer_state_dict"])
    except Exception as exc:
        fail(f"optimizer.load_state_dict(checkpoint['optimizer_state_dict']) fails ({type(exc).__name__}: "
             f"{str(exc).strip().splitlines()[0][:200]}): save optimizer.state_dict() there.", "wrong_state_dict")
    return model, optimizer


@checks.of("save_checkpoint")
def saves_what_it_takes_to_resume_exactly(save_checkpoint, epoch=3, seed=0):
    for kind in ("adam", "sgd_momentum"):
        model, optimizer = _trained(seed, kind)
        with _scratch() as folder:
            saved = _read_saved(_save(save_checkpoint, folder, model, optimizer, epoch))
        if not isinstance(saved, dict) or any(key not in saved for key in _KEYS[:2]):
            fail("the checkpoint lacks 'model_state_dict' or 'optimizer_state_dict'.", "missing_keys")
        restored, restored_optimizer = _restore(saved, kind, seed)
        expect(is_close(_outputs(restored, seed), _outputs(model, seed), atol=0, rtol=0),
               "a model restored from your checkpoint computes other outputs than the saved one: save "
               "model.state_dict() (it holds the buffers too, such as batch norm's running statistics).",
               "model_state_wrong")
        _expect_training_resumes_exactly(
            (model, optimizer), (restored, restored_optimizer), kind, seed, "after restoring your checkpoint",
            "the optimizer's state is missing or stale. Save optimizer.state_dict().")


def _expect_training_resumes_exactly(uninterrupted, resumed, kind: str, seed: int, when: str, advice: str) -> None:
    """Three more steps from the saved run and from the resumed one must end on the same weights."""
    more = _data(seed + 1, 3)
    _train(*uninterrupted, more)
    _train(*resumed, more)
    expect(_same_weights(uninterrupted[0], resumed[0]),
           f"{when}, three more steps of {'Adam' if kind == 'adam' else 'SGD with momentum'} end on other weights "
           f"than the uninterrupted run: {advice}", "optimizer_not_restored")


@contextlib.contextmanager
def _reference_checkpoint(model, optimizer, epoch: int):
    with _scratch() as folder:
        path = folder / "reference.pt"
        torch.save({"model_state_dict": model.state_dict(), "optimizer_state_dict": optimizer.state_dict(),
                    "epoch": epoch}, path)
        yield path


def _load(load_checkpoint, path, model, optimizer=None, **kwargs):
    try:
        if optimizer is None:
            return load_checkpoint(path, model, **kwargs)
        return load_checkpoint(path, model, optimizer, **kwargs)
    except AttributeError as exc:
        if optimizer is None and "NoneType" in str(exc):
            fail("load_checkpoint(path, model) without an optimizer raised "
                 f"AttributeError: {exc}. The optimizer is optional: restore it only `if optimizer is not None`.",
                 "optimizer_required")
        raise


@checks.of("load_checkpoint")
def returns_the_saved_epoch(load_checkpoint, epoch=3, seed=0):
    model, optimizer = _trained(seed)
    with _reference_checkpoint(model, optimizer, epoch) as path:
        fresh = _model(seed + 1)
        found = _load(load_checkpoint, path, fresh, _optimizer("adam", fresh))
    found = as_int(found, "load_checkpoint's result")
    expect(found == epoch, f"the checkpoint holds epoch {epoch}; load_checkpoint returned {found}.", "wrong_epoch")


@checks.of("load_checkpoint")
def restores_the_model_it_is_given(load_checkpoint, epoch=3, seed=0):
    model, optimizer = _trained(seed)
    with _reference_checkpoint(model, optimizer, epoch) as path:
        fresh = _model(seed + 1)
        _load(load_checkpoint, path, fresh, _optimizer("adam", fresh))
    expect(is_close(_outputs(fresh, seed), _outputs(model, seed), atol=0, rtol=0),
           "after load_checkpoint the model computes other outputs than the saved one. Load into the model you "
           "were given: model.load_state_dict(checkpoint['model_state_dict']).", "model_not_restored")


@checks.of("load_checkpoint")
def restores_the_optimizer_so_training_resumes_exactly(load_checkpoint, epoch=3, seed=0):
    for kind in ("adam", "sgd_momentum"):
        model, optimizer = _trained(seed, kind)
        with _reference_checkpoint(model, optimizer, epoch) as path:
            fresh = _model(seed + 1)
            fresh_optimizer = _optimizer(kind, fresh)
            _load(load_checkpoint, path, fresh, fresh_optimizer)
        _expect_training_resumes_exactly(
            (model, optimizer), (fresh, fresh_optimizer), kind, seed, "after load_checkpoint",
            "the optimizer's state was not restored. Call optimizer.load_state_dict(checkpoint['optimizer_state_dict']).")


@checks.of("load_checkpoint")
def works_without_an_optimizer(load_checkpoint, epoch=3, seed=0):
    model, optimizer = _trained(seed)
    with _reference_checkpoint(model, optimizer, epoch) as path:
        fresh = _model(seed + 1)
        found = _load(load_checkpoint, path, fresh)
    expect(found == epoch and type(found) is int,
           f"load_checkpoint(path, model) returned {describe(found)}; expected the epoch, {epoch}.", "wrong_epoch")
    expect(is_close(_outputs(fresh, seed), _outputs(model, seed), atol=0, rtol=0),
           "load_checkpoint(path, model), without an optimizer, did not restore the model.", "model_not_restored")


@checks.of("load_checkpoint")
def reads_with_the_map_location_it_is_given(load_checkpoint, epoch=3, seed=0):
    model, optimizer = _trained(seed)
    real_load = torch.load
    seen = []

    def spy(*args, **kwargs):
        where = kwargs.get("map_location", args[1] if len(args) > 1 else None)
        seen.append(where)
        return real_load(*args, **kwargs)

    with _reference_checkpoint(model, optimizer, epoch) as path:
        for given in ("cpu", torch.device("cpu")):
            fresh = _model(seed + 1)
            seen.clear()
            torch.load = spy
            try:
                _load(load_checkpoint, path, fresh, _optimizer("adam", fresh), map_location=given)
            finally:
                torch.load = real_load
            if not seen:
                return  # read some other way; the GPU tests cover the behaviour for real
            expect(any(where is given or (type(where) is type(given) and where == given) for where in seen),
                   f"load_checkpoint(..., map_location={given!r}) called torch.load with map_location="
                   f"{seen[0]!r}: pass on the map_location it was given, so a GPU checkpoint can load on a CPU.",
                   "map_location_ignored")


# --- challenge: train_tiny_model ----------------------------------------------------------
#
# clause (text)                                               -> check
# returns an nn.Module taking float32 (N, 64) to logits (N,10)-> reaches_the_target_within_the_byte_budget
# its state_dict's tensors take at most TINY_BYTES bytes      -> reaches_the_target_within_the_byte_budget
# trains only on the samples it receives                      -> reaches_the_target_within_the_byte_budget (sealed)
# at least TINY_ACCURACY on held-out digits                   -> ... (visible split); instructor: hidden split
# survives a checkpoint: a fresh copy loaded from its state   -> reaches_the_target_within_the_byte_budget
#   dict (weights_only) predicts the same
# at most TINY_CPU_SECONDS of CPU time on one core            -> reaches_the_target_within_the_byte_budget

TINY_BYTES = 1_400
TINY_ACCURACY = 0.93
TINY_CPU_SECONDS = 10.0


def state_bytes(model: nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in model.state_dict().values() if isinstance(t, torch.Tensor))


def tiny_outcome(train_tiny_model, seed: int, val_fraction: float, where: str) -> None:
    """Train the learner's design on part of the digits and measure its size and accuracy."""
    import copy
    import io

    from autograder.data import load_digits

    X, y = load_digits()
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    cut = round(val_fraction * len(y))
    held_out, training = order[:cut], order[cut:]
    with data_sealed(train_tiny_model, "train_tiny_model"), one_cpu_core() as clock:
        model = train_tiny_model(X[training].clone(), y[training].clone())
        seconds = clock["seconds"]()
    if not isinstance(model, nn.Module):
        fail(f"train_tiny_model should return the trained model, an nn.Module; it returned {describe(model)}.",
             "wrong_return")
    size = state_bytes(model)
    expect(size <= TINY_BYTES,
           f"the tensors of your model's state_dict take {size:,} bytes; the budget is {TINY_BYTES:,}. Fewer numbers, "
           "or fewer bytes per number.", "over_byte_budget")
    model.eval()
    device = next(model.parameters(), torch.empty(0)).device  # a learner's model may live on a GPU
    with torch.no_grad():
        try:
            logits = model(X[held_out].to(device))
        except RuntimeError as exc:
            fail(f"your model cannot take float32 inputs of shape ({len(held_out)}, 64): {str(exc)[:200]}. If it "
                 "stores its weights in another dtype, convert the input inside forward.", "wrong_input")
    if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (len(held_out), 10):
        fail(f"your model should return logits of shape ({len(held_out)}, 10); it returned {describe(logits)}.",
             "wrong_shape")
    logits = logits.cpu()
    accuracy = float((logits.float().argmax(dim=1) == y[held_out]).float().mean())
    expect(accuracy >= TINY_ACCURACY,
           f"your model classifies {accuracy:.1%} of {len(held_out)} held-out digits ({where}) correctly; the target "
           f"is {TINY_ACCURACY:.0%}.", "below_target")
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    # A copy with every number wiped, the state dict's and any plain tensor attribute's (which a checkpoint
    # of the state dict would not hold), then loaded from the saved state dict.
    copy_of_model = copy.deepcopy(model)
    with torch.no_grad():
        for tensor in copy_of_model.state_dict().values():
            if isinstance(tensor, torch.Tensor) and tensor.is_floating_point():
                tensor.zero_()
        for module in copy_of_model.modules():
            for name, value in list(vars(module).items()):
                if type(value) is torch.Tensor and value.is_floating_point():
                    setattr(module, name, torch.zeros_like(value))
    copy_of_model.load_state_dict(torch.load(buffer, weights_only=True))
    with torch.no_grad():
        again = copy_of_model(X[held_out].to(device)).cpu()
    expect(torch.equal(again.float().argmax(dim=1), logits.float().argmax(dim=1)),
           "a copy of your model loaded from its own state_dict predicts other classes: something it needs is not "
           "in the state_dict (a plain tensor attribute instead of a parameter or buffer?).", "state_incomplete")
    expect(seconds <= TINY_CPU_SECONDS,
           f"training used {seconds:.1f} s of CPU time on one core; the budget is {TINY_CPU_SECONDS:g} s.",
           "over_time_budget")


@checks.of("train_tiny_model")
def reaches_the_target_within_the_byte_budget(train_tiny_model, seed=0):
    tiny_outcome(train_tiny_model, seed, 0.2, f"a split seeded with {seed}")
