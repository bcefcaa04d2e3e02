"""The student pack: the course as a graded class hands it out, without its answers.

``autograder pack`` (``make student-pack``) writes ``dist/torchnn-student/`` and
``dist/torchnn-student.zip``. The pack holds the released notebooks, a student
README and Makefile with the two commands (open the course, check my work), the
pinned dependencies, the course's Jupyter settings with the instructor's pages
turned off, and a student build of the ``autograder`` package.

The student build is the package less everything that knows an answer or only
serves the instructor: the instructor checks (reference implementations and
hidden data, :mod:`autograder.checks.instructor`), class grading, the release
step and the pytest plugin. What it keeps is tested not to solve any exercise
(``tests/course/test_pack.py``).
"""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

PACK_NAME = "torchnn-student"

PACKAGE_DIR = Path(__file__).resolve().parent

# Parts of the package that never ship, relative to it: they hold answers or serve only instructors.
INSTRUCTOR_ONLY = ("checks/instructor", "cases", "grading", "release.py", "pack.py", "pytest_plugin.py")

# nbgrader's pages for instructors, which a student has no use for (Validate stays).
_STUDENT_LAB_OFF = ("@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment")
_STUDENT_SERVER_OFF = ("nbgrader.server_extensions.formgrader",)


class PackError(RuntimeError):
    pass


def is_instructor_only(relative: Path) -> bool:
    """Whether a file of the package (``relative`` to it) stays with the instructor."""
    text = relative.as_posix()
    return any(text == part or text.startswith(part + "/") for part in INSTRUCTOR_ONLY)


def student_package_files(package_dir: Path = PACKAGE_DIR) -> list[Path]:
    """The package's files that ship to students, relative to the package."""
    files = []
    for path in sorted(package_dir.rglob("*")):
        relative = path.relative_to(package_dir)
        if path.is_file() and "__pycache__" not in relative.parts and not is_instructor_only(relative):
            files.append(relative)
    return files


def build_pack(course_dir: Path, out_dir: Path) -> tuple[Path, Path]:
    """Write the student pack of the course in ``course_dir`` into ``out_dir``; return (folder, zip)."""
    from autograder.course import Course, CourseNotFound

    try:
        course = Course.here(course_dir)
    except CourseNotFound as error:
        raise PackError(str(error)) from None
    course_dir, release = course.root, course.release
    if not release.is_dir() or not any(release.glob("*/*.ipynb")):
        raise PackError(f"{course_dir} has no released notebooks in {release.name}/: run `make release` first.")
    out_dir = Path(out_dir).resolve()
    folder = out_dir / PACK_NAME
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)

    # The same place as in the course: the pack's nbgrader_config.py (a copy of the course's) says where it is.
    shutil.copytree(release, folder / release.relative_to(course_dir), ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    for relative in student_package_files():
        target = folder / "autograder" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PACKAGE_DIR / relative, target)
    # Validate in JupyterLab runs with the same cell time limit and stderr rule as grading.
    shutil.copy2(course_dir / "nbgrader_config.py", folder / "nbgrader_config.py")
    _write_jupyter_config(course_dir / "jupyter-config", folder / "jupyter-config")
    (folder / "pyproject.toml").write_text(_student_pyproject(course_dir / "pyproject.toml"), encoding="utf-8")
    (folder / "Makefile").write_text(STUDENT_MAKEFILE, encoding="utf-8")
    (folder / "README.md").write_text(_student_readme(sorted(p.name for p in release.iterdir() if p.is_dir())),
                                      encoding="utf-8")
    (folder / ".gitignore").write_text("/.venv/\n__pycache__/\n*.egg-info/\n.ipynb_checkpoints/\n/build/\n",
                                       encoding="utf-8")

    archive = out_dir / f"{PACK_NAME}.zip"
    archive.unlink(missing_ok=True)
    shutil.make_archive(str(archive.with_suffix("")), "zip", root_dir=out_dir, base_dir=PACK_NAME)
    return folder, archive


def _write_jupyter_config(source: Path, target: Path) -> None:
    shutil.copytree(source, target)
    page = target / "labconfig" / "page_config.json"
    settings = json.loads(page.read_text(encoding="utf-8"))
    settings.setdefault("disabledExtensions", {}).update({name: True for name in _STUDENT_LAB_OFF})
    page.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    server = target / "jupyter_server_config.json"
    settings = json.loads(server.read_text(encoding="utf-8"))
    extensions = settings.setdefault("ServerApp", {}).setdefault("jpserver_extensions", {})
    extensions.update({name: False for name in _STUDENT_SERVER_OFF})
    server.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    (target / "README.md").write_text(
        "# Jupyter settings for this course\n\n`make lab` reads this folder before your own settings. It turns off\n"
        "nbgrader's pages for instructors (formgrader, assignment creation) and its exchange pages;\n"
        "*Validate* stays. JupyterLab fetches no news and installs no extensions.\n", encoding="utf-8")


