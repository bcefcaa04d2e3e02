"""The checks of 07_devices_checkpoints: real mistakes are caught with the right
diagnosis, and correct answers written another way are accepted. The tests at
the end need a CUDA GPU and are skipped without one."""

import tempfile
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils._pytree import tree_map

from autograder.data import load_digits
from autograder.runner import run_checks
from support import assert_accepted, assert_caught, solution_namespace

NB = "07_devices_checkpoints"
EXERCISES = ("get_device", "move_to", "save_checkpoint", "load_checkpoint", "train_tiny_model")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def ns(**replacements):
    return solution_namespace(NB, **replacements)


def test_the_solutions_pass_with_default_and_fresh_inputs():
    namespace = ns()
    for exercise in EXERCISES:
        assert_accepted(exercise, namespace)
    # as the hidden test cells call them (fresh inputs run the instructor's checks too)
    assert_accepted("get_device", namespace, available=("mps",), instructor=True)
    assert_accepted("get_device", namespace, available=("cuda", "mps"), instructor=True)
    assert_accepted("get_device", namespace, available=(), instructor=True)
    assert_accepted("move_to", namespace, seed=5, depth=4, instructor=True)
    assert_accepted("move_to", namespace, seed=8, depth=0, instructor=True)
    assert_accepted("save_checkpoint", namespace, epoch=12, seed=4, instructor=True)
    assert_accepted("load_checkpoint", namespace, epoch=9, seed=6, instructor=True)
    assert_accepted("train_tiny_model", namespace, instructor=True)


def test_every_check_takes_a_few_seconds_at_most():
    namespace = ns()
    for exercise in EXERCISES[:4]:
        run_checks(exercise, namespace)  # warm up
        for result in run_checks(exercise, namespace):
            assert result.seconds < 5, f"{result.check} took {result.seconds} s"


