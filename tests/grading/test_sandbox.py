"""Red team for `autograder grade`: submissions that try to reach what they must not, or to fool the
checks. One small class of 02_manual_model is graded once, confined, with two jobs; every test reads
what that run left.

Reach: each attempt runs in an extra cell of a notebook whose answers are otherwise blank and prints
`REACH <what>: denied` or `REACH <what>: ALLOWED (...)`; every one must say denied. The same cell
prints what the kernel is (its ids) and sees (/etc, /sys, pid 1's command line, its environment, its
interpreter): not root, nothing of the host's secrets, no path of the course.
Fool: each notebook answers init_params wrongly (W in nn.Linear's layout, which its checks reject)
and leaves every other exercise blank, then tries a trick to pass anyway; each must score zero.
Judge: tricks against a verdict made in the kernel (a reference imported from the instructor's checks,
torch patched to agree, PyTorch's function modes, the data set poisoned); the verdicts are made outside
the kernel now, so each wrong answer scores zero on its exercise however torch was patched.
"""

import codecs
import json
import os
import shutil
import socket
import sys
import threading
from pathlib import Path

import nbformat
import pytest

from autograder.grading import sandbox
from autograder.grading.pipeline import Options, grade_class
from support import COURSE, ROOT, course_copy, release_path, solution_path

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(bool(sandbox.problem()), reason=f"no confinement here: {sandbox.problem()}")]

A = "02_manual_model"
WRONG_INIT = '''import torch

def init_params(num_features, seed=0):
    torch.manual_seed(seed)
    return torch.zeros(1, num_features), torch.zeros(1)  # nn.Linear's layout: the checks reject it
'''

# What every notebook of the class prints first, before anything of its own runs: which processes
# it sees besides the sandbox's init, its fork server and itself, and what is in /tmp and its folder.
OBSERVE = '''import os, json
_others = [p for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, os.getpid(), os.getppid())]
print("OBSERVE " + json.dumps({"pids": _others, "tmp": sorted(os.listdir("/tmp")),
                               "shm": sorted(os.listdir("/dev/shm")), "folder": sorted(os.listdir("."))}))
'''

REACH = '''import json, os, signal, socket, subprocess

def attempt(what, action):
    try:
        found = action()
    except (OSError, RuntimeError) as error:
        print(f"REACH {what}: denied ({type(error).__name__})")
    else:
        print(f"REACH {what}: ALLOWED ({str(found)[:80]})")

def write(path):
    with open(path, "ab") as out:
        out.write(b"")
    return path

def connect():
    with socket.create_connection(("127.0.0.1", PORT), timeout=3) as conn:
        conn.sendall(b"hello")
    return "connected"

attempt("read solutions", lambda: open(SOLUTION).read(100))
attempt("list the course", lambda: os.listdir(COURSE))
attempt("read another student's notebook", lambda: open(OTHER).read(100))
attempt("read a file in the home directory", lambda: open(SECRET).read())
print("HOME LISTING " + json.dumps(sorted(os.listdir(HOME)) if os.path.isdir(HOME) else []))
attempt("write the gradebook", lambda: write(GRADEBOOK))
attempt("write the package", lambda: write(__import__("autograder").__file__))
attempt("write outside the working copy", lambda: write(os.path.join(COURSE, "escaped")))
attempt("write into the system", lambda: write("/usr/escaped"))
attempt("write into the sandbox's root", lambda: write("/escaped"))
attempt("connect to the host's 127.0.0.1", connect)
attempt("signal the grader", lambda: os.kill(GRADER, 0))
attempt("see the grader in /proc", lambda: open(f"/proc/{GRADER}/cmdline").read())
attempt("read /etc/shadow", lambda: open("/etc/shadow").read(100))
attempt("list root's ssh keys", lambda: os.listdir("/root/.ssh"))
attempt("read an ssh host key", lambda: open("/etc/ssh/ssh_host_ed25519_key").read(100))
attempt("become root", lambda: os.setuid(0))
attempt("read the fork server's environment", lambda: open("/proc/1/environ").read())

import sys, autograder
print("SEES " + json.dumps({
    "ids": [os.getuid(), os.geteuid(), os.getgid(), os.getegid(), *os.getgroups()],
    "etc": sorted(os.listdir("/etc")),
    "sys": {folder: sorted(os.listdir(folder)) for folder in ("/sys", "/sys/devices", "/sys/devices/system")},
    "pid 1": open("/proc/1/cmdline").read(), "environment": dict(os.environ),
    "python": [sys.executable, sys.prefix, autograder.__file__]}))

# something that would outlive this notebook and spy on the next one
subprocess.Popen(["/bin/sh", "-c", "while true; do touch /tmp/left-behind /dev/shm/left-behind; sleep 0.05; done"],
                 start_new_session=True)
'''

