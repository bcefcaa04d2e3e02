"""What the course's own tests share: where things are, and the instructor's
solutions loaded as plain Python so a test can swap one of them for a mistake."""

from __future__ import annotations

import contextlib
import functools
import io
import os
import socket
from pathlib import Path
from unittest import mock

import nbformat

from autograder import registry
from autograder.course import Course
from autograder.results import PASSED, CheckResult
from autograder.runner import run_checks

ROOT = Path(__file__).resolve().parent.parent
COURSE = Course.here(ROOT)  # where its folders are, as nbgrader_config.py says
SOLUTIONS = COURSE.source
RELEASE = COURSE.release
NOTEBOOKS = registry.notebooks()


def solution_path(notebook: str) -> Path:
    return COURSE.source_notebook(notebook)


def release_path(notebook: str) -> Path:
    return COURSE.release_notebook(notebook)


def course_copy(where: Path, *assignments: str) -> Course:
    """A throwaway nbgrader course in ``where``: the configuration, source and release of ``assignments``
    (default all), never the real gradebook."""
    return COURSE.copy(where, list(assignments) or None)


def nbgrader_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


@functools.lru_cache(maxsize=None)
def _solution_sources(notebook: str) -> tuple[tuple[str, str], ...]:
    nb = nbformat.read(solution_path(notebook), as_version=4)
    kept = []
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        read_only_code = meta.get("locked") and not meta.get("grade")  # the setup cell and given helpers
        if cell.cell_type == "code" and (read_only_code or meta.get("solution")):
            kept.append((meta["grade_id"], cell.source))
    return tuple(kept)


def solution_namespace(notebook: str, **replacements) -> dict:
    """The notebook's read-only code cells (setup, given helpers) and solution cells,
    run in order in a fresh namespace, then
    ``replacements`` (a learner's alternative or mistaken versions) put over them."""
    namespace: dict = {"__name__": "__main__"}
    for grade_id, source in _solution_sources(notebook):
        exec(compile(source, f"<{notebook}:{grade_id}>", "exec"), namespace)
    namespace.update(replacements)
    return namespace


def case_namespace(notebook: str, exercise: str, name: str) -> dict:
    """The solution's namespace with one case of autograder/cases (a planted mistake or an alternative) in
    place: its answer and the other cells it replaces."""
    from autograder import cases

    found = next(c for c in cases.cases_of(notebook) if c.exercise == exercise and c.name == name)
    return cases.namespace(notebook, {found.exercise: found.code, **found.cells} if found.code else dict(found.cells))


def failures(results: list[CheckResult]) -> list[CheckResult]:
    return [r for r in results if r.status != PASSED]


def assert_accepted(exercise: str, namespace: dict, *, instructor: bool = False, **inputs) -> None:
    """``instructor=True`` runs the instructor checks too, as a hidden test cell does."""
    found = failures(run_checks(exercise, namespace, inputs, hidden=instructor))
    assert not found, "a correct answer was rejected:\n" + "\n".join(f"{r.check}: {r.status} {r.code}: {r.message}" for r in found)


def assert_caught(exercise: str, namespace: dict, code: str, *, instructor: bool = False, **inputs) -> CheckResult:
    """The checks reject the answer, and the first diagnosis is ``code`` (``instructor=True``: with the
    instructor checks run too, as in a hidden test cell)."""
    found = failures(run_checks(exercise, namespace, inputs, hidden=instructor, until_failure=True))
    assert found, f"a mistake expected to be diagnosed as {code!r} passed every check of {exercise}"
    first = found[0]
    assert first.code == code, f"expected the diagnosis {code!r}, got {first.code!r} ({first.status}): {first.message}"
    assert first.message, "a failure must explain itself"
    return first


def planted(notebook: str, folder: Path, **sources: str) -> Path:
    """A copy of the solution notebook in ``folder`` whose solution cells named in
    ``sources`` (by grade id) hold the given code instead: a learner's notebook."""
    nb = nbformat.read(solution_path(notebook), as_version=4)
    found = set()
    for cell in nb.cells:
        grade_id = nbgrader_meta(cell).get("grade_id")
        if grade_id in sources:
            cell.source = sources[grade_id]
            found.add(grade_id)
    assert found == set(sources), f"{notebook} has no cells {sorted(set(sources) - found)}"
    path = Path(folder) / notebook / f"{notebook}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


# --- running `autograder check` as a learner would ------------------------------


def check(*args):
    """Run `autograder check ARGS`; return the exit status, what it printed, and the reports it built."""
    from autograder import selfcheck
    from autograder.cli import main

    reports = []
    original = selfcheck.check_notebook

    def recording(*a, **k):
        reports.append(original(*a, **k))
        return reports[-1]

    out = io.StringIO()
    with mock.patch.object(selfcheck, "check_notebook", recording), contextlib.redirect_stdout(out):
        status = main(["check", *map(str, args)])
    return status, out.getvalue(), reports


def flat(output):
    """The output with its line wrapping undone."""
    return " ".join(output.split())


def exercise_line(output, exercise):
    return next(line for line in output.splitlines() if line.strip().startswith(("✔", "✘"))
                and line.split()[1] == exercise)


def block(output, exercise):
    """The exercise's line and the diagnosis under it."""
    lines = output.splitlines()
    start = lines.index(exercise_line(output, exercise))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith("      ")), len(lines))
    return " ".join(line.strip() for line in lines[start:end])


# --- a real browser (tests/browser/, tests/hub/) ------------------------------------


CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
# Chromium as this machine allows it: headless, and nothing that calls home.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_or_skip():
    """Playwright's sync API, or a skip (a failure under CI) where Debian's Chromium is missing."""
    import pytest

    if not CHROMIUM.exists():
        reason = (f"{CHROMIUM} not found: the browser tests drive Debian's Chromium "
                  "(apt-get install chromium; .ci/run installs it)")
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return pytest.importorskip("playwright.sync_api", reason="playwright is not installed: make install adds it (dev extra)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