def test_the_checks_leave_no_file_behind(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    created = []
    real_save = torch.save

    def recording_save(obj, f, *args, **kwargs):
        created.append(Path(f) if isinstance(f, (str, Path)) else f)
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", recording_save)
    namespace = ns()
    for exercise in ("save_checkpoint", "load_checkpoint", "train_tiny_model"):
        assert_accepted(exercise, namespace)
    assert created, "the checks saved nothing"
    created = [path for path in created if isinstance(path, Path)]  # the challenge saves into memory only
    assert all(Path(tempfile.gettempdir()) in path.parents for path in created)
    assert not any(path.exists() for path in created)
    assert list(tmp_path.iterdir()) == []


def test_the_checks_put_back_what_they_pretend():
    before = (torch.cuda.is_available, torch.backends.mps.is_available, torch.accelerator.current_accelerator)
    run_checks("get_device", ns(), {"available": ("cuda", "mps")})
    assert (torch.cuda.is_available, torch.backends.mps.is_available, torch.accelerator.current_accelerator) == before


# --- get_device ---


def get_device_as_string(prefer_gpu=True):
    return "cuda" if prefer_gpu and torch.cuda.is_available() else "cpu"


def get_device_with_accelerator_api(prefer_gpu=True):
    accelerator = torch.accelerator.current_accelerator() if prefer_gpu else None
    return accelerator if accelerator is not None and accelerator.type in ("cuda", "mps") else torch.device("cpu")


def get_device_counting_gpus(prefer_gpu=True):
    if prefer_gpu and torch.cuda.device_count() > 0:
        return torch.device("cuda:0")
    if prefer_gpu and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def get_device_mps_first(prefer_gpu=True):
    if prefer_gpu and torch.backends.mps.is_available():
        return torch.device("mps")
    if prefer_gpu and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def get_device_without_mps(prefer_gpu=True):
    return torch.device("cuda" if prefer_gpu and torch.cuda.is_available() else "cpu")


def get_device_ignoring_preference(prefer_gpu=True):
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def get_device_always_cuda(prefer_gpu=True):
    return torch.device("cuda") if prefer_gpu else torch.device("cpu")


@pytest.mark.parametrize("variant", [get_device_with_accelerator_api, get_device_counting_gpus])
def test_get_device_written_differently_is_accepted(variant):
    for available in (("cuda",), ("mps",), ("cuda", "mps"), ()):
        assert_accepted("get_device", ns(get_device=variant), available=available)


@pytest.mark.parametrize("wrong, code, available", [
    (get_device_as_string, "returns_string", ("cuda",)),
    (get_device_mps_first, "wrong_priority", ("cuda", "mps")),
    (get_device_without_mps, "missing_mps", ("mps",)),
    (get_device_ignoring_preference, "ignores_preference", ("cuda",)),
    (get_device_always_cuda, "no_availability_check", ("cuda",)),
])
def test_get_device_mistakes_are_diagnosed(wrong, code, available):
    assert_caught("get_device", ns(get_device=wrong), code, available=available)


# --- move_to ---


def move_to_with_tree_map(obj, device):
    return tree_map(lambda value: value.to(device) if isinstance(value, torch.Tensor) else value, obj)


def move_to_with_type_checks(obj, device):
    if torch.is_tensor(obj):
        return obj.to(device=device)
    if type(obj) in (list, tuple):
        return type(obj)(move_to_with_type_checks(item, device) for item in obj)
    if type(obj) is dict:
        return {key: move_to_with_type_checks(value, device) for key, value in obj.items()}
    return obj


def move_to_tuples_become_lists(obj, device):
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: move_to_tuples_become_lists(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [move_to_tuples_become_lists(item, device) for item in obj]
    return obj


def move_to_one_level(obj, device):
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, (list, tuple)):
        return type(obj)(item.to(device) if isinstance(item, torch.Tensor) else item for item in obj)
    return obj


def move_to_calling_to_on_everything(obj, device):
    if isinstance(obj, dict):
        return {k: move_to_calling_to_on_everything(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(move_to_calling_to_on_everything(item, device) for item in obj)
    return obj.to(device)


def move_to_dropping_non_tensors(obj, device):
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: move_to_dropping_non_tensors(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(move_to_dropping_non_tensors(item, device) for item in obj)
    return None


def move_to_in_place(obj, device):
    """Overwrites the caller's containers instead of building new ones."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        for key in obj:
            obj[key] = move_to_in_place(obj[key], device)
        return obj
    if isinstance(obj, list):
        obj[:] = [move_to_in_place(item, device) for item in obj]
        return obj
    if isinstance(obj, tuple):
        return tuple(move_to_in_place(item, device) for item in obj)
    return obj


def move_to_refilling_a_copy_then_returning_the_original(obj, device):
    """Leaves the caller's values alone but hands back its own dicts, refilled... through a shallow copy."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        moved = {key: move_to_refilling_a_copy_then_returning_the_original(v, device) for key, v in obj.items()}
        obj.clear()
        obj.update(moved)
        return obj
    if isinstance(obj, (list, tuple)):
        return type(obj)(move_to_refilling_a_copy_then_returning_the_original(item, device) for item in obj)
    return obj


def move_to_forgetting_to_assign(obj, device):
    if isinstance(obj, torch.Tensor):
        obj.to(device)
        return obj
    if isinstance(obj, dict):
        return {k: move_to_forgetting_to_assign(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(move_to_forgetting_to_assign(item, device) for item in obj)
    return obj


@pytest.mark.parametrize("variant", [move_to_with_tree_map, move_to_with_type_checks])
def test_move_to_written_differently_is_accepted(variant):
    assert_accepted("move_to", ns(move_to=variant))
    assert_accepted("move_to", ns(move_to=variant), seed=5, depth=4, instructor=True)


@pytest.mark.parametrize("wrong, code", [
    (move_to_tuples_become_lists, "structure_changed"),
    (move_to_one_level, "not_recursive"),
    (move_to_calling_to_on_everything, "non_tensor_moved"),
    (move_to_dropping_non_tensors, "non_tensor_changed"),
    (move_to_forgetting_to_assign, "not_moved"),
    (move_to_in_place, "modified_input"),
    (move_to_refilling_a_copy_then_returning_the_original, "modified_input"),
])
def test_move_to_mistakes_are_diagnosed(wrong, code):
    assert_caught("move_to", ns(move_to=wrong), code)


# --- save_checkpoint ---


def save_with_ordered_dict_and_a_string_path(path, model, optimizer, epoch):
    from collections import OrderedDict

    torch.save(OrderedDict(epoch=epoch, model_state_dict=model.state_dict(),
                           optimizer_state_dict=optimizer.state_dict()), str(path))


def save_whole_module(path, model, optimizer, epoch):
    torch.save({"model_state_dict": model, "optimizer_state_dict": optimizer.state_dict(), "epoch": epoch}, path)


def save_module_alone(path, model, optimizer, epoch):
    torch.save(model, path)


def save_method_not_called(path, model, optimizer, epoch):
    torch.save({"model_state_dict": model.state_dict, "optimizer_state_dict": optimizer.state_dict(),
                "epoch": epoch}, path)


def save_without_optimizer(path, model, optimizer, epoch):
    torch.save({"model_state_dict": model.state_dict(), "epoch": epoch}, path)


def save_with_other_names(path, model, optimizer, epoch):
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch}, path)


def save_with_an_extra_key(path, model, optimizer, epoch):
    torch.save({"model_state_dict": model.state_dict(), "optimizer_state_dict": optimizer.state_dict(),
                "epoch": epoch, "loss": 0.1}, path)


def save_epoch_as_tensor(path, model, optimizer, epoch):
    torch.save({"model_state_dict": model.state_dict(), "optimizer_state_dict": optimizer.state_dict(),
                "epoch": torch.tensor(epoch)}, path)


def save_next_epoch(path, model, optimizer, epoch):
    torch.save({"model_state_dict": model.state_dict(), "optimizer_state_dict": optimizer.state_dict(),
                "epoch": epoch + 1}, path)


def save_a_fresh_optimizer_state(path, model, optimizer, epoch):
    fresh = type(optimizer)(model.parameters(), **{k: v for k, v in optimizer.defaults.items()})
    torch.save({"model_state_dict": model.state_dict(), "optimizer_state_dict": fresh.state_dict(),
                "epoch": epoch}, path)


def save_parameters_only(path, model, optimizer, epoch):
    torch.save({"model_state_dict": dict(model.named_parameters()), "optimizer_state_dict": optimizer.state_dict(),
                "epoch": epoch}, path)


def save_to_a_fixed_file(path, model, optimizer, epoch):
    torch.save({"model_state_dict": model.state_dict(), "optimizer_state_dict": optimizer.state_dict(),
                "epoch": epoch}, Path(path).with_name("other.pt"))


def test_save_checkpoint_with_an_ordered_dict_and_a_string_path_is_accepted():
    assert_accepted("save_checkpoint", ns(save_checkpoint=save_with_ordered_dict_and_a_string_path))


@pytest.mark.parametrize("wrong, code", [
    (save_whole_module, "pickled_module"),
    (save_module_alone, "pickled_module"),
    (save_method_not_called, "pickled_module"),
    (save_without_optimizer, "missing_keys"),
    (save_with_other_names, "missing_keys"),
    (save_with_an_extra_key, "extra_keys"),
    (save_epoch_as_tensor, "epoch_not_int"),
    (save_next_epoch, "wrong_epoch"),
    (save_a_fresh_optimizer_state, "optimizer_not_restored"),
    (save_parameters_only, "wrong_state_dict"),
    (save_to_a_fixed_file, "no_file"),
])
def test_save_checkpoint_mistakes_are_diagnosed(wrong, code):
    assert_caught("save_checkpoint", ns(save_checkpoint=wrong), code)


def test_the_pickled_module_message_says_what_to_save_instead():
    result = assert_caught("save_checkpoint", ns(save_checkpoint=save_whole_module), "pickled_module")
    assert "weights_only" in result.message and "state_dict()" in result.message


# --- load_checkpoint ---


def load_with_positional_map_location(path, model, optimizer=None, map_location="cpu"):
    state = torch.load(path, map_location, weights_only=True)
    model.load_state_dict(state["model_state_dict"], strict=True)
    if optimizer:
        optimizer.load_state_dict(state["optimizer_state_dict"])
    return int(state["epoch"])


def load_model_only(path, model, optimizer=None, map_location="cpu"):
    state = torch.load(path, map_location=map_location, weights_only=True)
    model.load_state_dict(state["model_state_dict"])
    return state["epoch"]


def load_always_the_optimizer(path, model, optimizer=None, map_location="cpu"):
    state = torch.load(path, map_location=map_location, weights_only=True)
    model.load_state_dict(state["model_state_dict"])
    optimizer.load_state_dict(state["optimizer_state_dict"])
    return state["epoch"]


def load_ignoring_map_location(path, model, optimizer=None, map_location="cpu"):
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model_state_dict"])
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer_state_dict"])
    return state["epoch"]


def load_into_a_new_model(path, model, optimizer=None, map_location="cpu"):
    state = torch.load(path, map_location=map_location, weights_only=True)
    model = type(model)()
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer_state_dict"])
    return state["epoch"]


def load_returning_the_dict(path, model, optimizer=None, map_location="cpu"):
    state = torch.load(path, map_location=map_location, weights_only=True)
    model.load_state_dict(state["model_state_dict"])
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer_state_dict"])
    return state


def load_epoch_as_tensor(path, model, optimizer=None, map_location="cpu"):
    return torch.tensor(load_with_positional_map_location(path, model, optimizer, map_location))


def test_load_checkpoint_with_positional_map_location_is_accepted():
    assert_accepted("load_checkpoint", ns(load_checkpoint=load_with_positional_map_location))
    assert_accepted("load_checkpoint", ns(load_checkpoint=load_with_positional_map_location), epoch=9, seed=6,
                    instructor=True)


@pytest.mark.parametrize("wrong, code", [
    (load_model_only, "optimizer_not_restored"),
    (load_always_the_optimizer, "optimizer_required"),
    (load_ignoring_map_location, "map_location_ignored"),
    (load_into_a_new_model, "model_not_restored"),
    (load_returning_the_dict, "wrong_type"),
    (load_epoch_as_tensor, "wrong_type"),
])
def test_load_checkpoint_mistakes_are_diagnosed(wrong, code):
    assert_caught("load_checkpoint", ns(load_checkpoint=wrong), code)


def test_a_round_trip_through_the_solutions_resumes_exactly(tmp_path):
    namespace = ns()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    batches = [(torch.randn(8, 4), torch.randint(0, 2, (8,))) for _ in range(6)]

    def step(m, o, batch):
        o.zero_grad()
        nn.functional.cross_entropy(m(batch[0]), batch[1]).backward()
        o.step()

    for batch in batches[:3]:
        step(model, optimizer, batch)
    namespace["save_checkpoint"](tmp_path / "ckpt.pt", model, optimizer, 3)
    torch.manual_seed(1)
    restored = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    restored_optimizer = torch.optim.Adam(restored.parameters(), lr=0.05)
    assert namespace["load_checkpoint"](tmp_path / "ckpt.pt", restored, restored_optimizer) == 3
    for batch in batches[3:]:
        step(model, optimizer, batch)
        step(restored, restored_optimizer, batch)
    for a, b in zip(model.parameters(), restored.parameters()):
        assert torch.equal(a, b)


# --- challenge: train_tiny_model ---


def tiny_trainer(build, steps=200, lr=0.05, dtype=None, load_itself=False, cast=True):
    namespace = ns()

    class Cast(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(x.to(next(self.inner.parameters()).dtype)).float()

    def train_tiny_model(X, y):
        if load_itself:
            X, y = load_digits()
        torch.manual_seed(0)
        model = build()
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        for _ in range(steps):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(X), y).backward()
            optimizer.step()
        if dtype is None:
            return model
        return Cast(model.to(dtype)) if cast else model.to(dtype)

    namespace["train_tiny_model"] = train_tiny_model
    return namespace


class PlainAttributeWeights(nn.Module):
    """Keeps its weights in a plain tensor attribute: they are not in the state dict (0 bytes), and lost."""

    def __init__(self, layer):
        super().__init__()
        self.weight, self.bias = layer.weight.detach().clone(), layer.bias.detach().clone()

    def forward(self, x):
        return x @ self.weight.T + self.bias


def test_train_tiny_model_in_bfloat16_is_accepted():
    assert_accepted("train_tiny_model", tiny_trainer(lambda: nn.Linear(64, 10), dtype=torch.bfloat16), instructor=True)


@pytest.mark.parametrize("namespace, code", [
    (lambda: tiny_trainer(lambda: nn.Linear(64, 10)), "over_byte_budget"),
    (lambda: tiny_trainer(lambda: nn.Sequential(nn.Linear(64, 2), nn.Linear(2, 10))), "below_target"),
    (lambda: tiny_trainer(lambda: nn.Linear(64, 10), dtype=torch.float16, load_itself=True), "loads_other_data"),
    (lambda: tiny_trainer(lambda: nn.Linear(64, 10), steps=1, dtype=torch.float16), "below_target"),
    (lambda: tiny_trainer(lambda: nn.Linear(64, 10), dtype=torch.float16, cast=False), "wrong_input"),
])
def test_train_tiny_model_mistakes_are_diagnosed(namespace, code):
    assert_caught("train_tiny_model", namespace(), code)


def test_train_tiny_model_must_keep_its_weights_in_the_state_dict():
    namespace = tiny_trainer(lambda: nn.Linear(64, 10))
    trained = namespace["train_tiny_model"]
    namespace["train_tiny_model"] = lambda X, y: PlainAttributeWeights(trained(X, y))
    assert_caught("train_tiny_model", namespace, "state_incomplete")


def test_the_tiny_challenge_measures_cpu_time(monkeypatch):
    import importlib

    monkeypatch.setattr(importlib.import_module("autograder.checks.07_devices_checkpoints"), "TINY_CPU_SECONDS", 0.001)
    assert_caught("train_tiny_model", ns(), "over_time_budget")


# --- on a CUDA GPU (skipped without one) ---


@needs_cuda
def test_on_a_gpu_get_device_picks_cuda_and_the_checks_pass():
    namespace = ns()
    assert namespace["get_device"]().type == "cuda"
    for exercise in EXERCISES:
        assert_accepted(exercise, namespace)


@needs_cuda
def test_on_a_gpu_move_to_moves_nested_batches_there_and_back():
    move_to = ns()["move_to"]
    batch = {"x": torch.randn(3, 2), "pair": (torch.arange(3), ["id", torch.ones(1)]), "n": 4}
    on_gpu = move_to(batch, torch.device("cuda"))
    assert on_gpu["x"].is_cuda and on_gpu["pair"][0].is_cuda and on_gpu["pair"][1][1].is_cuda
    assert type(on_gpu["pair"]) is tuple and on_gpu["pair"][1][0] == "id" and on_gpu["n"] == 4
    assert batch["x"].device.type == "cpu" and batch["pair"][1][1].device.type == "cpu", "the caller's batch moved"
    back = move_to(on_gpu, torch.device("cpu"))
    assert torch.equal(back["x"], batch["x"]) and back["pair"][1][1].device.type == "cpu"


def _gpu_run(namespace, path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2)).cuda()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(3):
        optimizer.zero_grad()
        inputs = torch.randn(8, 4, device="cuda")
        nn.functional.cross_entropy(model(inputs), torch.randint(0, 2, (8,), device="cuda")).backward()
        optimizer.step()
    namespace["save_checkpoint"](path, model, optimizer, 3)
    return model, optimizer


@needs_cuda
def test_on_a_gpu_a_checkpoint_loads_on_the_cpu_with_map_location(tmp_path):
    namespace = ns()
    gpu_model, _ = _gpu_run(namespace, tmp_path / "gpu.pt")
    saved = torch.load(tmp_path / "gpu.pt", weights_only=True)
    assert next(iter(saved["model_state_dict"].values())).is_cuda, "the checkpoint should remember the GPU"
    torch.manual_seed(1)
    cpu_model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2))
    cpu_optimizer = torch.optim.Adam(cpu_model.parameters(), lr=0.05)
    assert namespace["load_checkpoint"](tmp_path / "gpu.pt", cpu_model, cpu_optimizer, map_location="cpu") == 3
    assert all(p.device.type == "cpu" for p in cpu_model.parameters())
    assert all(t.device.type == "cpu" for s in cpu_optimizer.state.values() for t in s.values()
               if isinstance(t, torch.Tensor) and t.dim() > 0)
    inputs = torch.randn(5, 4)
    gpu_model.eval()
    cpu_model.eval()
    with torch.no_grad():
        assert torch.allclose(cpu_model(inputs), gpu_model(inputs.cuda()).cpu(), atol=1e-5)
    cpu_optimizer.zero_grad()
    nn.functional.cross_entropy(cpu_model(inputs), torch.zeros(5, dtype=torch.long)).backward()
    cpu_optimizer.step()  # the restored state is usable on the CPU


@needs_cuda
def test_on_a_gpu_a_checkpoint_resumes_exactly_on_the_gpu(tmp_path):
    namespace = ns()
    model, optimizer = _gpu_run(namespace, tmp_path / "gpu.pt")
    torch.manual_seed(1)
    restored = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2)).cuda()
    restored_optimizer = torch.optim.Adam(restored.parameters(), lr=0.05)
    namespace["load_checkpoint"](tmp_path / "gpu.pt", restored, restored_optimizer, map_location="cuda")
    batch = (torch.randn(8, 4, device="cuda"), torch.randint(0, 2, (8,), device="cuda"))
    for m, o in ((model, optimizer), (restored, restored_optimizer)):
        m.train()
        o.zero_grad()
        nn.functional.cross_entropy(m(batch[0]), batch[1]).backward()
        o.step()
    for a, b in zip(model.state_dict().values(), restored.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6)
