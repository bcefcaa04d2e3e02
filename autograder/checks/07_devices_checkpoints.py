"""Checks for 07_devices_checkpoints: choosing a device, moving batches, saving and resuming, a repair of
early stopping, a prediction about resuming, and the challenge of a model whose checkpoint fits a small
budget.

The checks are the judge (``autograder.learner``): the learner's functions run where the learner's code
runs, on inputs sent from here, and every expected value is computed here. What must happen next to the
learner's code is a probe of this module: pretending a machine has other GPUs while ``get_device`` runs,
watching which object sat where in a batch before and after ``move_to``, a full disk in the middle of
``torch.save``, a watch on ``torch.load``. Files exist only where the learner's code runs, in temporary
folders made and removed there.

No GPU is needed. Where the learner's machine has CUDA, the checks use it too (a batch moved there and
back, a model restored onto it); a tensor read back from a GPU that this process lacks carries the device
it was on (``observed_device``).

Each exercise's rules are the ids of its contract list in the notebook; every check names the rules it
enforces.
"""

from __future__ import annotations

import contextlib
import errno
import inspect
import io
import os
import pathlib
import shutil
import tempfile

import torch
import torch.nn.functional as F
from torch import nn

from autograder.checks._probes import call_with_data_sealed, outputs_of
from autograder.checks._support import what_it_is as _what
from autograder.checks._support import is_close
from autograder.learner import cpu_time, is_instance, is_remote, probe, seeded, type_name
from autograder.registry import Checks
from autograder.results import expect, fail

checks = Checks("07_devices_checkpoints")




def _where(tensor: torch.Tensor) -> torch.device:
    """The device a tensor was on where the learner's code runs (it may be a GPU this process lacks)."""
    return torch.device(getattr(tensor, "observed_device", None) or tensor.device)


def _learner_has_cuda() -> bool:
    return probe(torch.cuda.is_available) is True


# --- get_device -----------------------------------------------------------------
#
# rule                   check
# returns_device         returns_a_torch_device_not_a_string
# best_gpu_first         picks_the_best_gpu_there_is (pretended machines, and the real one)
# cpu_unless_preferred   takes_the_cpu_when_no_gpu_is_preferred


@contextlib.contextmanager
def _pretend(available):
    """PyTorch reports exactly the GPUs in ``available`` ("cuda", "mps") for the duration."""
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


def on_machine(available, function, *args, **kwargs):
    """A probe: ``function(*args, **kwargs)`` on a machine whose only GPUs are those in ``available``."""
    with _pretend(tuple(available)):
        return function(*args, **kwargs)


def made_on(device):
    """A probe: a tensor made on ``device`` (which fails where the machine has no such device)."""
    return torch.zeros(1, device=device)


def _as_device(value, call: str) -> torch.device:
    if isinstance(value, str):
        fail(f"{call} returned the string {value!r}, not a torch.device. A string names a device only loosely: "
             "it is checked when first used, and \"cuda\" and \"cuda:0\" compare unequal.", "returns_string",
             fix=f"return torch.device({value!r})")
    if type(value) is not torch.device:
        fail(f"{call} returned {_what(value)}; expected a torch.device.", "not_a_device")
    return value


def _machine(available) -> str:
    names = {"cuda": "CUDA", "mps": "MPS"}
    found = [names[kind] for kind in ("cuda", "mps") if kind in available]
    return f"a machine with {' and '.join(found)}" if found else "a machine without any GPU"


@checks.of("get_device", rule="returns_device")
def returns_a_torch_device_not_a_string(get_device):
    _as_device(get_device(), "get_device()")
    _as_device(get_device(prefer_gpu=False), "get_device(prefer_gpu=False)")


@checks.of("get_device", rule="best_gpu_first")
def picks_the_best_gpu_there_is(get_device, available=("cuda",)):
    available = tuple(available)
    for machine in (available, ()):
        expected = "cuda" if "cuda" in machine else "mps" if "mps" in machine else "cpu"
        device = _as_device(probe(on_machine, machine, get_device, prefer_gpu=True), "get_device(prefer_gpu=True)")
        if device.type == expected:
            continue
        where = f"on {_machine(machine)}, get_device(prefer_gpu=True) returned {device}; expected {expected}."
        if not machine:
            fail(f"{where} It chose a GPU without asking whether the machine has one.", "no_availability_check",
                 fix="ask torch.cuda.is_available() (and torch.backends.mps.is_available()) before choosing a GPU")
        if expected == "cuda" and device.type == "mps":
            fail(f"{where} Both GPUs are there, and CUDA comes first.", "wrong_priority")
        if expected == "mps":
            fail(f"{where} Apple's GPUs are reached through MPS, the second choice after CUDA.", "missing_mps",
                 fix="after CUDA, ask torch.backends.mps.is_available()")
        fail(where, "wrong_device")
    # and on the machine the learner's code runs on, for real: the device it picks must work there
    real = "cuda" if probe(torch.cuda.is_available) is True else "mps" if probe(torch.backends.mps.is_available) \
        is True else "cpu"
    device = _as_device(get_device(), "get_device()")
    expect(device.type == real, f"on the machine your code runs on, get_device() returned {device}; it has "
           f"{'no GPU' if real == 'cpu' else real.upper()}, so expected {real}.", "wrong_device")
    made = probe(made_on, device)
    expect(_where(made).type == real, f"a tensor made on get_device()'s device ended up on {_where(made)}.",
           "wrong_device")


@checks.of("get_device", rule="cpu_unless_preferred")
def takes_the_cpu_when_no_gpu_is_preferred(get_device, available=("cuda",)):
    for machine in (tuple(available), ("cuda", "mps")):
        device = _as_device(probe(on_machine, machine, get_device, prefer_gpu=False), "get_device(prefer_gpu=False)")
        expect(device.type == "cpu", f"on {_machine(machine)}, get_device(prefer_gpu=False) returned {device}: "
               "prefer_gpu=False asks for the CPU even where a GPU is there (to debug, say).", "ignores_preference")


