"""The student pack (`autograder pack`): the course without its answers.

- the contents scan: no solution code, no hidden test, no instructor check module;
- the substitution test: nothing the pack's `autograder` defines, nor a short wrapper around it, passes an
  exercise's hidden checks;
- a fresh install from the zip: the pack's own two commands, and public verdicts on a filled-in notebook;
- the round trip: that notebook, graded in the instructor's course, gets the expected score.
"""

from __future__ import annotations

import csv
import importlib
import inspect
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path, PurePath

import nbformat
import pytest

from autograder import registry
from autograder.pack import INSTRUCTOR_ONLY, PACK_NAME, build_pack, student_package_files
from autograder.results import PASSED
from support import NOTEBOOKS, RELEASE, ROOT, course_copy, nbgrader_meta, solution_namespace, solution_path

A = "02_manual_model"


@pytest.fixture(scope="module")
def pack(tmp_path_factory):
    return build_pack(ROOT, tmp_path_factory.mktemp("dist"))


def _texts(folder: Path) -> dict[str, set[str]]:
    """Each text file of the pack as the set of its lines, stripped: a solution's line of code
    counts as shipped when some file holds it as a line of its own (a message that merely
    quotes it, as a hint does, is not code)."""
    texts = {}
    for path in folder.rglob("*"):
        if path.is_file() and ".venv" not in path.parts:
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except UnicodeDecodeError:
                continue
            texts[str(path.relative_to(folder))] = {line.strip() for line in lines}
    return texts


def _region(source: str, begin: str, end: str) -> list[str]:
    lines, inside = [], False
    for line in source.splitlines():
        if begin in line:
            inside = True
        elif end in line:
            inside = False
        elif inside:
            lines.append(line.strip())
    return lines


def _released_sources() -> str:
    """All the code and text the release gives (a later notebook may show an earlier one's answer)."""
    return "\n".join(cell.source for path in sorted(RELEASE.glob("*/*.ipynb"))
                     for cell in nbformat.read(path, as_version=4).cells)


def _secret_lines(notebook: str, begin: str, end: str) -> list[str]:
    """The distinctive lines of every region between the markers in the instructor's notebook:
    long enough to be specific, not comments, and not also given in the release."""
    given = _released_sources()
    found = []
    for cell in nbformat.read(solution_path(notebook), as_version=4).cells:
        for line in _region(cell.source, begin, end):
            if len(line) >= 24 and not line.startswith("#") and line not in given:
                found.append(line)
    return found


def test_the_pack_has_the_notebooks_the_two_commands_and_the_pins(pack):
    folder, archive = pack
    assert sorted(p.name for p in (folder / RELEASE.relative_to(ROOT)).iterdir()) == NOTEBOOKS
    makefile = (folder / "Makefile").read_text()
    assert "\nlab:" in makefile and "\ncheck:" in makefile
    readme = (folder / "README.md").read_text()
    assert "make lab" in readme and "make check" in readme and "more tests run" in readme
    # The course's runtime pins; its dev tools (tests, browser) stay with the course.
    from autograder.pack import GRADING_ONLY

    course_pins = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for pin in course_pins:
        packed = f'"{pin}"' in (folder / "pyproject.toml").read_text()
        assert packed != (pin.split("==")[0] in GRADING_ONLY), f"the pack pins {pin} wrongly (grading only: {GRADING_ONLY})"
    with zipfile.ZipFile(archive) as zipped:
        names = zipped.namelist()
    assert all(name.startswith(f"{PACK_NAME}/") for name in names)
    assert f"{PACK_NAME}/Makefile" in names and f"{PACK_NAME}/autograder/checks/_support.py" in names