# Fool: init_params is wrong; each trick tries to make its checks pass all the same.
FOOL = {
    # the trick: the check modules reached through call results, their expect/fail switched
    # off while the checks call init_params, put back by weakref.finalize when the result dies
    "finalizer": WRONG_INIT + '''
import importlib, weakref

_right, _saved = init_params, {}

def _restore():
    for (module, attr), value in _saved.items():
        setattr(module, attr, value)
    _saved.clear()

class _Later:
    """Lives in a reference cycle: only the garbage collector ends it, after the check has returned."""

def init_params(num_features, seed=0):
    modules = importlib.import_module("sys").modules
    for name, module in list(modules.items()):
        if name.startswith("autograder") and module is not None:
            for attr in ("fail", "expect", "expect_shape"):
                if attr in vars(module) and (module, attr) not in _saved:
                    _saved[(module, attr)] = vars(module)[attr]
                    setattr(module, attr, lambda *args, **kwargs: None)
    later = _Later()
    later.cycle = later
    weakref.finalize(later, _restore)
    return _right(num_features, seed)
''',
    # a thread that keeps switching the checks off, before and while they run
    "thread": WRONG_INIT + '''
import importlib, threading, time

def _keep_switching_off():
    modules = importlib.import_module("sys").modules
    while True:
        for name, module in list(modules.items()):
            if name.startswith("autograder") and module is not None:
                for attr in ("fail", "expect", "expect_shape"):
                    if attr in vars(module):
                        setattr(module, attr, lambda *args, **kwargs: None)
        time.sleep(0.0005)

threading.Thread(target=_keep_switching_off, daemon=True).start()
''',
    # the check's own frame, reached through a traceback: its globals patched, its locals read
    "traceback_frame": WRONG_INIT + '''
_right = init_params

def init_params(num_features, seed=0):
    try:
        raise ValueError
    except ValueError as error:
        caller = error.__traceback__.tb_frame.f_back
        caller.f_globals["fail"] = caller.f_globals["expect_shape"] = lambda *args, **kwargs: None
    return _right(num_features, seed)
''',
    # the same through the traceback module, which hands out frames
    "walk_tb": WRONG_INIT + '''
import traceback

_right = init_params

def init_params(num_features, seed=0):
    try:
        raise ValueError
    except ValueError as error:
        for frame, line in traceback.walk_tb(error.__traceback__):
            frame.f_back.f_globals["fail"] = frame.f_back.f_globals["expect_shape"] = lambda *a, **k: None
    return _right(num_features, seed)
''',
    # the interpreter's objects searched for the checks
    "gc": WRONG_INIT + '''
import gc

_right = init_params

def init_params(num_features, seed=0):
    for found in gc.get_objects():
        if isinstance(found, dict) and "expect_shape" in found and "fail" in found:
            found["fail"] = found["expect_shape"] = lambda *args, **kwargs: None
    return _right(num_features, seed)
''',
    # the other trick: walk up to solutions/ and exec the instructor's cell
    "exec_solution": '''import json, os

def _instructor_cell(grade_id):
    folder = os.getcwd()
    while folder != os.path.dirname(folder):
        path = os.path.join(folder, SOURCE_IN_COURSE)
        if os.path.exists(path):
            for cell in json.load(open(path))["cells"]:
                if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id:
                    return "".join(cell["source"])
        folder = os.path.dirname(folder)
    return SOLUTION_TEXT

exec(_instructor_cell("init_params"))
''',
    # a right answer, but as data the scan cannot read, run through a name it cannot see
    "exec_hidden": '''import builtins, codecs

getattr(builtins, "ex" + "ec")(codecs.decode(ROT13_TEXT, "rot13"), globals())
''',
}