# --- move_to --------------------------------------------------------------------
#
# rule                     check
# moves_every_tensor       moves_a_single_tensor, moves_every_tensor_at_any_depth (and to CUDA where there is one)
# other_values_untouched   leaves_other_values_untouched
# keeps_structure          keeps_the_structure
# keeps_values             keeps_values_and_dtypes
# caller_batch_unchanged   leaves_the_callers_batch_as_it_was
#
# Each check looks at its own rule only, so a mistake is named by the rule it breaks: the tensors are
# matched by their place in the batch (the same keys and positions), whatever containers hold them.

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
                 "flag": level % 2 == 0, "mask": tensor(2) > 0, "half": tensor(2).half(), "ids": torch.arange(3)}
    return (tensor(4, 3), torch.arange(4), [inner, f"tag_{seed}"])


def _layout(obj, path: str = "batch", found: dict | None = None) -> dict:
    """Every node of a nested batch by its place (``batch[2][0]['pair']``): the object's id and what it is."""
    found = {} if found is None else found
    if torch.is_tensor(obj):
        found[path] = (id(obj), "tensor", str(obj.device))
    elif type(obj) is dict:
        found[path] = (id(obj), "dict", list(obj))
        for key, value in obj.items():
            _layout(value, f"{path}[{key!r}]", found)
    elif type(obj) in (list, tuple):
        found[path] = (id(obj), type(obj).__name__, len(obj))
        for index, item in enumerate(obj):
            _layout(item, f"{path}[{index}]", found)
    else:
        found[path] = (id(obj), "value", type(obj).__name__)
    return found


def moved_and_watched(move_to, batch, device):
    """A probe: ``move_to(batch, device)`` as it came back, and the layout (:func:`_layout`) of the caller's
    batch before and after the call and of what came back."""
    before = _layout(batch)
    moved = move_to(batch, device)
    return moved, before, _layout(batch), _layout(moved)


def there_and_back(move_to, batch, device):
    """A probe: ``move_to(batch, device)``, and that moved back to the CPU by ``move_to`` again."""
    there = move_to(batch, device)
    return there, move_to(there, torch.device("cpu"))


def _move(move_to, batch, device, watched=moved_and_watched):
    try:
        return probe(watched, move_to, batch, device)
    except AttributeError as exc:
        if "has no attribute 'to'" in str(exc):
            kind = str(exc).split("'")[1]
            fail(f"move_to called .to() on {'an' if kind[:1] in 'aeiou' else 'a'} {kind}, which has no such method: "
                 "only tensors move, and everything else must come back as it was.", "non_tensor_moved")
        raise


def _nodes(obj, path: str = "batch", found: dict | None = None) -> dict:
    """Every node of a batch (as it came back, as data) by its place."""
    found = {} if found is None else found
    found[path] = obj
    if type(obj) is dict:
        for key, value in obj.items():
            _nodes(value, f"{path}[{key!r}]", found)
    elif type(obj) in (list, tuple):
        for index, item in enumerate(obj):
            _nodes(item, f"{path}[{index}]", found)
    return found


def _expect_moved(original, moved, device: torch.device) -> None:
    """Every tensor of ``original`` that came back in the same place is on ``device``."""
    sent, back = _nodes(original), _nodes(moved)
    for path, tensor in sent.items():
        found = back.get(path)
        if not isinstance(tensor, torch.Tensor) or not isinstance(found, torch.Tensor):
            continue
        if _where(found).type != device.type:
            depth = path.count("[")
            if depth <= 1:
                fail(f"{path} came back on {_where(found)}, not on {device}. tensor.to(device) makes a moved copy "
                     "and leaves the original where it was: a copy thrown away moves nothing.", "not_moved",
                     fix="return obj.to(device) for a tensor")
            fail(f"{path} came back on {_where(found)}, not on {device}: it sits {depth} containers deep, and only "
                 "the tensors near the top were moved. A container holds smaller batches, each to be moved the same "
                 "way, at any depth.", "not_recursive", fix="call move_to on every item of a container")


@checks.of("move_to", rule="moves_every_tensor")
def moves_a_single_tensor(move_to, seed=0, depth=2):
    tensor = torch.randn(3, 2, generator=torch.Generator().manual_seed(seed))
    for device in (_META, torch.device("cpu")):
        moved = _move(move_to, tensor, device)[0]
        if not isinstance(moved, torch.Tensor):
            fail(f"move_to(tensor, {device}) returned {_what(moved)}; expected the tensor, moved.", "not_moved")
        _expect_moved(tensor, moved, device)


@checks.of("move_to", rule="other_values_untouched")
def leaves_other_values_untouched(move_to, seed=0, depth=2):
    batch = _batch(seed, depth)
    _, before, _, came_back = _move(move_to, batch, _META)
    for path, (node, kind, what) in before.items():
        if kind != "value":
            continue
        found = came_back.get(path)
        if found is None:
            continue  # the structure changed there: keeps_the_structure says how
        expect(found[0] == node, f"{path} was {'an' if what[:1] in 'aeiou' else 'a'} {what}, not a tensor, and came "
               f"back as another object ({found[2]}): values that are not tensors come back as they are, the very "
               "same object.", "non_tensor_changed")


@checks.of("move_to", rule="moves_every_tensor")
def moves_every_tensor_at_any_depth(move_to, seed=0, depth=2):
    batch = _batch(seed, depth)
    devices = [_META] + ([torch.device("cuda")] if _learner_has_cuda() else [])
    for device in devices:
        if device.type == "cuda":  # there, and back again
            there, back = _move(move_to, batch, device, watched=there_and_back)
            _expect_moved(batch, there, device)
            _expect_moved(batch, back, torch.device("cpu"))
        else:
            _expect_moved(batch, _move(move_to, batch, device)[0], device)


@checks.of("move_to", rule="keeps_structure")
def keeps_the_structure(move_to, seed=0, depth=2):
    batch = _batch(seed, depth)
    _, before, _, came_back = _move(move_to, batch, _META)
    for path, (_, kind, what) in before.items():
        found = came_back.get(path)
        if found is None:
            fail(f"{path} is missing from what move_to returned: every item of every container comes back.",
                 "structure_changed")
        if kind in ("dict", "list", "tuple"):
            if found[1] != kind:
                fail(f"{path} was a {kind} and came back as {'an' if found[1][:1] in 'aeiou' else 'a'} {found[1]}: "
                     f"code downstream may rely on the container's type (a tuple unpacks, a list can grow).",
                     "structure_changed", fix=f"build a {kind} of the moved items")
            expect(found[2] == what, f"{path} had {'the keys ' + str(what) if kind == 'dict' else f'{what} items'}; "
                   f"it came back with {'the keys ' + str(found[2]) if kind == 'dict' else f'{found[2]} items'}.",
                   "structure_changed")
        elif kind == "tensor" and found[1] != "tensor":
            fail(f"{path} was a tensor and came back as {found[2]}.", "structure_changed")


