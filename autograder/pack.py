"""The student pack: the course as a graded class hands it out, without its answers.

``autograder pack`` (``make student-pack``) writes ``dist/torchnn-student/`` and
``dist/torchnn-student.zip``. The pack holds the released notebooks, a student
README and Makefile with the two commands (open the course, check my work), the
pinned dependencies, the course's Jupyter settings with the instructor's pages
turned off, and a student build of the ``autograder`` package.

A pack may hold only some of the assignments (``make student-pack ASSIGNMENTS="01 02"``), so
that a class receives each notebook when it is assigned: the notebooks left out, and their
public check modules, are not in it.

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


def student_package_files(package_dir: Path = PACKAGE_DIR, assignments: list[str] | None = None) -> list[Path]:
    """The package's files that ship to students, relative to the package: with ``assignments``, the
    public check modules of those notebooks only (the registry names a notebook by its module)."""
    files = []
    for path in sorted(package_dir.rglob("*")):
        relative = path.relative_to(package_dir)
        if path.is_file() and "__pycache__" not in relative.parts and not is_instructor_only(relative):
            if assignments is not None and _is_check_module(relative) and relative.stem not in assignments:
                continue
            files.append(relative)
    return files


def _is_check_module(relative: Path) -> bool:
    """A notebook's public check module (``checks/02_manual_model.py``), not a shared helper (``checks/_support.py``)."""
    return relative.parent == Path("checks") and relative.suffix == ".py" and not relative.name.startswith("_")


def choose_assignments(available: list[str], wanted: list[str] | None) -> list[str]:
    """The assignments named in ``wanted`` (each by its full name or its number: ``02_manual_model`` or
    ``02``), in the course's order; all of ``available`` when ``wanted`` is empty or None."""
    if not wanted:
        return list(available)
    chosen, unknown = set(), []
    for name in wanted:
        matches = [a for a in available if name == a or name == a.split("_", 1)[0]]
        if len(matches) == 1:
            chosen.update(matches)
        else:
            unknown.append(name)
    if unknown:
        raise PackError(f"no such assignment: {', '.join(unknown)}. The assignments are {', '.join(available)} "
                        "(by number, 01, or in full).")
    return [a for a in available if a in chosen]


def build_pack(course_dir: Path, out_dir: Path, assignments: list[str] | None = None) -> tuple[Path, Path]:
    """Write the student pack of the course in ``course_dir`` into ``out_dir``, with the released
    ``assignments`` (see :func:`choose_assignments`; default all); return (folder, zip)."""
    from autograder.course import Course, CourseNotFound

    try:
        course = Course.here(course_dir)
    except CourseNotFound as error:
        raise PackError(str(error)) from None
    course_dir, release = course.root, course.release
    if not release.is_dir() or not any(release.glob("*/*.ipynb")):
        raise PackError(f"{course_dir} has no released notebooks in {release.name}/: run `make release` first.")
    released = sorted(p.name for p in release.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))
    chosen = choose_assignments(released, assignments)
    out_dir = Path(out_dir).resolve()
    folder = out_dir / PACK_NAME
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)

    # The same place as in the course: the pack's nbgrader_config.py (a copy of the course's) says where it is.
    for assignment in chosen:
        shutil.copytree(release / assignment, folder / release.relative_to(course_dir) / assignment,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    for relative in student_package_files(assignments=chosen):
        target = folder / "autograder" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PACKAGE_DIR / relative, target)
    # Validate in JupyterLab runs with the same cell time limit and stderr rule as grading.
    shutil.copy2(course_dir / "nbgrader_config.py", folder / "nbgrader_config.py")
    _write_jupyter_config(course_dir / "jupyter-config", folder / "jupyter-config")
    (folder / "pyproject.toml").write_text(_student_pyproject(course_dir / "pyproject.toml"), encoding="utf-8")
    (folder / "Makefile").write_text(_student_makefile(chosen[0]), encoding="utf-8")
    (folder / "README.md").write_text(_student_readme(chosen), encoding="utf-8")
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