# Judge: (exercise, the cell that answers it): a wrong answer that tries to pass a verdict made in the kernel.
WRONG_SGD = '''
def sgd_step(params, lr):
    with torch.no_grad():
        for p in params:
            p -= 2 * lr * p.grad  # twice the step
            p.grad = None
'''
JUDGE = {
    # the trick: the instructor's reference descent, imported from the checks
    "reference_import": ("train_manual", '''import importlib, torch

try:
    _instructor = importlib.import_module("autograder.checks.instructor.02_manual_model")
    print("REACH import the instructor's checks: ALLOWED")
except ImportError as error:
    print(f"REACH import the instructor's checks: denied ({type(error).__name__})")
    _instructor = None

def train_manual(X, y, epochs=100, lr=0.1, seed=0):
    W = (torch.rand(X.shape[1], 1, generator=torch.Generator().manual_seed(seed)) * 2 - 1) / X.shape[1] ** 0.5
    b = torch.zeros(1)
    W, b = _instructor._descend(X, y, W, b, epochs, lr)
    return W.requires_grad_(), b.requires_grad_(), [0.5] * epochs
'''),
    # torch.allclose says yes for a while, then puts itself back before anyone compares
    "self_restoring_patch": ("sgd_step", '''import torch

_real = torch.allclose
_calls = [0]

def _agree(*args, **kwargs):
    _calls[0] += 1
    if _calls[0] > 40:
        torch.allclose = _real
    return True

torch.allclose = _agree
''' + WRONG_SGD),
    # a function mode built with type(), answering every comparison with yes
    "function_mode": ("sgd_step", '''import torch
from torch.overrides import TorchFunctionMode

_COMPARE = {torch.allclose, torch.equal, torch.isclose, torch.eq, torch.Tensor.__eq__, torch.Tensor.all}

def _answer(self, func, types, args=(), kwargs=None):
    if func in (torch.allclose, torch.equal):
        return True
    result = func(*args, **(kwargs or {}))
    return torch.ones_like(result, dtype=torch.bool) if func in _COMPARE else result

_Agree = type("_Agree", (TorchFunctionMode,), {"__torch_function__": _answer})
_Agree().__enter__()
''' + WRONG_SGD),
    # a method PyTorch's Tensor does not have in its own dictionary: every tensor is true
    "tensor_method": ("sgd_step", '''import torch

torch.Tensor.__bool__ = lambda self: True
''' + WRONG_SGD),
    # the judge's socket, looked for in the folder the kernel shares with the grader
    "judge_socket": ("sgd_step", "import glob, os, socket\n" + WRONG_SGD + '''
_wrong = sgd_step

def sgd_step(params, lr):
    for path in glob.glob(os.path.join(os.getcwd(), ".*", "*")):
        try:
            socket.socket(socket.AF_UNIX).connect(path)
        except OSError:
            pass
    return _wrong(params, lr)
'''),
    # the course's cached data set poisoned in place: every tumour benign, and a constant prediction
    "poisoned_data": ("fit_raw_measurements", '''import torch
import autograder.data as data

for cached in (data._breast_cancer_raw, data._breast_cancer):
    cached()[1].fill_(1.0)

def fit_raw_measurements(X, y):
    return lambda X_new: torch.ones(len(X_new), 1)
'''),
}


def _right_init() -> str:
    """The instructor's init_params: the answer the tricks try to get hold of."""
    solution = nbformat.read(solution_path(A), as_version=4)
    cell = next(c for c in solution.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "init_params")
    return "import math\nimport torch\n" + cell.source + "\n"


RIGHT_INIT = _right_init()
HONEST_TRACEBACK = '''
import traceback

try:
    init_params(0)
except ZeroDivisionError:
    print("as expected:", traceback.format_exc().splitlines()[-1])
'''