@checks.of("move_to", rule="keeps_values")
def keeps_values_and_dtypes(move_to, seed=0, depth=2):
    batch = _batch(seed, depth)
    for device in (torch.device("cpu"), _META):
        moved = _move(move_to, batch, device)[0]
        back = _nodes(moved)
        for path, tensor in _nodes(batch).items():
            found = back.get(path)
            if not isinstance(tensor, torch.Tensor) or not isinstance(found, torch.Tensor):
                continue
            expect(found.dtype == tensor.dtype and found.shape == tensor.shape,
                   f"{path} was {_what(tensor)} and came back as {_what(found)}: moving changes where the numbers "
                   "live, never their type or shape (a cast to float32 turns labels and masks into something else).",
                   "tensor_changed", fix="call .to(device) alone, without a dtype")
            if device.type == "cpu":
                expect(is_close(found, tensor, atol=0, rtol=0), f"{path} changed its values on the way.",
                       "tensor_changed")


@checks.of("move_to", rule="caller_batch_unchanged")
def leaves_the_callers_batch_as_it_was(move_to, seed=0, depth=2):
    batch = _batch(seed, depth)
    _, before, after, moved = _move(move_to, batch, _META)
    changed = [path for path in before if after.get(path) != before[path]]
    if changed or len(after) != len(before):
        where = changed[0] if changed else "batch"
        fail(f"move_to changed the batch it was given: after the call, the caller's {where} holds other objects "
             "than before (the moved tensors). The caller may still need its batch as it was (to log it, or to "
             "retry on the CPU), just as tensor.to(device) leaves the tensor it was called on alone.",
             "modified_input", fix="build a new container of the moved items instead of assigning into the old one")
    theirs = {node for node, kind, _ in before.values() if kind in ("dict", "list")}
    reused = [path for path, (node, kind, _) in moved.items() if kind in ("dict", "list") and node in theirs]
    expect(not reused, f"move_to returned the caller's own {moved[reused[0]][1] if reused else ''} at "
           f"{reused[0] if reused else ''}, refilled: the caller's batch and the moved one are then one and the "
           "same, and the caller's changed.", "modified_input", fix="return a new container")


# --- checkpoints ----------------------------------------------------------------
#
# save_checkpoint:
# rule                 check
# at_path              writes_its_checkpoint_at_path_and_nothing_else
# weights_only         writes_a_file_that_loads_with_weights_only
# three_keys           holds_exactly_the_three_keys
# epoch_int            stores_the_epoch_as_an_int
# resumes_exactly      saves_what_it_takes_to_resume_exactly (Adam; SGD with momentum)
# never_half_written   never_leaves_a_half_written_checkpoint (a full disk in the middle of torch.save)
#
# load_checkpoint:
# rule                 check
# returns_epoch        returns_the_saved_epoch
# restores_model       restores_the_model_it_is_given (also onto a GPU, where the learner's machine has one)
# restores_optimizer   restores_the_optimizer_so_training_resumes_exactly
# optimizer_optional   works_without_an_optimizer
# reads_safely         reads_the_file_safely
# map_location         hands_map_location_on_to_torch_load (a string or a torch.device, by keyword or position)
#
# The models and optimizers are built and trained here; the learner's code gets copies of them, built
# where it runs and loaded with the same state. The load checks write, where the learner's code runs, a
# checkpoint made here by the recipe the notebook states.


def _model() -> nn.Module:
    """A small network with buffers (batch norm's running statistics); a probe too, to build one where the
    learner's code runs."""
    return nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))


def _optimizer(kind: str, model) -> torch.optim.Optimizer:
    """Adam, or SGD with momentum, over the model's parameters; a probe too."""
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
        F.cross_entropy(model(inputs), targets).backward()
        optimizer.step()


def _trained(seed: int, kind: str = "adam"):
    """A model with buffers and an optimizer with state, after a few steps (here, in the judge)."""
    with seeded(seed):
        model = _model()
    optimizer = _optimizer(kind, model)
    _train(model, optimizer, _data(seed, 3))
    return model, optimizer


def _fresh(seed: int, kind: str = "adam"):
    with seeded(seed + 1000):
        model = _model()
    return model, _optimizer(kind, model)


def _theirs(model: nn.Module, optimizer: torch.optim.Optimizer | None = None, kind: str = "adam"):
    """A copy of ``model`` (and ``optimizer``) where the learner's code runs, in the same state."""
    their_model = probe(_model)
    their_model.load_state_dict(model.state_dict())
    their_model.train(model.training)
    if optimizer is None:
        return their_model, None
    their_optimizer = probe(_optimizer, kind, their_model)
    their_optimizer.load_state_dict(optimizer.state_dict())
    return their_model, their_optimizer


def _outputs(model: nn.Module, seed: int) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(torch.randn(6, 5, generator=torch.Generator().manual_seed(seed + 99)))


def _same_state(a: dict, b: dict) -> bool:
    return list(a) == list(b) and all(is_close(x, y, atol=1e-7, rtol=1e-6) for x, y in zip(a.values(), b.values()))


def _continues_alike(uninterrupted, resumed, seed: int) -> bool:
    """Three more steps of both runs end on the same weights and buffers."""
    more = _data(seed + 1, 3)
    _train(*uninterrupted, more)
    _train(*resumed, more)
    return _same_state(uninterrupted[0].state_dict(), resumed[0].state_dict())


def _optimizer_name(kind: str) -> str:
    return "Adam" if kind == "adam" else "SGD with momentum"


@contextlib.contextmanager
def _folder():
    """A temporary folder where the learner's code runs (its path, as a string), removed afterwards."""
    folder = probe(tempfile.mkdtemp, prefix="autograder-checkpoints-")
    try:
        yield folder
    finally:
        probe(shutil.rmtree, folder, ignore_errors=True)


def _path(folder: str, name: str = "checkpoint.pt"):
    """A pathlib.Path in that folder, where the learner's code runs (the notebook passes paths as Paths)."""
    return probe(pathlib.Path, folder, name)


