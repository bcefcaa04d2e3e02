"""The checks of 07_devices_checkpoints, beyond what its cases say (autograder/cases/07_devices_checkpoints.py:
every rule's planted mistakes and the correct alternatives, run by test_rules.py): the hidden inputs, what
the checks leave behind, the wording of a few messages, and the GPU path. The tests at the end need a CUDA
GPU and are skipped without one."""

import tempfile
from pathlib import Path

import pytest
import torch
from torch import nn

from autograder.cases import cases_of
from autograder.runner import run_checks
from support import assert_accepted, assert_caught, solution_namespace

NB = "07_devices_checkpoints"
EXERCISES = ("get_device", "move_to", "save_checkpoint", "load_checkpoint", "train_keeping_the_best",
             "resume_prediction", "train_tiny_model")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def ns(**replacements):
    return solution_namespace(NB, **replacements)


def planted(exercise, name):
    """The namespace of the solutions with one planted case of the cases module in place."""
    case = next(c for c in cases_of(NB) if c.exercise == exercise and c.name == name)
    namespace = ns()
    exec(compile(case.code, f"<{name}>", "exec"), namespace)
    return namespace


def test_the_solutions_pass_with_the_hidden_inputs_and_others():
    namespace = ns()
    assert_accepted("get_device", namespace, available=("mps",), instructor=True)
    assert_accepted("get_device", namespace, available=("cuda", "mps"), instructor=True)
    assert_accepted("get_device", namespace, available=(), instructor=True)
    assert_accepted("move_to", namespace, seed=5, depth=4, instructor=True)
    assert_accepted("move_to", namespace, seed=8, depth=0, instructor=True)
    assert_accepted("save_checkpoint", namespace, epoch=12, seed=4, instructor=True)
    assert_accepted("load_checkpoint", namespace, epoch=9, seed=6, instructor=True)
    assert_accepted("train_keeping_the_best", namespace, epochs=20, seed=3, instructor=True)


def test_every_check_but_the_challenge_takes_a_few_seconds_at_most():
    namespace = ns()
    for exercise in EXERCISES[:-1]:
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
    created = [path for path in created if isinstance(path, Path)]  # the rest went into memory
    assert created, "the learner's save_checkpoint saved nothing"
    assert all(Path(tempfile.gettempdir()) in path.parents for path in created)
    assert not any(path.exists() or path.parent.exists() for path in created), "a checkpoint folder was left behind"
    assert list(tmp_path.iterdir()) == []


def test_the_checks_put_back_what_they_pretend_and_watch():
    watched = (torch.cuda.is_available, torch.backends.mps.is_available, torch.accelerator.current_accelerator,
               torch.save, torch.load, torch.serialization.save, torch.serialization.load)
    namespace = ns()
    for exercise, inputs in (("get_device", {"available": ("cuda", "mps")}), ("save_checkpoint", {}),
                             ("load_checkpoint", {})):
        run_checks(exercise, namespace, inputs)
    assert (torch.cuda.is_available, torch.backends.mps.is_available, torch.accelerator.current_accelerator,
            torch.save, torch.load, torch.serialization.save, torch.serialization.load) == watched


def test_a_failed_save_is_explained_by_what_it_destroyed():
    namespace = planted("save_checkpoint", "written straight to path")
    result = assert_caught("save_checkpoint", namespace, "half_written")
    assert "previous checkpoint" in result.message and "bytes" in result.message
    assert "os.replace" not in result.message, "the exact fix waits for repeated failures"
    for _ in range(3):
        again = [r for r in run_checks("save_checkpoint", namespace) if r.code == "half_written"][0]
    assert "os.replace" in again.fix


def test_the_pickled_module_message_says_why_and_what_instead():
    result = assert_caught("save_checkpoint", planted("save_checkpoint", "the whole module pickled"), "pickled_module")
    assert "weights_only" in result.message and "state_dict" in result.message


def test_a_wrong_epoch_is_named_by_its_number():
    result = assert_caught("load_checkpoint", planted("load_checkpoint", "the next epoch"), "wrong_epoch")
    assert "holds epoch 3" in result.message and "returned 4" in result.message


def test_an_aliased_best_state_is_told_which_epoch_it_came_back_with():
    result = assert_caught("train_keeping_the_best", planted("train_keeping_the_best", "the given code"),
                           "best_state_aliased")
    assert "lowest after epoch 7" in result.message and "last epoch" in result.message


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
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt"]
    torch.manual_seed(1)
    restored = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    restored_optimizer = torch.optim.Adam(restored.parameters(), lr=0.05)
    assert namespace["load_checkpoint"](tmp_path / "ckpt.pt", restored, restored_optimizer) == 3
    for batch in batches[3:]:
        step(model, optimizer, batch)
        step(restored, restored_optimizer, batch)
    for a, b in zip(model.parameters(), restored.parameters()):
        assert torch.equal(a, b)


# --- on a CUDA GPU (skipped without one) ---


@needs_cuda
def test_on_a_gpu_every_check_passes_the_solutions():
    namespace = ns()
    assert namespace["get_device"]().type == "cuda"
    for exercise in EXERCISES:
        assert_accepted(exercise, namespace, instructor=True)


@needs_cuda
def test_on_a_gpu_a_move_that_forgets_nested_tensors_is_caught_there():
    assert_caught("move_to", planted("move_to", "one level deep"), "not_recursive")


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
    namespace["load_checkpoint"](tmp_path / "gpu.pt", restored, restored_optimizer, map_location=torch.device("cuda"))
    batch = (torch.randn(8, 4, device="cuda"), torch.randint(0, 2, (8,), device="cuda"))
    for m, o in ((model, optimizer), (restored, restored_optimizer)):
        m.train()
        o.zero_grad()
        nn.functional.cross_entropy(m(batch[0]), batch[1]).backward()
        o.step()
    for a, b in zip(model.state_dict().values(), restored.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6)