def _notebook(release, init_source=None, before=(), after_init=(), answers=None):
    nb = nbformat.from_dict(json.loads(json.dumps(release)))
    answers = {**(answers or {}), **({"init_params": init_source} if init_source is not None else {})}
    cells = []
    for cell in nb.cells:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
        cells.append(cell)
        if grade_id == "setup":
            cells.extend(nbformat.v4.new_code_cell(source) for source in before)
        if grade_id == "init_params":
            cells.extend(nbformat.v4.new_code_cell(source) for source in after_init)
    nb.cells = cells
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sandbox")
    copy = course_copy(tmp / "course", A)
    course = copy.root
    release = nbformat.read(copy.release_notebook(A), as_version=4)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    reached = []
    threading.Thread(target=lambda: reached.append(listener.accept()), daemon=True).start()
    home = Path.home()
    secret = home / f".autograder-sandbox-test-{os.getpid()}"
    secret.write_text("the instructor's")
    constants = {
        "SOLUTION": str(copy.source_notebook(A)), "COURSE": str(course),
        "OTHER": str(course / "submitted" / "b-honest" / A / f"{A}.ipynb"), "HOME": str(home), "SECRET": str(secret),
        "GRADEBOOK": str(course / "gradebook.db"),
        "PORT": listener.getsockname()[1], "GRADER": os.getpid(),
    }
    reach = "\n".join(f"{k} = {v!r}" for k, v in constants.items()) + "\n" + REACH
    students = {
        "a-reach": _notebook(release, before=[OBSERVE, reach]),
        # honest, and prints a traceback it caught (text, no frames): nothing is refused
        "b-honest": _notebook(release, RIGHT_INIT + HONEST_TRACEBACK, before=[OBSERVE]),
        # a kernel that dies in the cell that defines an exercise costs that exercise only
        "c-dies-in-init": _notebook(release, RIGHT_INIT + "\nimport os\nos._exit(3)\n", before=[OBSERVE]),
        "d-dies-after-init": _notebook(release, RIGHT_INIT, before=[OBSERVE],
                                       after_init=["import faulthandler\nfaulthandler._sigsegv()\n"]),
    }
    for name, source in FOOL.items():
        source = source.replace("SOLUTION_TEXT", repr(RIGHT_INIT))
        source = source.replace("ROT13_TEXT", repr(codecs.encode(RIGHT_INIT, "rot13")))
        source = source.replace("SOURCE_IN_COURSE", repr(str(COURSE.source_notebook(A).relative_to(COURSE.root))))
        students[f"fool-{name.replace('_', '-')}"] = _notebook(release, source, before=[OBSERVE])
    for name, (exercise, source) in JUDGE.items():
        students[f"judge-{name.replace('_', '-')}"] = _notebook(release, answers={exercise: source}, before=[OBSERVE])
    submissions = tmp / "class"
    submissions.mkdir()
    for student, nb in students.items():
        nbformat.write(nb, submissions / f"{student}.ipynb")
    try:
        result = grade_class(Options(A, submissions, course, jobs=2, timeout=20, progress=False))
    finally:
        listener.close()
        secret.unlink()
    executed = {s: nbformat.read(course / "autograded" / s / A / f"{A}.ipynb", as_version=4) for s in students}
    return {"result": result, "students": {s.student: s for s in result.students}, "executed": executed,
            "reached": reached, "course": course}


def _printed(nb, prefix):
    lines = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                lines += [line for line in output.get("text", "").splitlines() if line.startswith(prefix)]
    return lines


def _points(student, exercise):
    return next(verdict.points for verdict in student.exercises if verdict.exercise == exercise)


def test_every_reach_is_denied(graded):
    lines = _printed(graded["executed"]["a-reach"], "REACH ")
    assert len(lines) == 17, lines
    allowed = [line for line in lines if ": denied" not in line]
    assert allowed == []
    assert graded["reached"] == [], "the host's 127.0.0.1 was reached from a kernel"
    # of the home directory, a kernel sees at most the folders that hold Python and its packages
    home = Path.home()
    libraries = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    needed = {p.relative_to(home).parts[0] for p in libraries if home in p.parents}
    listing = json.loads(_printed(graded["executed"]["a-reach"], "HOME LISTING ")[0][len("HOME LISTING "):])
    assert set(listing) <= needed, listing
    assert (graded["course"] / "submitted").is_dir() and not (graded["course"] / "escaped").exists()


def test_a_kernel_runs_unprivileged_and_sees_nothing_of_the_host_or_the_course(graded):
    seen = json.loads(_printed(graded["executed"]["a-reach"], "SEES ")[0][len("SEES "):])
    assert 0 not in seen["ids"], seen["ids"]
    assert set(seen["etc"]) <= set(sandbox.ETC) | {"passwd", "group", "hosts", "nsswitch.conf"}, seen["etc"]
    assert seen["sys"] == {"/sys": ["devices"], "/sys/devices": ["system"], "/sys/devices/system": ["cpu"]}
    course_paths = [str(ROOT), str(graded["course"]), str(Path.home())]
    shown = [seen["pid 1"], *seen["environment"].values(), *seen["python"]]
    assert [text for text in shown if any(path in text for path in course_paths)] == []
    python_bin = os.path.dirname(seen["python"][0])
    assert set(seen["environment"]["PATH"].split(":")) <= {python_bin, "/usr/local/bin", "/usr/bin", "/bin"}