def read_checkpoint(path):
    """A probe: what ``torch.load(path, weights_only=True)`` reads from the file (``{"content": ...}``), or
    why it cannot, with the kinds of object that a full unpickling finds in it (``{"error": ..., "holds": ...}``)."""
    try:
        return {"content": torch.load(path, weights_only=True)}
    except FileNotFoundError:
        return {"error": "no such file", "holds": []}
    except Exception as exc:
        text = str(exc).strip()
        first_line = text.splitlines()[0] if text else type(exc).__name__
    try:
        whole = torch.load(path, weights_only=False)
    except Exception:
        whole = None
    values = list(whole.values()) if isinstance(whole, dict) else [whole]
    holds = ["module" if isinstance(v, nn.Module) else "optimizer" if isinstance(v, torch.optim.Optimizer)
             else "method" if inspect.ismethod(v) else type(v).__name__ for v in values]
    return {"error": first_line[:300], "holds": holds}


def _save(save_checkpoint, folder: str, model, optimizer, epoch: int):
    """The learner's save_checkpoint, called where it runs; the path it was given."""
    path = _path(folder)
    save_checkpoint(path, model, optimizer, epoch)
    return path


def _read_saved(path):
    """The checkpoint as torch.load(path, weights_only=True) reads it, or a diagnosis of why it cannot."""
    found = probe(read_checkpoint, path)
    if "content" in found:
        return found["content"]
    if found["error"] == "no such file":
        fail("save_checkpoint wrote nothing at the path it was given.", "no_file", fix="pass `path` to torch.save")
    holds = found["holds"]
    if "module" in holds or "optimizer" in holds:
        fail("the checkpoint holds a whole module or optimizer, pickled, so torch.load(path, weights_only=True) "
             "refuses it: loading it would run the unpickler, which can run any code. A checkpoint holds the "
             "state_dict of each instead (tensors and numbers only).", "pickled_module",
             fix="save model.state_dict() and optimizer.state_dict()")
    if "method" in holds:
        fail("the checkpoint holds the method state_dict itself (and with it the whole module), not the "
             "state_dict it returns.", "pickled_module", fix="call it: model.state_dict(), optimizer.state_dict()")
    fail(f"torch.load(path, weights_only=True) cannot read the checkpoint ({found['error'][:200]}): it holds "
         "something other than tensors, numbers, strings and plain containers.", "pickled_module")


@checks.of("save_checkpoint", rule="at_path")
def writes_its_checkpoint_at_path_and_nothing_else(save_checkpoint, epoch=3, seed=0):
    model, optimizer = _trained(seed)
    with _folder() as folder:
        _save(save_checkpoint, folder, *_theirs(model, optimizer), epoch)
        files = sorted(probe(os.listdir, folder))
    if "checkpoint.pt" not in files:
        where = f" (it wrote {', '.join(files)} instead)" if files else ""
        fail(f"save_checkpoint wrote nothing at the path it was given{where}.", "no_file",
             fix="pass `path` itself to torch.save, or rename the file you wrote to it")
    others = [name for name in files if name != "checkpoint.pt"]
    expect(not others, f"after a successful save, the folder holds {', '.join(others)} besides the checkpoint: each "
           "save would leave another such file behind.", "left_files_behind",
           fix="move the file into place (os.replace) instead of copying it, or remove it afterwards")


@checks.of("save_checkpoint", rule="weights_only")
def writes_a_file_that_loads_with_weights_only(save_checkpoint, epoch=3, seed=0):
    model, optimizer = _trained(seed)
    with _folder() as folder:
        _read_saved(_save(save_checkpoint, folder, *_theirs(model, optimizer), epoch))


@checks.of("save_checkpoint", rule="three_keys")
def holds_exactly_the_three_keys(save_checkpoint, epoch=3, seed=0):
    keys = ("model_state_dict", "optimizer_state_dict", "epoch")
    model, optimizer = _trained(seed)
    with _folder() as folder:
        saved = _read_saved(_save(save_checkpoint, folder, *_theirs(model, optimizer), epoch))
    if not isinstance(saved, dict):
        fail(f"the checkpoint should be a dict with the keys {', '.join(keys)}; it is {_what(saved)}.", "missing_keys")
    missing = [key for key in keys if key not in saved]
    expect(not missing, f"the checkpoint lacks the key{'s' if len(missing) > 1 else ''} "
           f"{', '.join(repr(k) for k in missing)}; it has {', '.join(repr(k) for k in saved) or 'none'}.",
           "missing_keys")
    extra = [key for key in saved if key not in keys]
    expect(not extra, f"the checkpoint has keys beyond the three asked for: {', '.join(repr(k) for k in extra)}.",
           "extra_keys")


@checks.of("save_checkpoint", rule="epoch_int")
def stores_the_epoch_as_an_int(save_checkpoint, epoch=3, seed=0):
    model, optimizer = _trained(seed)
    with _folder() as folder:
        saved = _read_saved(_save(save_checkpoint, folder, *_theirs(model, optimizer), epoch))
    if not isinstance(saved, dict) or "epoch" not in saved:
        fail("the checkpoint has no 'epoch' entry.", "missing_keys")
    value = saved["epoch"]
    if type(value) is not int:
        fail(f"the saved epoch is {_what(value)}; expected a plain Python int, which any code can read back "
             "(a tensor drags a device and a dtype along).", "epoch_not_int", fix="save int(epoch)")
    expect(value == epoch, f"save_checkpoint(..., epoch={epoch}) saved the epoch {value}; it is the number of "
           "epochs completed, as given.", "wrong_epoch")


def _restore(saved: dict, kind: str, seed: int):
    """A fresh model and optimizer restored from a checkpoint dict by the recipe the notebook states."""
    model, optimizer = _fresh(seed, kind)
    state = saved["model_state_dict"]
    if isinstance(state, dict):
        missing = [key for key in model.state_dict() if key not in state]
        if missing and len(missing) < len(model.state_dict()):
            fail(f"the saved model state lacks {', '.join(missing)}: buffers (such as batch norm's running "
                 "statistics) are part of the model's state as much as its parameters are.", "wrong_state_dict",
                 fix="save model.state_dict()")
    try:
        model.load_state_dict(state)
    except Exception as exc:
        fail(f"model.load_state_dict(checkpoint['model_state_dict']) fails ({type(exc).__name__}: "
             f"{str(exc).strip().splitlines()[0][:200]}).", "wrong_state_dict", fix="save model.state_dict() there")
    try:
        optimizer.load_state_dict(saved["optimizer_state_dict"])
    except Exception as exc:
        fail(f"optimizer.load_state_dict(checkpoint['optimizer_state_dict']) fails ({type(exc).__name__}: "
             f"{str(exc).strip().splitlines()[0][:200]}).", "wrong_state_dict",
             fix="save optimizer.state_dict() there")
    return model, optimizer