# Pins only instructors need: class grading's (its package is not in the pack) and the hub's (make hub).
GRADING_ONLY = ("dask", "distributed", "jupyterhub", "configurable-http-proxy")


def _student_pyproject(course_pyproject: Path) -> str:
    """The course's own pins (one place: its pyproject.toml), for a package named apart from the course's."""
    project = tomllib.loads(course_pyproject.read_text(encoding="utf-8"))["project"]
    pins = "".join(f'    "{pin}",\n' for pin in project["dependencies"] if pin.split("==")[0] not in GRADING_ONLY)
    return f'''[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "torchnn-step-by-step-student"
version = "{project["version"]}"
description = "torch.nn, step by step: the student pack (notebooks and their public checks)"
requires-python = "{project["requires-python"]}"
# The versions the course is graded with.
dependencies = [
{pins}]

[project.scripts]
autograder = "autograder.cli:main"

[tool.setuptools.packages.find]
include = ["autograder*"]
'''


STUDENT_MAKEFILE = """\
# torch.nn, step by step (student pack). Needs Python 3.11+, pip and make: the first run
# creates the virtual environment .venv with the versions your class is graded with.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
PIP_ARGS ?=
LAB_ARGS ?=
export PATH := $(abspath $(BIN)):$(PATH)
export JUPYTER_PREFER_ENV_PATH := 1

.PHONY: help install lab check clean

help:
\t@echo "make lab      set up (first time only) and open the course in JupyterLab, in my-work/"
\t@echo "make check    check your notebooks in my-work/ (one notebook: make check NB=my-work/01_tensors/01_tensors.ipynb)"

install: $(INSTALLED)

$(INSTALLED): pyproject.toml
\t@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "This course needs Python 3.11 or newer; found " + sys.version.split()[0] + ". Run: make PYTHON=python3.11 ...")'
\ttest -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
\t$(BIN)/python -m pip install --quiet --disable-pip-version-check $(PIP_ARGS) .
\t@touch $@

lab: $(INSTALLED)
\t$(BIN)/autograder workspace
\tJUPYTER_CONFIG_PATH="$(CURDIR)/jupyter-config" $(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" --LabApp.default_url=/lab/tree/my-work $(LAB_ARGS)

check: $(INSTALLED)
\t@$(BIN)/autograder check $(NB)

clean:
\trm -rf $(VENV) build *.egg-info
"""


def _student_readme(assignments: list[str]) -> str:
    listing = "\n".join(f"- `my-work/{name}/{name}.ipynb`" for name in assignments)
    return f"""# torch.nn, step by step

Your course pack: Jupyter notebooks that teach PyTorch's `torch.nn` by
refactoring, each with exercises that you fill in and tests that check them.

## Two commands

You need Python 3.11 (or newer), `pip` and `make`; on Windows, use WSL. The
first command sets up a virtual environment in `.venv` with the versions your
class is graded with (a few minutes, once).

```bash
make lab     # open the course in JupyterLab
make check   # check your notebooks, exercise by exercise
```

`make lab` copies the notebooks into `my-work/` (only those you do not have
yet: your copies are never overwritten) and opens JupyterLab there. Work in
those copies:

{listing}

In each notebook, fill in every cell marked `# YOUR CODE HERE` and run the
test cell under it: it prints `✔` when your code passes, or what it found,
what it expected and the likely cause.

`make check NB=my-work/02_manual_model/02_manual_model.ipynb` runs one saved
notebook from top to bottom in a fresh kernel and lists every exercise with its
points; `make check` alone summarises every notebook and draws your progress in
`my-work/progress.png`.

## What the checks here can and cannot tell you

The tests in your notebooks are the public ones. When your instructor grades
your work, more tests run: the same exercises on inputs you cannot see (other
sizes, seeds and values), and comparisons with the expected results. A
notebook that passes here can still lose points there, so write code that
works in general, not only for the notebook's example. The points that
`make check` shows are those of the public tests.

## Handing in

Hand in the notebook files from `my-work/` the way your instructor asks (for
example through your course's website). Keep the file names, and do not edit
or delete the test cells: they are put back before grading anyway.
"""