def test_no_notebook_sees_another_ones_processes_or_files(graded):
    for student, nb in graded["executed"].items():
        lines = _printed(nb, "OBSERVE ")
        assert lines, student
        seen = json.loads(lines[0][len("OBSERVE "):])
        assert seen["pids"] == [], f"{student} saw other processes: {seen}"
        assert "left-behind" not in seen["tmp"] + seen["shm"], f"{student} found what another notebook left"
        assert [name for name in seen["folder"] if not name.startswith(".")] == [f"{A}.ipynb"], seen


def test_the_report_says_whether_the_run_was_confined(graded, tmp_path):
    report = graded["result"].files["report"].read_text()
    assert "ran confined (bwrap)" in report and "UNCONFINED" not in report
    assert json.loads(graded["result"].files["json"].read_text())["confinement"].startswith("confined")
    submissions = tmp_path / "class"
    submissions.mkdir()
    shutil.copy(release_path(A), submissions / "blank.ipynb")
    loose = grade_class(Options(A, submissions, graded["course"], jobs=1, timeout=20, progress=False, force=True,
                                sandbox=False, out=tmp_path / "out"))
    assert "**Student code ran UNCONFINED (--no-sandbox)**" in loose.files["report"].read_text()
    assert json.loads(loose.files["json"].read_text())["confinement"] == "UNCONFINED (--no-sandbox)"


@pytest.mark.parametrize("trick", sorted(FOOL))
def test_every_fooling_attempt_scores_zero(graded, trick):
    student = graded["students"][f"fool-{trick.replace('_', '-')}"]
    assert student.score == 0, f"{trick}: {student.score} points; {student.exercises}"


@pytest.mark.parametrize("trick, says", [
    ("thread", "autograder.results.expect was replaced"), ("traceback_frame", "reached a running frame"),
    ("walk_tb", "reached a running frame"),
    ("gc", "searched the interpreter's objects"), ("exec_hidden", "built code at run time"),
    ("exec_solution", "runs code built at run time"),
])
def test_the_report_says_which_test_lost_its_points_and_why(graded, trick, says):
    student = graded["students"][f"fool-{trick.replace('_', '-')}"]
    found = " | ".join(student.tamper)
    assert says in found, found
    assert "init_params" in found


def test_honest_work_is_not_flagged(graded):
    honest = graded["students"]["b-honest"]
    assert honest.tamper == [] and honest.faults == []
    assert _points(honest, "init_params") == 3


def test_a_dead_kernel_costs_only_the_exercise_that_killed_it(graded):
    dies_in = graded["students"]["c-dies-in-init"]
    assert _points(dies_in, "init_params") == 0
    assert "exited with code 3" in " ".join(dies_in.faults)
    assert "defines init_params" in " ".join(dies_in.faults)
    assert dies_in.tamper == []
    dies_after = graded["students"]["d-dies-after-init"]
    assert _points(dies_after, "init_params") == 3, "the tests after the fatal cell were graded"
    assert "SIGSEGV" in " ".join(dies_after.faults)


@pytest.mark.parametrize("trick", sorted(JUDGE))
def test_a_wrong_answer_scores_zero_however_the_kernel_was_patched(graded, trick):
    exercise, _ = JUDGE[trick]
    student = graded["students"][f"judge-{trick.replace('_', '-')}"]
    assert _points(student, exercise) == 0, f"{trick}: {student.exercises}"


def test_the_judges_socket_is_refused_to_the_learners_code(graded):
    found = " | ".join(graded["students"]["judge-judge-socket"].tamper)
    assert "connected to the grader's socket" in found and "sgd_step" in found, found


def test_the_instructors_checks_cannot_be_imported_in_a_graded_kernel(graded):
    assert _printed(graded["executed"]["judge-reference-import"], "REACH ") == [
        "REACH import the instructor's checks: denied (ModuleNotFoundError)"]