@checks.of("save_checkpoint", rule="resumes_exactly")
def saves_what_it_takes_to_resume_exactly(save_checkpoint, epoch=3, seed=0):
    for kind in ("adam", "sgd_momentum"):
        model, optimizer = _trained(seed, kind)
        with _folder() as folder:
            saved = _read_saved(_save(save_checkpoint, folder, *_theirs(model, optimizer, kind), epoch))
        if not isinstance(saved, dict) or any(key not in saved for key in ("model_state_dict", "optimizer_state_dict")):
            fail("the checkpoint lacks 'model_state_dict' or 'optimizer_state_dict'.", "missing_keys")
        restored, restored_optimizer = _restore(saved, kind, seed)
        expect(is_close(_outputs(restored, seed), _outputs(model, seed), atol=0, rtol=0),
               "a model restored from your checkpoint computes other outputs than the saved one.", "model_state_wrong",
               fix="save model.state_dict(): it holds the buffers too")
        expect(_continues_alike((model, optimizer), (restored, restored_optimizer), seed),
               f"after restoring your checkpoint, three more steps of {_optimizer_name(kind)} end on other weights "
               "than the run that was never interrupted: the optimizer's state (its running averages, its "
               "velocity) did not come back as it was.", "optimizer_not_restored",
               fix="save optimizer.state_dict() of the optimizer you were given")


