"""The small steps of `autograder grade`, without running notebooks: finding submissions in a
folder or zip, reading broken files, spotting tampering, verifying check results."""

import json
import os
from pathlib import Path
import subprocess
import sys
import zipfile

import nbformat
import pytest

from autograder.grading.collect import changed_test_cells, read_problem
from autograder.grading.discover import LayoutError, discover, extract_zip
from autograder.grading.pipeline import parse_size
from autograder.grading.state import code_fingerprint
from autograder.grading.tamper import scan_notebook
from autograder.cells import CheckCall, judged_calls
from autograder.registry import checks_of
from autograder.results import CheckResult
from support import ROOT, release_path

A, NB = "02_manual_model", "02_manual_model"


def notebook_bytes(**metadata) -> bytes:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1", metadata=metadata)])
    return nbformat.writes(nb).encode()


def write(path, data=b"{}"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_every_layout_is_found_and_mixed_layouts_are_fine(tmp_path):
    write(tmp_path / "ada.ipynb", notebook_bytes())
    write(tmp_path / "bo" / f"{NB}.ipynb", notebook_bytes())
    write(tmp_path / "bo" / "data.csv", b"1,2\n")
    write(tmp_path / "cy" / A / f"{NB}.ipynb", notebook_bytes())
    write(tmp_path / "cy" / A / "timestamp.txt", b"2025-01-15 12:00:00 UTC")
    write(tmp_path / "di" / "My copy.ipynb", notebook_bytes())
    write(tmp_path / "ed" / "notes.txt", b"later")
    write(tmp_path / ".DS_Store", b"")
    write(tmp_path / "__MACOSX" / "junk", b"")
    found = {s.student: s for s in discover(tmp_path, A, NB, tmp_path / "staging")}
    assert sorted(found) == ["ada", "bo", "cy", "di", "ed"]
    assert found["ada"].folder is None and found["ada"].notebook.name == "ada.ipynb"
    assert [p.name for p in found["bo"].files()] == [f"{NB}.ipynb", "data.csv"]
    assert found["cy"].folder.name == A and "timestamp.txt" in [p.name for p in found["cy"].files()]
    assert found["di"].notebook.name == "My copy.ipynb" and "renamed" in found["di"].notes[0]
    assert found["ed"].notebook is None


def test_a_zip_is_unpacked_and_its_wrapping_folder_looked_into(tmp_path):
    archive = tmp_path / "class.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("export/ada.ipynb", notebook_bytes())
        zf.writestr(f"export/bo/{NB}.ipynb", notebook_bytes())
    assert [s.student for s in discover(archive, A, NB, tmp_path / "staging")] == ["ada", "bo"]


@pytest.mark.parametrize("name", ["../evil.ipynb", "/abs/evil.ipynb"])
def test_a_zip_with_unsafe_paths_is_refused(tmp_path, name):
    archive = tmp_path / "class.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(name, b"{}")
    with pytest.raises(LayoutError, match="unsafe path"):
        extract_zip(archive, tmp_path / "out")


@pytest.mark.parametrize("setup, message", [
    (lambda p: write(p / "README.txt", b"hi"), "neither a student's folder"),
    (lambda p: write(p / "bad id!.ipynb", notebook_bytes()), "not valid student ids"),
    (lambda p: (write(p / "ada.ipynb", notebook_bytes()), write(p / "ada" / "x.ipynb", notebook_bytes())), "appears twice"),
    (lambda p: p.mkdir(exist_ok=True), "holds no submissions"),
    (lambda p: write(p.parent / "class.tar", b"x"), "not a .zip"),
])
def test_layout_errors_say_what_to_fix(tmp_path, setup, message):
    folder = tmp_path / "class"
    folder.mkdir()
    setup(folder)
    target = tmp_path / "class.tar" if message == "not a .zip" else folder
    with pytest.raises(LayoutError, match=message):
        discover(target, A, NB, tmp_path / "staging")


def test_a_missing_path_and_a_bad_zip_are_reported(tmp_path):
    with pytest.raises(LayoutError, match="no such file"):
        discover(tmp_path / "nowhere", A, NB, tmp_path)
    write(tmp_path / "class.zip", b"not a zip")
    with pytest.raises(LayoutError, match="not a readable zip"):
        discover(tmp_path / "class.zip", A, NB, tmp_path / "staging")


def test_several_notebooks_the_one_of_the_assignment_is_chosen(tmp_path):
    write(tmp_path / "ada" / "scratch.ipynb", notebook_bytes())
    write(tmp_path / "ada" / "work.ipynb", notebook_bytes(nbgrader={"grade_id": "forward"}))
    (found,) = discover(tmp_path, A, NB, tmp_path / "staging")
    assert found.notebook.name == "work.ipynb" and "several notebooks" in found.notes[0]


def test_broken_files_are_named_for_what_they_are(tmp_path):
    assert "empty file" in read_problem(write(tmp_path / "a.ipynb", b""))[1]
    assert "not valid JSON" in read_problem(write(tmp_path / "b.ipynb", b'{"cells": ['))[1]
    assert "not a notebook" in read_problem(write(tmp_path / "c.ipynb", json.dumps([1, 2]).encode()))[1]
    nb, problem = read_problem(write(tmp_path / "d.ipynb", notebook_bytes()))
    assert problem == "" and nb.cells[0].source == "x = 1"


def test_deleted_and_edited_test_cells_are_noticed():
    release = nbformat.read(release_path(A), as_version=4)
    nb = nbformat.read(release_path(A), as_version=4)
    tests = [c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade", False)]
    tests[0].source = "pass"
    nb.cells.remove(tests[1])
    notes = changed_test_cells(nb, release)
    assert any("deleted" in n and tests[1].metadata.nbgrader.grade_id in n for n in notes)
    assert any("edited" in n and tests[0].metadata.nbgrader.grade_id in n for n in notes)


TRICKS = {
    "import autograder\nautograder.check = lambda *a, **k: None": "autograder.check",
    "from autograder import registry\nregistry._NOTEBOOKS.clear()": "autograder.registry._NOTEBOOKS",
    "from autograder import registry\nfor g in registry._NOTEBOOKS.values():\n    g.by_exercise.clear()": "internals",
    "import builtins\nbuiltins.isinstance = lambda *a: True": "builtins.isinstance",
    "__builtins__['len'] = None": "builtins",
    "import torch as T\nT.allclose = lambda *a, **k: True": "torch.allclose",
    "from torch import nn\nsetattr(nn.Linear, 'forward', None)": "torch.nn.Linear",
    "ip = get_ipython()\nip.showtraceback = lambda *a: None": "showtraceback",
    "get_ipython().events.register('pre_run_cell', print)": "events.register",
    "import sys\nsys.modules['autograder'] = None": "sys.modules",
    "class Yes:\n    def __eq__(self, other):\n        return True": "__eq__",
    "class Yes:\n    __eq__ = lambda self, other: True": "__eq__",
    "def check(*args): pass": "`check`",
    "exec('x' + '= 1')": "exec",
    "import ctypes": "ctypes",
    "import gc\nfound = gc.get_objects()": "gc.get_objects",
}


@pytest.mark.parametrize("source", list(TRICKS))
def test_tampering_is_flagged(source):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    found = scan_notebook(nb)
    assert found and TRICKS[source] in found[0], found


def test_ordinary_code_is_not_flagged():
    source = ("import torch\nfrom torch import nn\n%matplotlib inline\nW.grad = None\n"
              "model.weight = nn.Parameter(torch.zeros(1))\ntorch.manual_seed(0)\nlosses.append(1.0)\n"
              "class Point:\n    def __eq__(self, other):\n        return self.x == other.x\n")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    assert scan_notebook(nb) == []


def test_the_judge_runs_a_test_cell_of_check_calls_and_nothing_else():
    visible = 'from autograder import check\ncheck("forward")'
    hidden = '# a comment\nfrom autograder import check\ncheck.hidden("forward", num_samples=31, hidden=7)'
    assert judged_calls(visible) == [CheckCall("forward", False, {})]
    assert judged_calls(hidden) == [CheckCall("forward", True, {"num_samples": 31, "hidden": 7})], \
        "an input named like an option is an input"
    for other in ('check("forward")\nprint(1)', 'check("forward", seed=int("3"))', 'x = check("forward")',
                  'import os\ncheck("forward")', 'check("forward"', 'check(name)'):
        assert judged_calls(other) is None, other


def test_sizes():
    assert parse_size("4G") == 4 * 2**30 and parse_size("512M") == 512 * 2**20 and parse_size("0") is None


@pytest.mark.parametrize("args, message", [
    (["--submissions", "{tmp}/nowhere"], "no such file or folder"),
    (["--submissions", "{tmp}", "--student", "zed"], "no submission of student 'zed'"),
])
def test_the_grade_command_stops_with_a_clear_message(tmp_path, capsys, args, message):
    from autograder.cli import main

    write(tmp_path / "ada.ipynb", notebook_bytes())
    args = [a.format(tmp=tmp_path) for a in args]
    code = main(["grade", A, "--course", str(ROOT), "--out", str(tmp_path / "out"), "--no-progress", *args])
    assert code == 2 and message in capsys.readouterr().err


def test_an_unknown_assignment_is_named(tmp_path, capsys):
    from autograder.cli import main

    code = main(["grade", "99_nothing", "--course", str(ROOT), "--submissions", str(tmp_path), "--out", str(tmp_path)])
    assert code == 2 and "not an assignment of this course" in capsys.readouterr().err


def test_the_runner_refuses_to_report_when_its_own_code_was_replaced():
    import autograder.runner as runner
    from autograder import registry
    from support import solution_namespace

    namespace = solution_namespace(A)
    original = runner._result

    def forward(X, W, b):  # a learner's function that rewrites the runner while a check calls it
        runner._result = lambda check, status, hidden, **details: original(check, "passed", hidden)
        return namespace["forward"](X, W, b)

    try:
        with pytest.raises(runner.IntegrityError, match="runner._result"):
            runner.run_checks("forward", {**namespace, "forward": forward})
    finally:
        runner._result = original
    checks = registry.checks_of("forward")
    checks.append(registry.Check(A, "forward", lambda forward: None, ("forward",), ()))
    try:
        with pytest.raises(runner.IntegrityError, match="not one of the course's"):
            runner.run_checks("forward", namespace)
    finally:
        checks.pop()
    assert all(r.passed for r in runner.run_checks("forward", namespace))


def test_only_pytorchs_own_rewraps_are_accepted_as_harmless():
    import functools

    import torch
    from autograder.grading.guard import _rewrapped_by_torch

    original = torch.manual_seed

    @functools.wraps(original)
    def learners_wrapper(seed):
        return original(0)

    assert not _rewrapped_by_torch(learners_wrapper, original), "a learner's wrapper must still be flagged"
    assert not _rewrapped_by_torch(None, original), "a deleted attribute must still be flagged"
    # PyTorch rewraps torch.manual_seed when torch._dynamo loads; that changes seeding for the rest of
    # the process, so it is loaded in a process of its own.
    probe = ("import torch, torch._dynamo\n"
             "from autograder.grading.guard import _rewrapped_by_torch\n"
             "rewrapped = torch.manual_seed\n"
             "assert hasattr(rewrapped, '__wrapped__'), 'PyTorch no longer rewraps manual_seed: the rule may be unneeded'\n"
             "assert _rewrapped_by_torch(rewrapped, rewrapped.__wrapped__), 'its own rewrap was flagged'\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert torch.manual_seed is original, "this process's torch is left as it was"


def test_the_resume_fingerprint_changes_with_any_code_that_can_change_a_grade(tmp_path):
    """Not only the public checks: the runner, the results, the executor, the guard and the
    instructor's checks all decide grades, so a change to any of them must regrade."""
    import shutil

    import autograder

    package = tmp_path / "autograder"
    shutil.copytree(Path(autograder.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    (package / "checks" / "instructor").mkdir(exist_ok=True)
    (package / "checks" / "instructor" / "02_manual_model.py").write_text("# hidden checks\n")
    before = code_fingerprint(package)
    assert code_fingerprint(package) == before, "the same code gives the same fingerprint"
    for changed in ("runner.py", "results.py", "preprocessors.py", "grading/guard.py", "checks/instructor/02_manual_model.py"):
        path = package / changed
        original = path.read_text()
        path.write_text(original + "\n# changed\n")
        assert code_fingerprint(package) != before, f"a change to {changed} leaves stale grades in place"
        path.write_text(original)
    assert code_fingerprint(package) == before


def _imported_by(code: str) -> set[str]:
    """The top-level packages a fresh interpreter has imported after running ``code``."""
    probe = f"import sys\n{code}\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return set(done.stdout.split())


def test_what_the_kernel_imports_leaves_out_the_notebook_tools():
    """Each graded kernel imports the runner and the guard; nbformat or nbgrader there would cost seconds."""
    loaded = _imported_by("import autograder.notebook, autograder.grading.guard")
    assert not loaded & {"nbformat", "nbgrader", "nbclient", "jsonschema"}, loaded & {"nbformat", "nbgrader", "nbclient"}


def test_the_results_channel_and_the_notebook_names_need_no_torch_and_no_checks():
    loaded = _imported_by("from autograder.results import RESULTS_ENV\nfrom autograder import registry\n"
                          "assert '02_manual_model' in registry.notebooks()\n"
                          "assert not [m for m in sys.modules if m.rsplit('.', 1)[-1][:2].isdigit()], 'a check module'")
    assert "torch" not in loaded


def test_a_result_survives_its_state_file_and_an_older_one_is_graded_again(tmp_path):
    from autograder.grading.report import exercise_row
    from autograder.grading.result import SubmissionResult, SubmissionStatus
    from autograder.grading.state import States
    from autograder.verdicts import ExerciseVerdict, Status

    wrong = ExerciseVerdict("forward", 1.0, 3.0, Status.FAILED, "the layer has no bias", "missing_bias",
                            "test_forward", "cell 9", "")
    result = SubmissionResult("ada", 4.0, 6.0, SubmissionStatus.GRADED, ["cell 12 raised NameError: x"],
                              ["renamed notebook"], [], [wrong, ExerciseVerdict("init_params", 3.0, 3.0)])
    states = States(tmp_path / "state")
    states.save(result)
    loaded = states.load("ada")
    assert loaded == result
    assert loaded.status is SubmissionStatus.GRADED and loaded.exercises[0].status is Status.FAILED
    # what exercises.csv and report.json show of an exercise
    assert exercise_row(A, "ada", loaded.exercises[0]) == {
        "assignment": A, "student_id": "ada", "exercise": "forward", "points": 1.0, "max_points": 3.0,
        "status": "partial", "code": "missing_bias", "reason": "test_forward: the layer has no bias"}
    # a state file written before the one result model (version 2: exercises as rows) means: grade again
    older = json.loads(states.path("ada").read_text(encoding="utf-8"))
    older.update(state_version=2, exercises=[exercise_row(A, "ada", loaded.exercises[0])])
    states.path("ada").write_text(json.dumps(older), encoding="utf-8")
    assert states.load("ada") is None and states.everyone() == {}
def test_each_kernel_gets_its_share_of_the_cores():
    from autograder.grading.kernels import kernel_threads, thread_environment

    assert [kernel_threads(jobs, cores=2) for jobs in (1, 2, 3)] == [2, 1, 1]
    assert kernel_threads(4, cores=16) == 4
    assert thread_environment(1) == {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def test_a_kernels_torch_threads_leave_mkl_its_own_choice_of_threads():
    """torch.set_num_threads turns MKL's dynamic threads off (then every tiny product starts all threads:
    25 times the CPU for 02's training checks on a busy machine); the fork server's setting keeps it on."""
    code = """
import ctypes, os, torch
from autograder.grading.forkserver import torch_threads
try:
    dynamic = ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so")).mkl_serv_get_dynamic
except (OSError, AttributeError):
    print("no MKL"); raise SystemExit
assert dynamic() == 1, "MKL chooses its threads by default"
torch_threads(torch.get_num_threads())
assert dynamic() == 1, "the same number of threads: nothing is set"
torch.set_num_threads(1)
torch.set_num_threads(2)
assert dynamic() == 0, "torch.set_num_threads(2) turns MKL's choice off: why torch_threads exists"
torch.set_num_threads(1)
torch_threads(2)
assert (torch.get_num_threads(), dynamic()) == (2, 1), "two threads, MKL's choice on again"
torch_threads(1)
assert torch.get_num_threads() == 1
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() in ("ok", "no MKL"), done.stdout + done.stderr[-2000:]


def test_the_fork_server_imports_what_every_kernel_imports_and_says_nothing(capfd):
    """ipykernel's debugger (debugpy) and the grading modules are imported once, in the server; debugpy's
    warning about frozen modules must not reach the instructor's terminal."""
    from autograder.grading.forkserver import KERNEL_MODULES, ForkServer

    assert {"ipykernel.debugger", "autograder.grading.guard", "autograder.probe"} <= set(KERNEL_MODULES)
    server = ForkServer([])
    try:
        server._wait_ready()
    finally:
        server.close()
    out, err = capfd.readouterr()
    assert "ebugger" not in out + err and "frozen" not in out + err, out + err


def test_pickling_a_tensor_or_a_model_is_not_tampering():
    """torch.save pickles, and pickling caches copyreg's __slotnames__ on torch.Tensor and nn.Parameter:
    07's honest checkpoints were once flagged for it. A class attribute the learner adds still is."""
    probe = """
import io, torch
from autograder.grading.guard import _class_changes
classes = {"torch.Tensor": torch.Tensor, "torch.nn.Parameter": torch.nn.Parameter}
before = {label: dict(vars(cls)) for label, cls in classes.items()}
assert all("__slotnames__" not in vars(cls) for cls in classes.values()), "already pickled: the test proves nothing"
torch.save({"w": torch.nn.Linear(2, 1).weight, "t": torch.zeros(2)}, io.BytesIO())
assert "__slotnames__" in vars(torch.Tensor), "pickling no longer caches __slotnames__: the rule may be unneeded"
found = [f for label, cls in classes.items() for f in _class_changes(label, cls, before[label], True)]
assert found == [], found
torch.Tensor.answer = 42
found = _class_changes("torch.Tensor", torch.Tensor, before["torch.Tensor"], True)
assert found == ["torch.Tensor.answer was added"] and not hasattr(torch.Tensor, "answer"), found
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stdout + done.stderr[-2000:]


def test_a_new_gradebook_is_the_one_nbgrader_would_create(tmp_path, monkeypatch):
    """create_gradebook skips nbgrader's `alembic heads` subprocess (3 s per new gradebook) and must leave
    the same tables and schema revision, which nbgrader then opens as its own."""
    import sqlalchemy
    from nbgrader.api import Gradebook

    from autograder.grading.nbgrader_steps import create_gradebook

    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    ours, theirs = f"sqlite:///{tmp_path / 'ours.db'}", f"sqlite:///{tmp_path / 'theirs.db'}"
    create_gradebook(ours)
    Gradebook(theirs).close()

    def schema(url):
        engine = sqlalchemy.create_engine(url)
        try:
            with engine.connect() as connection:
                version = connection.execute(sqlalchemy.text("SELECT version_num FROM alembic_version")).all()
            inspector = sqlalchemy.inspect(engine)
            return version, {table: sorted(c["name"] for c in inspector.get_columns(table))
                             for table in inspector.get_table_names()}
        finally:
            engine.dispose()

    assert schema(ours) == schema(theirs)
    with Gradebook(ours) as gb:
        gb.add_student("s1")
    create_gradebook(ours)  # an existing gradebook is left as it is
    with Gradebook(ours) as gb:
        assert [s.id for s in gb.students] == ["s1"]