def test_the_pack_holds_no_instructor_code(pack):
    folder, _ = pack
    shipped = {p.relative_to(folder / "autograder").as_posix() for p in (folder / "autograder").rglob("*.py")}
    for part in INSTRUCTOR_ONLY:
        assert not any(name == part or name.startswith(part + "/") for name in shipped), f"{part} shipped"
    instructor = ROOT / "autograder" / "checks" / "instructor"
    texts = _texts(folder)
    for module in instructor.glob("[!_]*.py"):
        for line in module.read_text(encoding="utf-8").splitlines():
            if line.startswith("def ") and not line.startswith("def _"):
                leaks = [name for name, lines in texts.items() if line in lines]
                assert not leaks, f"the instructor check `{line}` is in {leaks}"
    # Everything that ships is the course's own file, unchanged: the same public verdicts.
    for relative in student_package_files():
        assert (folder / "autograder" / relative).read_bytes() == (ROOT / "autograder" / relative).read_bytes()


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_the_pack_holds_no_solution_code_and_no_hidden_test(pack, notebook):
    folder, _ = pack
    texts = _texts(folder)
    leaks = []
    for begin, end, what in (("### BEGIN SOLUTION", "### END SOLUTION", "solution"),
                             ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS", "hidden test")):
        for line in _secret_lines(notebook, begin, end):
            leaks.extend(f"{what} line in {', '.join(names)}: {line}" for names in
                         [[name for name, lines in texts.items() if line in lines]] if names)
    assert not leaks, f"{notebook}'s answers are in the pack:\n" + "\n".join(leaks)


# --- a chosen set of assignments, and the pack's Makefile -------------------------------------


CHOSEN = ["01_tensors", "02_manual_model"]


def test_a_pack_can_release_only_the_assignments_chosen(tmp_path):
    folder, archive = build_pack(ROOT, tmp_path, ["02", "01_tensors"])  # by number or in full, in any order
    left_out = [name for name in NOTEBOOKS if name not in CHOSEN]
    assert left_out, "the course has more notebooks than those chosen"
    assert sorted(p.name for p in (folder / RELEASE.relative_to(ROOT)).iterdir()) == CHOSEN
    # Their public check modules only; the helpers every notebook's checks share still ship.
    assert sorted(p.stem for p in (folder / "autograder" / "checks").glob("[!_]*.py")) == CHOSEN
    assert (folder / "autograder" / "checks" / "_support.py").exists()
    with zipfile.ZipFile(archive) as zipped:
        shipped = "\n".join(zipped.namelist())
    readme, makefile = (folder / "README.md").read_text(), (folder / "Makefile").read_text()
    for name in left_out:
        assert name not in shipped and name not in readme and name not in makefile, f"{name} is in the pack"
    assert all(f"my-work/{name}/{name}.ipynb" in readme for name in CHOSEN)
    # The pack's own registry (what `autograder check` lists) knows only the notebooks released.
    listed = subprocess.run([sys.executable, "-c", "from autograder import registry, __file__ as f; "
                             "print(f); print(registry.notebooks())"], cwd=folder, capture_output=True, text=True,
                            env={**_student_env(), "PYTHONPATH": str(folder)})
    where, notebooks = listed.stdout.splitlines()
    assert where.startswith(str(folder)), listed.stderr
    assert notebooks == repr(CHOSEN)


def test_a_bad_assignment_name_is_one_line_that_lists_the_valid_ones(tmp_path, capsys):
    from autograder.cli import main

    status = main(["pack", "--course", str(ROOT), "--to", str(tmp_path / "dist"), "--assignments", "01", "10", "tensors"])
    error = capsys.readouterr().err
    assert status == 2
    assert error.count("\n") == 1 and error.startswith("autograder pack: no such assignment: 10, tensors."), error
    assert f"The assignments are {', '.join(NOTEBOOKS)}" in error
    assert not (tmp_path / "dist").exists(), "nothing is written"


def _dry_make(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """What ``make ARGS`` would run, without running it (nothing is installed or started)."""
    return subprocess.run(["make", "-n", *args], cwd=folder, capture_output=True, text=True, timeout=60)


def test_make_student_pack_passes_the_assignments_chosen():
    assert "autograder pack --to dist --assignments 01 02\n" in _dry_make(ROOT, "student-pack", "ASSIGNMENTS=01 02").stdout
    everything = _dry_make(ROOT, "student-pack").stdout
    assert "autograder pack --to dist" in everything and "--assignments" not in everything


@pytest.mark.parametrize("where", ["course", "pack"])
def test_make_lab_as_root_says_so_in_one_line_and_allows_root_only_when_asked(pack, where):
    folder = ROOT if where == "course" else pack[0]
    refused = _dry_make(folder, "lab", "USER_ID=0")
    assert refused.returncode != 0
    [line] = refused.stderr.strip().splitlines()
    assert "JupyterLab will not run as root" in line and "make lab ALLOW_ROOT=1" in line, line
    assert "jupyter lab" not in refused.stdout and "pip install" not in refused.stdout, "said before anything runs"
    for uid, allow, expected in (("0", "ALLOW_ROOT=1", True), ("1000", "", False)):
        done = _dry_make(folder, "lab", f"USER_ID={uid}", *([allow] if allow else []))
        [command] = [line for line in done.stdout.splitlines() if "jupyter lab" in line]
        assert done.returncode == 0 and ("--allow-root" in command) == expected, command


def test_the_packs_make_check_is_strict_only_when_asked(pack):
    folder, _ = pack
    assert "autograder check --strict" in _dry_make(folder, "check", "STRICT=1").stdout
    assert "autograder check --strict" not in _dry_make(folder, "check").stdout


# --- nothing the pack's autograder defines solves an exercise ------------------------------


def _pack_definitions() -> list[tuple[str, object]]:
    """Every function and class defined at the top of a module the pack ships."""
    found = []
    for relative in student_package_files():
        if relative.suffix != ".py" or relative.name == "__main__.py":
            continue
        name = "autograder." + ".".join(relative.with_suffix("").parts)
        name = name.removesuffix(".__init__")
        module = importlib.import_module(name)
        for attribute, value in vars(module).items():
            if (inspect.isfunction(value) or inspect.isclass(value)) and value.__module__ == name:
                found.append((f"{name}.{attribute}", value))
    return found


def _wrappers(candidate, answer) -> list[tuple[str, object]]:
    """Ways a student could put ``candidate`` in place of the answer with a few lines of their own: called
    as it is; with the answer's arguments packed in one tuple; with a prefix of them; with those whose
    names it shares; each result as it is, its first item, or its tensors in float32."""
    if inspect.isclass(candidate) != inspect.isclass(answer):
        return []
    try:
        names = [p.name for p in inspect.signature(answer).parameters.values()
                 if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        theirs = [p.name for p in inspect.signature(candidate).parameters.values()]
    except (TypeError, ValueError):
        return []
    if inspect.isclass(candidate):
        return [("as it is", candidate)]
    calls = [("as it is", lambda *a, **k: candidate(*a, **k)),
             ("with its arguments in one tuple", lambda *a, **k: candidate(a))]
    for cut in range(1, len(names)):
        calls.append((f"with its first {cut} arguments", lambda *a, _cut=cut, **k: candidate(*a[:_cut])))
    shared = [name for name in names if name in theirs]
    if shared:
        def by_name(*a, **k):
            given = dict(zip(names, a), **k)
            return candidate(**{name: given[name] for name in shared if name in given})
        calls.append((f"with {', '.join(shared)} by name", by_name))

    def first(result):
        return result[0] if isinstance(result, (tuple, list)) and result else result

    def float32(result):
        import torch

        if isinstance(result, torch.Tensor) and result.is_floating_point():
            return result.float()
        if isinstance(result, (tuple, list)):
            return type(result)(float32(item) for item in result)
        return result

    wrappers = []
    for label, call in calls:
        for outcome, adapt in (("", lambda r: r), (", its first result", first), (", in float32", float32)):
            def wrapper(*args, _call=call, _adapt=adapt, **kwargs):
                return _adapt(_call(*args, **kwargs))
            wrapper.__signature__ = inspect.signature(answer)
            wrappers.append((label + outcome, wrapper))
    return wrappers


def _passes_every_check(exercise: str, namespace: dict) -> bool:
    """Whether every check of the exercise (the instructor's too) passes, stopping at the first that fails."""
    from autograder.learner import InProcess, Learner
    from autograder.runner import _run_one

    learner = Learner(InProcess(namespace))
    try:
        for check in registry.checks_of(exercise):
            try:
                if _run_one(check, learner, True, {}).status != PASSED:
                    return False
            except SystemExit:  # the command line's entry point, called with an exercise's arguments
                return False
        return True
    finally:
        learner.release()


class _FirstCall:
    """Stands in for an answer while the checks run, and keeps the first call made to it: copies of its
    arguments as they came, the answer's result, the arguments as the answer left them, the random state,
    and the files of the folders its path arguments name, before and after. It shares the answer's
    globals, so that a check that watches or swaps the names the answer uses (its own functions, a data
    loader, torch.save) treats it as the answer itself."""

    def __init__(self, answer):
        self.answer, self.seen = answer, None
        self.__signature__ = inspect.signature(answer)
        if isinstance(getattr(answer, "__globals__", None), dict):
            self.__globals__ = answer.__globals__

    def __call__(self, *args, **kwargs):
        import torch

        if self.seen is not None:
            return self.answer(*args, **kwargs)
        given, rng = _copied((args, kwargs)), torch.random.get_rng_state()
        folders = _folders((args, kwargs))
        before = _files(folders)
        result = self.answer(*args, **kwargs)
        self.seen = (given, result, _copied((args, kwargs)), rng, before, _files(folders))
        return result


def _folders(value) -> list[Path]:
    """The folders that the paths among a call's arguments name: the path itself when it is a folder, else
    the folder it lies in."""
    if isinstance(value, (tuple, list)):
        return [folder for item in value for folder in _folders(item)]
    if isinstance(value, dict):
        return _folders(list(value.values()))
    if isinstance(value, os.PathLike):
        path = Path(value)
        return [path if path.is_dir() else path.parent]
    return []


_MOST_BYTES = 64 * 2**20


def _files(folders: list[Path]):
    """What the folders hold: for each, its files' bytes by their relative path (None for a folder that does
    not exist); _UNCOPYABLE when there is too much to keep."""
    found, total = {}, 0
    for folder in dict.fromkeys(folders):
        if not folder.is_dir():
            found[folder] = None
            continue
        found[folder] = {}
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                total += path.stat().st_size
                if total > _MOST_BYTES:
                    return _UNCOPYABLE
                found[folder][path.relative_to(folder).as_posix()] = path.read_bytes()
    return found


def _same_files(a: dict, b: dict) -> bool:
    """False only where two states of the same folders provably differ: another folder or another file is
    there, or a file that torch.load(weights_only=True) reads holds other data (or only one of the two
    reads). Two files whose bytes differ and that neither reads count as alike: the checks decide."""
    import io

    import torch

    def read(data: bytes):
        try:
            return True, torch.load(io.BytesIO(data), weights_only=True)
        except Exception:
            return False, None

    if list(a) != list(b):
        return False
    for folder in a:
        if (a[folder] is None) != (b[folder] is None):
            return False
        if a[folder] is None:
            continue
        if sorted(a[folder]) != sorted(b[folder]):
            return False
        for name, data in a[folder].items():
            if data == b[folder][name]:
                continue
            (reads, content), (other_reads, other) = read(data), read(b[folder][name])
            if reads != other_reads or (reads and not _same(content, other)):
                return False
    return True


def _copied(value):
    import copy

    try:
        return copy.deepcopy(value)
    except Exception:
        return _UNCOPYABLE


_UNCOPYABLE = object()


def _same(a, b) -> bool:
    """Whether two results agree (tensors within float tolerance, modules and optimizers by their
    state); False for anything else."""
    import torch

    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        try:
            return (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape
                    and a.dtype == b.dtype and a.device == b.device
                    and bool(torch.allclose(a.detach().double(), b.detach().double(), rtol=1e-4, atol=1e-6,
                                            equal_nan=True)))
        except Exception:  # a tensor without data (meta), or one of a kind allclose refuses
            return False
    if isinstance(a, (torch.nn.Module, torch.optim.Optimizer)):
        return type(a) is type(b) and _same(a.state_dict(), b.state_dict())
    if isinstance(a, torch.utils.data.DataLoader):  # batches drawn from it are what the checks compare
        return type(a) is type(b)
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 1e-6 + 1e-4 * abs(b)
    if a is None or isinstance(a, (bool, int, str, float, torch.device, torch.dtype, PurePath)):
        return type(a) is type(b) and a == b
    if _library_function(a):
        return a is b
    return False


def _library_function(value) -> bool:
    """A function of PyTorch's own (F.cross_entropy, given as an argument): it keeps no state, so the same
    function is the same argument."""
    return ((inspect.isfunction(value) or inspect.isbuiltin(value))
            and str(getattr(value, "__module__", None) or "").split(".")[0] == "torch")


def _plain(value) -> bool:
    """What :func:`_same` can compare: data, paths, models, optimizers, loaders and PyTorch's own functions
    (not other functions or objects of other kinds, whose state it cannot read)."""
    import torch

    if isinstance(value, (tuple, list)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, (str, int)) and _plain(v) for k, v in value.items())
    return value is None or _library_function(value) or isinstance(
        value, (bool, int, float, str, PurePath, torch.Tensor, torch.device, torch.dtype, torch.nn.Module,
                torch.optim.Optimizer, torch.utils.data.DataLoader))


def _could_pass(wrapper, seen) -> bool:
    """False when the wrapper, given the first call the checks made to the answer, does not do what the
    answer did (it raises, returns another result, changes its arguments otherwise, or leaves other files
    in the folders its paths name): the first check that makes that call would reject it, so the checks
    need not run. True when it does, or when the call cannot be replayed (then the checks decide). A result
    that cannot be compared (a function) leaves the rest to compare."""
    import torch

    given, result, after, rng, files_before, files_after = seen
    if given is _UNCOPYABLE or after is _UNCOPYABLE or not _plain(given):
        return True
    if files_before is _UNCOPYABLE or files_after is _UNCOPYABLE:
        return True
    # The folders are the check's own, removed since: made again as they were before the call, and removed
    # afterwards. One that is there now is someone else's, and is left alone.
    made = [folder for folder in files_before if files_before[folder] is not None]
    if any(folder.exists() for folder in files_before) or any(not folder.parent.is_dir() for folder in made):
        return True
    args, kwargs = _copied(given)
    if args is _UNCOPYABLE:
        return True
    saved = torch.random.get_rng_state()
    try:
        for folder in made:
            folder.mkdir()
            for name, data in files_before[folder].items():
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                (folder / name).write_bytes(data)
        torch.random.set_rng_state(rng)  # the random draws the answer met (a shuffling loader, an init)
        try:
            theirs = wrapper(*args, **kwargs)
        except BaseException:  # it cannot even be called the way the answer is
            return False
        finally:
            torch.random.set_rng_state(saved)
        files = _files(list(files_before))
    finally:
        for folder in files_before:
            shutil.rmtree(folder, ignore_errors=True)
    # A result of another kind (a function the answer returns) cannot be compared, only told from what
    # cannot be called as it can; its arguments and files can.
    alike = _same(theirs, result) if _plain(result) else callable(theirs) or not callable(result)
    return (alike and _same((args, kwargs), after)
            and (files is _UNCOPYABLE or _same_files(files, files_after)))


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_nothing_in_the_pack_passes_an_exercise_in_place_of_its_answer(notebook, tmp_path, monkeypatch):
    """Not the pack's functions and classes, nor a wrapper of a few lines around one of them: every check
    of the exercise, hidden ones included, still has to fail. (A check's own functions and the probes
    take the learner's code as an argument: called in its place they return nothing an exercise asks.)

    To keep this affordable, each wrapper is first given the first call the checks make to the answer;
    only one that then does what the answer did (same result, same changes to its arguments and to the
    folders its paths name) goes through the checks, up to the first that it fails. The checks are
    deterministic, so one that differs there fails that check anyway."""
    monkeypatch.chdir(tmp_path)  # whatever a candidate writes lands here
    registered = {check.func for name in NOTEBOOKS for exercise in registry.exercises(name)
                  for check in registry.checks_of(exercise)}
    # What could compute an answer: the helpers of the check modules and the data module (the rest of the
    # package runs notebooks and renders reports; the checks themselves only raise or return None).
    candidates = [(label, value) for label, value in _pack_definitions()
                  if label.startswith(("autograder.checks.", "autograder.data.")) and value not in registered]
    tried, _, passing = _substitutes(notebook, candidates)
    assert not passing, "\n".join(passing)
    assert tried, "no candidate fitted any exercise: the test would prove nothing"


def _substitutes(notebook: str, candidates, exercises=None) -> tuple[int, int, list[str]]:
    """How many wrappers of the candidates were tried in place of an answer of the notebook, how many of
    them went through the checks, and which passed every check."""
    namespace = solution_namespace(notebook)
    tried = checked = 0
    passing = []
    for exercise in exercises or registry.exercises(notebook):
        answer = namespace[exercise]
        first = _FirstCall(answer)
        if inspect.isclass(answer) or not _passes_every_check(exercise, {**namespace, exercise: first}):
            first.seen = None  # a check that looks at the function itself: no shortcut for this exercise
        elif not _could_pass(answer, first.seen):
            first.seen = None  # the replay does not bring back what the answer itself did: no shortcut either
        for label, candidate in candidates:
            for how, wrapper in _wrappers(candidate, answer):
                tried += 1
                if first.seen is not None and not _could_pass(wrapper, first.seen):
                    continue
                checked += 1
                if _passes_every_check(exercise, {**namespace, exercise: wrapper}):
                    passing.append(f"{label} from the student pack, {how}, passes every check of {exercise}")
    return tried, checked, passing


def _planted(notebook: str) -> list[tuple[str, object]]:
    """Helpers that a pack must never ship: each answers an exercise of 07 once a student wraps it in a
    few lines (07's answers take paths, models, optimizers and a loss function: what the shortcut replays
    with the files in their folders); and one that answers nothing."""
    import torch

    answers = solution_namespace(notebook)

    def save_elsewhere_first(path, model, optimizer, epoch):  # the answer's recipe, with another temporary file
        partial = path.with_name("another-" + path.name)
        torch.save({"model_state_dict": model.state_dict(), "optimizer_state_dict": optimizer.state_dict(),
                    "epoch": int(epoch)}, partial)
        os.replace(partial, path)
        return None, "saved"

    def load_checkpoint(path, model, optimizer=None, map_location="cpu"):
        return answers["load_checkpoint"](path, model, optimizer, map_location)

    def best_of(arguments):
        return answers["train_keeping_the_best"](*arguments)

    def nothing(path, model, optimizer, epoch):
        return None

    return [("planted.save_elsewhere_first", save_elsewhere_first), ("planted.load_checkpoint", load_checkpoint),
            ("planted.best_of", best_of), ("planted.nothing", nothing)]


@pytest.mark.slow
def test_a_pack_helper_that_answers_an_exercise_is_caught(tmp_path, monkeypatch):
    """The test above fails when the pack ships a helper that answers an exercise once wrapped: through
    the shortcut too, which replays a call whose arguments are paths in a folder the check has removed."""
    monkeypatch.chdir(tmp_path)
    notebook = "07_devices_checkpoints"
    exercises = ["save_checkpoint", "load_checkpoint", "train_keeping_the_best"]
    tried, checked, passing = _substitutes(notebook, _planted(notebook), exercises)
    caught = {line.split(" from the student pack, ")[0] + " / " + line.rsplit(" ", 1)[1] for line in passing}
    assert {"planted.save_elsewhere_first / save_checkpoint", "planted.load_checkpoint / load_checkpoint",
            "planted.best_of / train_keeping_the_best"} <= caught, passing
    assert not any(line.startswith("planted.nothing ") for line in passing), passing
    assert checked < tried, "the shortcut filtered nothing out: this test proves nothing about it"


@pytest.mark.slow
def test_a_pack_helper_that_returns_the_answers_function_is_caught(tmp_path, monkeypatch):
    """The same for an exercise whose answer returns a function (02's fit_raw_measurements returns its
    predict): the shortcut cannot compare that result, and still lets through what returns one."""
    monkeypatch.chdir(tmp_path)
    notebook, exercise = "02_manual_model", "fit_raw_measurements"
    answers = solution_namespace(notebook)

    def fit_and_describe(X, y):
        return answers[exercise](X, y), "a predict function"

    def just_the_data(X, y):
        return X

    tried, checked, passing = _substitutes(notebook, [("planted.fit_and_describe", fit_and_describe),
                                                      ("planted.just_the_data", just_the_data)], [exercise])
    assert any(line.startswith("planted.fit_and_describe from the student pack, as it is, its first result")
               for line in passing), passing
    assert not any(line.startswith("planted.just_the_data ") for line in passing), passing
    assert checked < tried, "the shortcut filtered nothing out: this test proves nothing about it"


def test_a_wrapper_that_answers_is_never_filtered_out_before_the_checks():
    """The shortcut above must let through whatever does what the answer does: the answer itself, and a
    wrapper that returns the same result; and stop what returns something else or changes its arguments
    in another way."""
    import torch

    def answer(w, lr):
        w -= lr
        return w * 2

    first = _FirstCall(answer)
    first(torch.ones(3), 0.5)
    assert _could_pass(answer, first.seen)
    model = torch.nn.Linear(2, 1)

    def trains(model, lr):  # an answer that changes a model and draws random numbers
        with torch.no_grad():
            model.weight += lr * torch.randn(1, 2)
        return float(model.weight.sum())

    first_training = _FirstCall(trains)
    first_training(model, 0.1)
    assert _could_pass(trains, first_training.seen), "the same draws as the answer met"
    assert not _could_pass(lambda model, lr: float(model.weight.sum()), first_training.seen), "leaves the model"
    assert _could_pass(lambda w, lr: answer(w, lr), first.seen)
    assert not _could_pass(lambda w, lr: w * 2, first.seen), "leaves w as it was"
    assert not _could_pass(lambda w, lr: answer(w, lr) + 1, first.seen), "another result"
    assert not _could_pass(lambda w: w, first.seen), "cannot be called that way"

    def fits(X, y):  # an answer that returns a function: that result is not compared, only its kind
        return lambda inputs: inputs @ X.T

    first_fit = _FirstCall(fits)
    first_fit(torch.ones(2, 3), torch.zeros(2))
    assert _could_pass(lambda X, y: (lambda inputs: inputs), first_fit.seen), "another function: the checks decide"
    assert not _could_pass(lambda X, y: X, first_fit.seen), "not a function"
    assert not _could_pass(lambda X, y: X.add_(1) and fits, first_fit.seen), "changes X"


# --- a fresh install from the zip, and the round trip to the instructor's course -------------


def _fresh_pack(archive: Path, where: Path) -> Path:
    """The zip unpacked into an empty folder, with a new virtual environment in it. The pinned
    libraries come from the course's own environment (linked, not copied), so that the test needs no
    download; everything of the pack's own is installed by the pack's Makefile."""
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(where)
    folder = where / PACK_NAME
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder / ".venv")], check=True)
    venv_site = next((folder / ".venv" / "lib").glob("python3*/site-packages"))
    (venv_site / "course-libraries.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return folder


def _student_env() -> dict[str, str]:
    """A shell of the student's: nothing of the course's environment on its paths."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if not p.startswith(str(Path(sys.executable).parent)))
    return env


def _make(folder: Path, *args: str) -> subprocess.CompletedProcess:
    # No build isolation: the build backend comes from the linked libraries instead of a download.
    return subprocess.run(["make", *args, "PIP_ARGS=--no-build-isolation --no-index"], cwd=folder,
                          env=_student_env(), capture_output=True, text=True, timeout=600)


def _student_work(folder: Path, answers: dict[str, str]) -> Path:
    """The pack's release of A filled in as a student would: every exercise from the instructor's
    solution, except ``answers``."""
    from autograder.grading.sample import Assignment

    nb = Assignment(ROOT, A).filled(answers)
    path = folder / "my-work" / A / f"{A}.ipynb"
    nbformat.write(nb, path)
    return path


FORWARD_WITHOUT_SIGMOID = "def forward(X, W, b):\n    return X @ W + b\n"


@pytest.mark.slow
def test_a_fresh_pack_installs_checks_and_its_work_grades_as_expected(pack, tmp_path):
    _, archive = pack
    folder = _fresh_pack(archive, tmp_path / "student")
    done = _make(folder, "install")
    assert done.returncode == 0, done.stdout + done.stderr
    python = folder / ".venv" / "bin" / "python"
    where = subprocess.run([str(python), "-c", "import autograder, sys; print(autograder.__file__)"],
                           cwd=tmp_path, capture_output=True, text=True, env=_student_env())
    assert str(folder / ".venv") in where.stdout, "the pack's autograder is not the one installed"
    # On a fresh pack, `make check` sets up my-work/ itself, and work not started is a report, not an error.
    done = _make(folder, "check")
    assert done.returncode == 0 and "Error" not in done.stderr, done.stdout + done.stderr
    assert (folder / "my-work" / A / f"{A}.ipynb").exists()
    row = " ".join(next(line for line in done.stdout.splitlines() if line.startswith(A)).split())
    assert " public · " in row and " more in hidden tests · graded out of " in row, row
    help_text = subprocess.run([str(folder / ".venv" / "bin" / "autograder"), "--help"], capture_output=True,
                               text=True, env=_student_env()).stdout
    assert "{workspace,check}" in help_text, f"the pack's commands are not just the student's: {help_text}"

    path = _student_work(folder, {"forward": FORWARD_WITHOUT_SIGMOID})
    done = _make(folder, "check", f"NB=my-work/{A}/{A}.ipynb")
    output = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 0 and "Error" not in done.stderr, output  # forward is wrong: reported, not an error
    said = [line for line in done.stdout.splitlines() if not line.startswith("make[")]  # make -w, under make test
    assert " more in hidden tests · graded out of " in said[0], done.stdout
    assert "These are the public tests and their points. More tests run when your instructor grades" in output, output
    public = {line.split()[1]: line.split()[0] for line in done.stdout.splitlines()
              if line.strip()[:1] in ("✔", "✘")}
    # forward is wrong, and so are the exercises that run it.
    assert public == {"init_params": "✔", "forward": "✘", "bce_loss": "✔", "sgd_step": "✔", "train_manual": "✘",
                      "fit_raw_measurements": "✘"}, done.stdout

    # The round trip: the same notebook, handed in and graded in the instructor's course.
    from autograder.grading.pipeline import Options, grade_class

    course = course_copy(tmp_path / "course", A).root
    submissions = tmp_path / "submissions"
    (submissions / "alice").mkdir(parents=True)
    shutil.copy(path, submissions / "alice" / f"{A}.ipynb")
    (submissions / "bob").mkdir()
    nbformat.write(_student_work_nb({}), submissions / "bob" / f"{A}.ipynb")
    result = grade_class(Options(A, submissions, course, jobs=2, timeout=30, progress=False))
    scores = {s.student: (s.score, s.max_score) for s in result.students}
    assert scores["bob"][0] == scores["bob"][1] > 0, scores
    # Grading agrees with the pack's public verdicts: full points exactly where the pack said ✔.
    rows = [row for row in csv.DictReader(open(result.files["exercises"])) if row["student_id"] == "alice"]
    full = {row["exercise"] for row in rows if float(row["points"]) == float(row["max_points"])}
    assert full == {exercise for exercise, mark in public.items() if mark == "✔"}, rows
    assert scores["alice"][0] < scores["alice"][1]


def _student_work_nb(answers: dict[str, str]):
    from autograder.grading.sample import Assignment

    return Assignment(ROOT, A).filled(answers)