# JupyterLab stops as root ("Running as root is not recommended. Use --allow-root to bypass."), after a
# screen of log. `make lab` says so first, in one line, before installing anything, and passes
# --allow-root only when asked (a container where root is all there is). The course's Makefile has the same.
LAB_AS_ROOT = """
USER_ID ?= $(shell id -u 2>/dev/null)
ALLOW_ROOT ?=
ifneq ($(filter lab,$(MAKECMDGOALS)),)
ifeq ($(USER_ID)$(ALLOW_ROOT),0)
$(error make lab: JupyterLab will not run as root. Run make lab as your own user, or, in a container where root is all there is, as: make lab ALLOW_ROOT=1)
endif
endif
"""


def _student_makefile(example: str) -> str:
    """The pack's Makefile; ``example`` is the assignment its help names."""
    return STUDENT_MAKEFILE.replace("EXAMPLE", example)


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
\t@echo "make check    check your notebooks in my-work/ (one notebook: make check NB=my-work/EXAMPLE/EXAMPLE.ipynb)"
\t@echo "              STRICT=1: exit with an error status unless everything passes (for scripts)"

install: $(INSTALLED)

$(INSTALLED): pyproject.toml
\t@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "This course needs Python 3.11 or newer; found " + sys.version.split()[0] + ". Run: make PYTHON=python3.11 ...")'
\ttest -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
\t$(BIN)/python -m pip install --quiet --disable-pip-version-check $(PIP_ARGS) .
\t@touch $@
""" + LAB_AS_ROOT + """
lab: $(INSTALLED)
\t$(BIN)/autograder workspace
\tJUPYTER_CONFIG_PATH="$(CURDIR)/jupyter-config" $(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" --LabApp.default_url=/lab/tree/my-work $(if $(ALLOW_ROOT),--allow-root) $(LAB_ARGS)

# Sets up my-work/ first when it is missing; unfinished work is a report, not an error, unless STRICT=1.
check: $(INSTALLED)
\t@$(BIN)/autograder check $(if $(STRICT),--strict) $(NB)

clean:
\trm -rf $(VENV) build *.egg-info
"""


def _student_readme(assignments: list[str]) -> str:
    listing = "\n".join(f"- `my-work/{name}/{name}.ipynb`" for name in assignments)
    example = assignments[0]
    return f"""# torch.nn, step by step

Your course pack: Jupyter notebooks that teach PyTorch's `torch.nn` by
refactoring, each with exercises that you fill in and tests that check them.

## Two commands

You need Python 3.11 (or newer), `pip` and `make`; on Windows, use WSL. The
first command you run sets up a virtual environment in `.venv` with the
versions your class is graded with (a few minutes, once).

```bash
make lab     # open the course in JupyterLab
make check   # check your notebooks, exercise by exercise
```

`make lab`, and `make check` without `NB=`, first copy the notebooks into
`my-work/` (only those you do not have yet: your copies are never
overwritten); `make lab` then opens JupyterLab there. Work in those copies:

{listing}

In each notebook, fill in every cell marked `# YOUR CODE HERE` and run the
test cell under it: it prints `✔` when your code passes, or what it found,
what it expected and the likely cause.

`make check NB=my-work/{example}/{example}.ipynb` runs one saved
notebook from top to bottom in a fresh kernel and lists every exercise with its
points; `make check` alone summarises every notebook and draws your progress in
`my-work/progress.png`. Unfinished work is reported, not treated as an error;
`make check STRICT=1` exits with an error status unless everything passes (for
scripts).

JupyterLab will not run as root. Run `make lab` as your own user; in a
container where root is all there is, `make lab ALLOW_ROOT=1`.

## What the checks here can and cannot tell you

The tests in your notebooks are the public ones. When your instructor grades
your work, more tests run: the same exercises on inputs you cannot see (other
sizes, seeds and values), and comparisons with the expected results. A
notebook that passes here can still lose points there, so write code that
works in general, not only for the notebook's example. `make check` shows the
public points you earned, how many more points the hidden tests hold for each
exercise, and what each notebook is graded out of.

## Handing in

Hand in the notebook files from `my-work/` the way your instructor asks (for
example through your course's website). Keep the file names, and do not edit
or delete the test cells: they are put back before grading anyway.
"""
