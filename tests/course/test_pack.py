"""The student pack (`autograder pack`): the course without its answers.

- the contents scan: no solution code, no hidden test, no instructor check module;
- the substitution test: nothing the pack's `autograder` defines passes an exercise's hidden checks;
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
from pathlib import Path

import nbformat
import pytest

from autograder import registry
from autograder.pack import INSTRUCTOR_ONLY, PACK_NAME, build_pack, student_package_files
from autograder.results import PASSED
from autograder.runner import run_checks
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


def _fits(candidate, answer) -> bool:
    """Whether ``candidate`` can be called the way the exercise's answer is called."""
    try:
        wanted = [p for p in inspect.signature(answer).parameters.values()
                  if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        inspect.signature(candidate).bind(*[None] * len(wanted))
    except (TypeError, ValueError):
        return False
    return inspect.isclass(candidate) == inspect.isclass(answer)


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_nothing_in_the_pack_passes_an_exercise_in_place_of_its_answer(notebook, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # whatever a candidate writes lands here
    candidates = _pack_definitions()
    namespace = solution_namespace(notebook)
    tried = 0
    for exercise in registry.exercises(notebook):
        for label, candidate in candidates:
            if not _fits(candidate, namespace[exercise]):
                continue
            tried += 1
            try:
                results = run_checks(exercise, {**namespace, exercise: candidate}, hidden=True)
            except SystemExit:  # the command line's entry point, called with an exercise's arguments
                continue
            assert not all(r.status == PASSED for r in results), \
                f"{label} from the student pack passes every check of {exercise}"
    assert tried, "no candidate fitted any exercise: the test would prove nothing"


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
    subprocess.run([str(folder / ".venv" / "bin" / "autograder"), "workspace"], cwd=folder, check=True,
                   capture_output=True, env=_student_env())
    help_text = subprocess.run([str(folder / ".venv" / "bin" / "autograder"), "--help"], capture_output=True,
                               text=True, env=_student_env()).stdout
    assert "{workspace,check}" in help_text, f"the pack's commands are not just the student's: {help_text}"

    path = _student_work(folder, {"forward": FORWARD_WITHOUT_SIGMOID})
    done = _make(folder, "check", f"NB=my-work/{A}/{A}.ipynb")
    output = " ".join((done.stdout + done.stderr).split())
    assert done.returncode != 0, output  # forward is wrong
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