def _failing_save(real):
    def save(obj, f, *args, **kwargs):
        whole = io.BytesIO()
        real(obj, whole, *args, **kwargs)
        part = whole.getvalue()[: len(whole.getvalue()) // 2]
        if isinstance(f, (str, os.PathLike)):
            with open(f, "wb") as out:
                out.write(part)
        else:
            f.write(part)
        save.calls += 1
        raise OSError(errno.ENOSPC, "No space left on device (the check's full disk)")

    save.calls = 0
    return save


def save_on_a_full_disk(save_checkpoint, *args):
    """A probe: ``save_checkpoint(*args)`` while the disk fills up half-way through every ``torch.save``
    (half the bytes are written, then OSError). Whether torch.save was called, and what escaped the call."""
    real = torch.save
    failing = _failing_save(real)
    owners = [(torch, "save"), (torch.serialization, "save")]
    learner_globals = getattr(save_checkpoint, "__globals__", None)
    if isinstance(learner_globals, dict):
        owners += [(learner_globals, name) for name, value in list(learner_globals.items()) if value is real]
    saved = [(owner, name, owner[name] if isinstance(owner, dict) else getattr(owner, name)) for owner, name in owners]
    for owner, name, _ in saved:
        owner.__setitem__(name, failing) if isinstance(owner, dict) else setattr(owner, name, failing)
    raised = None
    try:
        save_checkpoint(*args)
    except Exception as exc:
        raised = type(exc).__name__
    finally:
        for owner, name, value in saved:
            owner.__setitem__(name, value) if isinstance(owner, dict) else setattr(owner, name, value)
    return {"saves": failing.calls, "raised": raised}


@checks.of("save_checkpoint", rule="never_half_written")
def never_leaves_a_half_written_checkpoint(save_checkpoint, epoch=3, seed=0):
    model, optimizer = _trained(seed)
    theirs = _theirs(model, optimizer)
    with _folder() as folder:
        path = _save(save_checkpoint, folder, *theirs, epoch)
        if probe(os.path.exists, os.path.join(folder, "checkpoint.pt")) is not True:
            fail("save_checkpoint wrote nothing at the path it was given.", "no_file")
        before = path.read_bytes()
        outcome = probe(save_on_a_full_disk, save_checkpoint, path, *theirs, epoch + 1)
        if not outcome["saves"]:
            fail("the check fills the disk while torch.save writes, and your save_checkpoint never called "
                 "torch.save, so it cannot tell what a failed save leaves behind.", "no_torch_save")
        there = probe(os.path.exists, os.path.join(folder, "checkpoint.pt")) is True
        after = path.read_bytes() if there else b""
    expect(after == before,
           f"the disk filled up half-way through a second save (epoch {epoch + 1}), and the file at path now holds "
           f"{len(after):,} bytes instead of the {len(before):,} of the previous checkpoint: the only good checkpoint "
           "is gone. Writing straight into the file at path destroys the old one before the new one is whole.",
           "half_written",
           fix="write the new checkpoint to another file in the same folder, then os.replace it onto path")


def _trained_checkpoint(seed: int, kind: str, epoch: int):
    """A model and optimizer trained here from ``seed``, and the bytes of their checkpoint as the notebook
    states it. (It takes no model of its own: nothing here saves what a learner hands it.)"""
    model, optimizer = _trained(seed, kind)
    buffer = io.BytesIO()
    torch.save({"model_state_dict": model.state_dict(), "optimizer_state_dict": optimizer.state_dict(),
                "epoch": epoch}, buffer)
    return model, optimizer, buffer.getvalue()


def _their_checkpoint(folder: str, data: bytes):
    path = _path(folder)
    path.write_bytes(data)
    return path


def _load(load_checkpoint, path, model, optimizer=None, **kwargs):
    try:
        if optimizer is None:
            return load_checkpoint(path, model, **kwargs)
        return load_checkpoint(path, model, optimizer, **kwargs)
    except AttributeError as exc:
        if optimizer is None and "NoneType" in str(exc):
            fail(f"load_checkpoint(path, model), without an optimizer, raised AttributeError: {exc}. The optimizer "
                 "is optional: a model restored for predictions alone has none.", "optimizer_required",
                 fix="restore the optimizer only `if optimizer is not None`")
        raise


@checks.of("load_checkpoint", rule="returns_epoch")
def returns_the_saved_epoch(load_checkpoint, epoch=3, seed=0):
    model, optimizer, data = _trained_checkpoint(seed, "adam", epoch)
    fresh, fresh_optimizer = _fresh(seed)
    with _folder() as folder:
        path = _their_checkpoint(folder, data)
        found = _load(load_checkpoint, path, *_theirs(fresh, fresh_optimizer))
    if type(found) is not int:
        hint = " (the whole checkpoint)" if isinstance(found, dict) else ""
        fail(f"load_checkpoint returned {_what(found)}{hint}; expected the saved epoch, {epoch}, as a Python int.",
             "wrong_type", fix="return int(checkpoint['epoch'])" if isinstance(found, torch.Tensor)
             else "return checkpoint['epoch']")
    expect(found == epoch, f"the checkpoint holds epoch {epoch}; load_checkpoint returned {found}.", "wrong_epoch")


@checks.of("load_checkpoint", rule="restores_model")
def restores_the_model_it_is_given(load_checkpoint, epoch=3, seed=0):
    model, optimizer, data = _trained_checkpoint(seed, "adam", epoch)
    fresh, fresh_optimizer = _fresh(seed)
    places = [("cpu", "cpu")] + ([("cuda", torch.device("cuda"))] if _learner_has_cuda() else [])
    with _folder() as folder:
        path = _their_checkpoint(folder, data)
        for device, map_location in places:
            theirs, their_optimizer = _theirs(fresh, fresh_optimizer)
            theirs.to(device)
            _load(load_checkpoint, path, theirs, their_optimizer, map_location=map_location)
            state = theirs.state_dict()
            moved = [name for name, tensor in state.items() if _where(tensor).type != device]
            expect(not moved, f"after load_checkpoint(..., map_location={map_location!r}) into a model on the "
                   f"{device.upper()}, its {moved[0] if moved else ''} is on another device: load into the model's "
                   "own tensors, which stay where the model lives.", "model_moved")
            expect(_same_state({k: v.cpu() for k, v in state.items()}, model.state_dict()),
                   f"after load_checkpoint the model it was given (on the {device.upper()}) holds other weights than "
                   "the checkpoint: the caller keeps using its own model object, so the saved state must go into "
                   "that very object.", "model_not_restored",
                   fix="model.load_state_dict(checkpoint['model_state_dict'])")


@checks.of("load_checkpoint", rule="restores_optimizer")
def restores_the_optimizer_so_training_resumes_exactly(load_checkpoint, epoch=3, seed=0):
    for kind in ("adam", "sgd_momentum"):
        model, optimizer, data = _trained_checkpoint(seed, kind, epoch)
        fresh, fresh_optimizer = _fresh(seed, kind)
        with _folder() as folder:
            path = _their_checkpoint(folder, data)
            theirs, their_optimizer = _theirs(fresh, fresh_optimizer, kind)
            _load(load_checkpoint, path, theirs, their_optimizer)
            fresh.load_state_dict(theirs.state_dict())
            try:
                fresh_optimizer.load_state_dict(their_optimizer.state_dict())
            except Exception as exc:
                fail(f"after load_checkpoint the optimizer's state cannot be read back ({type(exc).__name__}: "
                     f"{str(exc)[:200]}).", "optimizer_not_restored")
        expect(_continues_alike((model, optimizer), (fresh, fresh_optimizer), seed),
               f"after load_checkpoint, three more steps of {_optimizer_name(kind)} end on other weights than the run "
               "that was never interrupted: the optimizer it was given did not get its saved state back (its running "
               "averages, its velocity).", "optimizer_not_restored",
               fix="optimizer.load_state_dict(checkpoint['optimizer_state_dict'])")


@checks.of("load_checkpoint", rule="optimizer_optional")
def works_without_an_optimizer(load_checkpoint, epoch=3, seed=0):
    model, _, data = _trained_checkpoint(seed, "adam", epoch)
    fresh, _ = _fresh(seed)
    with _folder() as folder:
        path = _their_checkpoint(folder, data)
        theirs, _ = _theirs(fresh)
        _load(load_checkpoint, path, theirs)
        state = theirs.state_dict()
    expect(_same_state(state, model.state_dict()),
           "load_checkpoint(path, model), without an optimizer, did not restore the model.", "model_not_restored")


class _Observed(BaseException):
    """Stops the learner's load once torch.load has been seen called (not an Exception: no `except` swallows it)."""


def _place(value):
    """A map_location as data: a string or a device as it is, a dict of strings, or a note of what it was."""
    if value is None or isinstance(value, (str, torch.device)):
        return value
    if isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        return dict(value)
    return f"<{type(value).__name__}>"


def load_watched(load_checkpoint, args, kwargs, stop=False):
    """A probe: ``load_checkpoint(*args, **kwargs)`` with torch.load watched. What it returned (None when
    ``stop``: each torch.load is then stopped as soon as it is seen), and for each call of torch.load the
    map_location and weights_only it was given, bound as torch.load binds them (positional or keyword)."""
    real = torch.load
    signature = inspect.signature(real)
    calls = []

    def watched(*a, **k):
        try:
            bound = signature.bind(*a, **k).arguments
        except TypeError:
            bound = {}
        calls.append({"map_location": _place(bound.get("map_location")), "weights_only": bound.get("weights_only")})
        if stop:
            raise _Observed()
        return real(*a, **k)

    owners = [(torch, "load"), (torch.serialization, "load")]
    learner_globals = getattr(load_checkpoint, "__globals__", None)
    if isinstance(learner_globals, dict):
        owners += [(learner_globals, name) for name, value in list(learner_globals.items()) if value is real]
    saved = [(owner, name, owner[name] if isinstance(owner, dict) else getattr(owner, name)) for owner, name in owners]
    for owner, name, _ in saved:
        owner.__setitem__(name, watched) if isinstance(owner, dict) else setattr(owner, name, watched)
    result = None
    try:
        result = load_checkpoint(*args, **kwargs)
    except _Observed:
        pass
    finally:
        for owner, name, value in saved:
            owner.__setitem__(name, value) if isinstance(owner, dict) else setattr(owner, name, value)
    return None if stop else result, calls


def _loads_seen(calls: list) -> list:
    expect(bool(calls), "load_checkpoint never called torch.load (nor torch.serialization.load), which the exercise "
           "asks it to read the file with.", "no_torch_load")
    return calls


@checks.of("load_checkpoint", rule="reads_safely")
def reads_the_file_safely(load_checkpoint, epoch=3, seed=0):
    model, optimizer, data = _trained_checkpoint(seed, "adam", epoch)
    fresh, fresh_optimizer = _fresh(seed)
    with _folder() as folder:
        path = _their_checkpoint(folder, data)
        _, calls = probe(load_watched, load_checkpoint, (path, *_theirs(fresh, fresh_optimizer)), {})
    for call in _loads_seen(calls):
        expect(call["weights_only"] is not False,
               "load_checkpoint called torch.load with weights_only=False: reading a file that way runs Python's "
               "unpickler, which runs whatever code the file holds. Your own checkpoints hold state dicts only, "
               "which weights_only=True reads.", "unsafe_load", fix="torch.load(path, ..., weights_only=True)")


def _same_place(seen, given) -> bool:
    try:
        return isinstance(seen, (str, torch.device)) and torch.device(seen) == torch.device(given)
    except (RuntimeError, TypeError):
        return False


@checks.of("load_checkpoint", rule="map_location")
def hands_map_location_on_to_torch_load(load_checkpoint, epoch=3, seed=0):
    model, optimizer, data = _trained_checkpoint(seed, "adam", epoch)
    fresh, fresh_optimizer = _fresh(seed)
    with _folder() as folder:
        path = _their_checkpoint(folder, data)
        # "meta" is a place every machine has and no checkpoint was saved on: a load that goes elsewhere
        # ignored it. Each torch.load is stopped as soon as it is seen, so nothing loads onto it.
        for args, kwargs, shown in (((path, *_theirs(fresh, fresh_optimizer)), {"map_location": "meta"},
                                     "map_location='meta'"),
                                    ((path, *_theirs(fresh, fresh_optimizer), torch.device("meta")), {},
                                     "torch.device('meta') as its fourth argument")):
            _, calls = probe(load_watched, load_checkpoint, args, kwargs, stop=True)
            for call in _loads_seen(calls):
                where = call["map_location"]
                expect(_same_place(where, "meta"),
                       f"load_checkpoint, given {shown}, called torch.load with map_location={where!r}: the caller "
                       "says where the tensors must go (a GPU checkpoint read on a laptop goes to the CPU), and "
                       "load_checkpoint passes that on.", "map_location_ignored",
                       fix="torch.load(path, map_location=map_location, weights_only=True)")


# --- repair: train_keeping_the_best ------------------------------------------------------
#
# rule                 check
# keeps_the_best       keeps_the_weights_of_the_best_epoch_and_returns_its_loss (parameters and buffers)
# returns_lowest_loss  keeps_the_weights_of_the_best_epoch_and_returns_its_loss
#
# The training runs where the learner's code runs, on a model and optimizer built there in the same state
# as those here; here, the same training runs by the given recipe, keeping the state after each epoch, so
# the best one is known. (That run is written inside the check: a helper of this module that returned it
# would answer the exercise.)


def _repair_model() -> nn.Module:
    """The repair's network (a probe too). No bias before its batch norm: such a bias gets no gradient, and Adam
    turns the rounding noise it gets instead into steps of lr, which no two machines round alike."""
    return nn.Sequential(nn.Linear(5, 8, bias=False), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))


def _repair_problem(seed: int):
    """A small, noisy problem whose validation loss falls, then rises (the network overfits)."""
    gen = torch.Generator().manual_seed(seed + 700)
    teacher = torch.randn(5, 3, generator=gen)

    def sample(n):
        X = torch.randn(n, 5, generator=gen)
        scores = X @ teacher + 1.5 * torch.randn(n, 3, generator=gen)
        return X, scores.argmax(dim=1)

    train = [sample(12) for _ in range(2)]
    return train, sample(64)


@checks.of("train_keeping_the_best", rule=("keeps_the_best", "returns_lowest_loss"))
def keeps_the_weights_of_the_best_epoch_and_returns_its_loss(train_keeping_the_best, epochs=12, seed=0):
    with seeded(seed):
        model = _repair_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    train, val = _repair_problem(seed)
    theirs = probe(_repair_model)
    theirs.load_state_dict(model.state_dict())
    their_optimizer = probe(torch.optim.Adam, theirs.parameters(), lr=0.05)
    returned = train_keeping_the_best(theirs, their_optimizer, F.cross_entropy, train, val, epochs)
    state = theirs.state_dict()
    losses, states = [], []
    for _ in range(epochs):
        _train(model, optimizer, train)
        model.eval()
        with torch.no_grad():
            losses.append(F.cross_entropy(model(val[0]), val[1]).item())
        states.append({k: v.detach().clone() for k, v in model.state_dict().items()})
    best = min(range(epochs), key=losses.__getitem__)

    def alike(a: dict, b: dict) -> bool:  # two processes round alike only up to their thread counts
        return list(a) == list(b) and all(is_close(x, y, atol=1e-5, rtol=1e-4) for x, y in zip(a.values(), b.values()))

    if not alike(state, states[best]):
        same_as = next((i for i in range(epochs) if alike(state, states[i])), None)
        if same_as == epochs - 1:
            fail(f"over {epochs} epochs the validation loss was lowest after epoch {best + 1} ({losses[best]:.4f}), "
                 f"but the model comes back with the weights of the last epoch (loss {losses[-1]:.4f}). What was "
                 "kept as \"the best state\" went on changing with the model: it was never a copy.",
                 "best_state_aliased", fix="keep copy.deepcopy(model.state_dict()) (or clone every tensor)")
        params = [k for k in state if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
        if all(k in states[best] and is_close(state[k], states[best][k], atol=1e-5, rtol=1e-4) for k in params):
            fail(f"the model comes back with the parameters of epoch {best + 1}, the best one, but with other "
                 "buffers (batch norm's running statistics): they are part of its state too.", "buffers_not_kept")
        fail(f"over {epochs} epochs the validation loss was lowest after epoch {best + 1} ({losses[best]:.4f}); the "
             "model it was given comes back with other weights" + (f" (those of epoch {same_as + 1})."
                                                                   if same_as is not None else "."), "not_the_best")
    if type(returned) is not float:
        fail(f"train_keeping_the_best returned {_what(returned)}; expected the lowest validation loss, a float.",
             "wrong_type")
    expect(abs(returned - losses[best]) <= 1e-4 * max(1.0, abs(losses[best])),
           f"train_keeping_the_best returned {returned:.5f}; the lowest validation loss over its {epochs} epochs was "
           f"{losses[best]:.5f} (after epoch {best + 1}), and the last {losses[-1]:.5f}.", "wrong_loss")


# --- predict, then run: resume_prediction -------------------------------------------------
#
# rule                 check
# one_of_the_choices   answers_with_one_of_the_choices
# matches_the_run      instructor: predicts_what_the_runs_show

RESUME_CHOICES = ("B", "C", "both", "neither")


@checks.of("resume_prediction", rule="one_of_the_choices")
def answers_with_one_of_the_choices(resume_prediction):
    answer = resume_prediction()
    expect(isinstance(answer, str) and answer.strip().lower() in {c.lower() for c in RESUME_CHOICES},
           f"resume_prediction() returned {answer!r}; expected one of "
           f"{', '.join(repr(c) for c in RESUME_CHOICES)}.", "not_a_choice")


# --- challenge: train_tiny_model ----------------------------------------------------------
#
# rule              check (one training of the learner's design serves them all)
# logits            reaches_the_target_within_the_byte_budget
# byte_budget       reaches_the_target_within_the_byte_budget
# accuracy          reaches_the_target_within_the_byte_budget; instructor: ..._on_the_graders_digits
# state_complete    reaches_the_target_within_the_byte_budget (a second model, trained on the same digits with
#                   the classes renamed, lends the first its state dict: the first must then predict as it does)
# cpu_budget        reaches_the_target_within_the_byte_budget
# given_data_only   reaches_the_target_within_the_byte_budget (the data sets cannot be loaded meanwhile);
#                   instructor: other digits, mirrored, with the classes renamed

TINY_BYTES = 1_400
TINY_ACCURACY = 0.93
TINY_CPU_SECONDS = 10.0
RENAMED = torch.tensor([3, 7, 0, 9, 5, 1, 8, 2, 6, 4])  # class c is called RENAMED[c]


def state_bytes(state: dict) -> int:
    return sum(t.numel() * t.element_size() for t in state.values() if isinstance(t, torch.Tensor))


def reloaded_state(model):
    """A probe: the model's state dict, through torch.save and torch.load(weights_only=True), as a checkpoint has it."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def _tiny(train_tiny_model, X, y, where: str):
    """The learner's design trained on (X, y) where its code runs, on one core, with the data sets sealed;
    the model and the CPU seconds it took."""
    probe(torch.set_num_threads, 1)
    started = cpu_time()
    model = probe(call_with_data_sealed, "train_tiny_model", train_tiny_model, X, y)
    seconds = cpu_time() - started
    if not is_instance(model, nn.Module):
        fail(f"train_tiny_model should return the trained model, an nn.Module; it returned {_what(model)}.",
             "wrong_return")
    return model, seconds


def _tiny_classes(model, X, what: str) -> torch.Tensor:
    model.eval()
    try:
        logits = probe(outputs_of, model, X)
    except RuntimeError as exc:
        fail(f"your model cannot take float32 inputs of shape ({len(X)}, 64): {str(exc)[:200]}.", "wrong_input",
             fix="if it stores its weights in another dtype, convert the input inside forward")
    if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (len(X), 10):
        fail(f"{what} should return logits of shape ({len(X)}, 10); it returned {_what(logits)}.", "wrong_shape")
    return logits.float().argmax(dim=1)


def tiny_outcome(train_tiny_model, X, y, held_X, held_y, where: str, check_state: bool = True) -> None:
    """Train the learner's design on (X, y) and measure it on (held_X, held_y): size, accuracy, time, and
    (``check_state``) that its state dict holds all it needs."""
    model, seconds = _tiny(train_tiny_model, X, y, where)
    size = state_bytes(model.state_dict())
    expect(size <= TINY_BYTES,
           f"the tensors of your model's state_dict take {size:,} bytes; the budget is {TINY_BYTES:,}.",
           "over_byte_budget", fix="fewer numbers, or fewer bytes per number (float16)")
    classes = _tiny_classes(model, held_X, "your model")
    accuracy = float((classes == held_y).float().mean())
    expect(accuracy >= TINY_ACCURACY,
           f"your model classifies {accuracy:.1%} of {len(held_y)} held-out digits ({where}) correctly; the target "
           f"is {TINY_ACCURACY:.0%}.", "below_target")
    expect(seconds <= TINY_CPU_SECONDS,
           f"training used {seconds:.1f} s of CPU time on one core; the budget is {TINY_CPU_SECONDS:g} s.",
           "over_time_budget")
    if not check_state:
        return
    # The same design, trained on the same digits with the classes renamed: it must reach the target there
    # too, leave the first model as it was, and hand it everything it knows through its state dict alone.
    other, seconds = _tiny(train_tiny_model, X, RENAMED[y], where)
    other_classes = _tiny_classes(other, held_X, "your model")
    renamed = float((other_classes == RENAMED[held_y]).float().mean())
    expect(renamed >= TINY_ACCURACY,
           f"trained on the same digits with the ten classes renamed, your design classifies {renamed:.1%} of the "
           f"held-out digits correctly (target {TINY_ACCURACY:.0%}): it must learn from the labels it is given.",
           "below_target")
    expect(torch.equal(_tiny_classes(model, held_X, "your model"), classes),
           "training a second model changed the predictions of the first: the two share what they learned (a "
           "class attribute, a global), which no checkpoint of the first would hold.", "state_incomplete")
    try:
        model.load_state_dict(probe(reloaded_state, other))
    except RuntimeError as exc:
        fail(f"one model of your design cannot load the state dict of another ({str(exc)[:200]}).",
             "state_incomplete")
    expect(torch.equal(_tiny_classes(model, held_X, "your model"), other_classes),
           "a model loaded with the state dict of another predicts other classes than that other: part of what the "
           "model needs lives outside its state dict (a plain tensor attribute, a list of weights), so a checkpoint "
           "loses it.", "state_incomplete", fix="keep every trained number in an nn.Parameter or a buffer")


def tiny_split(seed: int, val_fraction: float):
    """(X, y, held_X, held_y): the digits split at random, seeded."""
    from autograder.data import load_digits

    X, y = load_digits()
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    cut = round(val_fraction * len(y))
    held_out, training = order[:cut], order[cut:]
    return X[training], y[training], X[held_out], y[held_out]


@checks.of("train_tiny_model", rule=("logits", "byte_budget", "accuracy", "state_complete", "cpu_budget",
                                     "given_data_only"))
def reaches_the_target_within_the_byte_budget(train_tiny_model, seed=0):
    tiny_outcome(train_tiny_model, *tiny_split(seed, 0.2), f"a split seeded with {seed}")
