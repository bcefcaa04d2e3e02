"""``autograder check``: a learner's own verdict on a notebook, without an instructor.

A notebook runs exactly as nbgrader grades it (:func:`autograder.execute.run_notebook`,
test cells and hidden tests restored from the course's source), and its graded
cells are summed up per exercise: points, passed or not, and the first
diagnosis of what is wrong. Without a path, every notebook of the series in the
learner's workspace is summarised; notebooks not copied yet, or never touched,
count as not started and are not run.

Nothing here raises to the learner: a notebook that cannot be read or checked
becomes a report that says why, and the next notebook is checked all the same.
"""

from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from autograder import registry
from autograder.execute import (
    DEFAULT_CELL_TIMEOUT,
    KERNEL_DIED,
    NOT_RUN as CELL_NOT_RUN,
    TIMEOUT_ERROR,
    NotebookError,
    NotebookRun,
    assignment_of,
    cell_label,
    course_source,
    is_test_cell,
    read_notebook,
    run_notebook,
)
from autograder.results import ERROR, NOT_IMPLEMENTED, PASSED, SKIPPED

# What became of an exercise.
DONE, WRONG, RAISED, TODO, NOT_RUN = "passed", "failed", "your code raised an error", "not written yet", "not run"
# What became of a notebook.
CHECKED, NOT_COPIED, NOT_STARTED, UNREADABLE = "checked", "not copied yet", "not started", "could not be checked"

RELEASE_DIR = Path(__file__).resolve().parent.parent / "notebooks"


@dataclass
class ExerciseReport:
    exercise: str
    points: float
    max_points: float
    status: str
    message: str = ""  # the first diagnosis, empty when the exercise passed
    code: str = ""  # its short, stable name (missing_bias, not_implemented, ...)
    cell: str = ""  # where the learner writes the exercise ("cell 7", markdown cells counted)
    cell_error: str = ""  # what that cell itself raised, the likely root cause

    @property
    def passed(self) -> bool:
        return self.status == DONE


@dataclass
class NotebookReport:
    notebook: str  # the assignment, or the file name when it is not one
    path: Path | None
    state: str
    exercises: list[ExerciseReport] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # timeouts, a dead kernel, errors outside test cells
    run: NotebookRun | None = None

    @property
    def score(self) -> float:
        return sum(e.points for e in self.exercises)

    @property
    def max_score(self) -> float:
        return sum(e.max_points for e in self.exercises)

    @property
    def left(self) -> list[str]:
        return [e.exercise for e in self.exercises if not e.passed]

    @property
    def complete(self) -> bool:
        return self.state == CHECKED and not self.left and not self.problems


# --- checking -------------------------------------------------------------------


def check_notebook(path: str | os.PathLike, timeout: int = DEFAULT_CELL_TIMEOUT) -> NotebookReport:
    """Run one notebook and report on every exercise; never raises."""
    path = Path(path)
    try:
        assignment = assignment_of(read_notebook(path), path)
        run = run_notebook(path, source=course_source(assignment), timeout=timeout)
        return NotebookReport(assignment, path, CHECKED, exercise_reports(run), problems(run), run)
    except NotebookError as error:
        return NotebookReport(path.name, path, UNREADABLE, problems=[str(error)])
    except Exception as error:  # the last guard: a learner never sees a traceback from in here
        return NotebookReport(path.name, path, UNREADABLE,
                              problems=[f"{path}: the notebook could not be run ({type(error).__name__}: {error})."])


def exercise_reports(run: NotebookRun) -> list[ExerciseReport]:
    """The graded cells of a run, summed up per exercise in the notebook's order."""
    cells = {cell.get("metadata", {}).get("nbgrader", {}).get("grade_id"): index
             for index, cell in enumerate(run.notebook.cells)}
    reports = []
    for exercise in _in_order(v.exercise for v in run.verdicts):
        verdicts = [v for v in run.verdicts if v.exercise == exercise]
        report = ExerciseReport(exercise, sum(v.points for v in verdicts), sum(v.max_points for v in verdicts), DONE)
        if exercise in cells:
            report.cell = f"cell {cells[exercise] + 1}"
            error = dict(run.cell_errors()).get(cells[exercise], "")
            report.cell_error = "" if error.startswith(_RUN_FAULTS) else error
        failed = next((v for v in verdicts if not v.passed), None)
        if failed is not None:
            report.status, report.message, report.code = _diagnosis(failed)
        if report.code == "not_defined":
            report.status, report.message = _never_defined(report)
        reports.append(report)
    return reports


def _never_defined(report: ExerciseReport) -> tuple[str, str]:
    """Every cell ran, so a name that is still missing was never defined: say why."""
    if report.cell_error:
        return RAISED, (f"{report.cell} raised {report.cell_error}, so `{report.exercise}` was never defined. "
                        "Fix that error first.")
    return WRONG, (f"`{report.exercise}` is not defined anywhere in your notebook, though every cell ran. "
                   f"The tests look for exactly this name: did you rename it{f' in {report.cell}' if report.cell else ''}?")


_RUN_FAULTS = (TIMEOUT_ERROR, KERNEL_DIED)  # reported among the run's faults already


def _diagnosis(verdict) -> tuple[str, str, str]:
    """Status, first message and code of a test cell that lost points."""
    first = next((r for r in verdict.results if r.status not in (PASSED, SKIPPED)), None)
    if first is not None:
        hidden = "hidden tests: " if first.hidden else ""
        status = {NOT_IMPLEMENTED: TODO, ERROR: RAISED}.get(first.status, WRONG)
        return status, hidden + first.message, first.code
    if verdict.error.startswith((CELL_NOT_RUN, KERNEL_DIED)):
        return NOT_RUN, verdict.error.split(": ", 1)[-1], "not_run"
    if verdict.error.startswith(TIMEOUT_ERROR):
        return WRONG, verdict.error.split(": ", 1)[-1].replace("this cell", "the test cell", 1), "timeout"
    return WRONG, verdict.error or "the test cell did not pass.", "test_cell_failed"


def problems(run: NotebookRun) -> list[str]:
    """What went wrong outside the tests: faults of the run, then cells that raised
    (an exercise's own cell is reported with that exercise instead)."""
    exercise_cells = set(registry.exercises(run.assignment))
    found = list(run.faults)
    for index, error in run.cell_errors():
        grade_id = run.notebook.cells[index].get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id not in exercise_cells and not error.startswith(_RUN_FAULTS):
            found.append(f"{cell_label(run.notebook, index)} raised {error}")
    return found


def _in_order(names) -> list[str]:
    return list(dict.fromkeys(name for name in names if name))


# --- the workspace ----------------------------------------------------------------


def check_workspace(workspace: Path, timeout: int = DEFAULT_CELL_TIMEOUT, announce=lambda text: None) -> list[NotebookReport]:
    """One report per notebook of the series; only notebooks the learner has worked on are run."""
    reports = []
    for notebook in registry.notebooks():
        path = Path(workspace) / notebook / f"{notebook}.ipynb"
        if not path.exists():
            reports.append(not_started(notebook, path, NOT_COPIED))
        elif _untouched(path, notebook):
            reports.append(not_started(notebook, path, NOT_STARTED))
        else:
            announce(f"checking {path} ...")
            reports.append(check_notebook(path, timeout))
    return reports


def not_started(notebook: str, path: Path, state: str) -> NotebookReport:
    """A notebook that did not run: every exercise at zero, out of the points the course gives it."""
    points = course_points(notebook)
    exercises = [ExerciseReport(exercise, 0.0, points.get(exercise, 0.0), TODO) for exercise in registry.exercises(notebook)]
    return NotebookReport(notebook, path, state, exercises)


def course_points(notebook: str) -> dict[str, float]:
    """The points each exercise is worth, read from the course's own copy of the notebook."""
    source = course_source(notebook)
    points: dict[str, float] = {}
    for cell in read_notebook(source).cells if source else []:
        if is_test_cell(cell):
            exercise = registry.exercise_of_grade_id(cell.metadata.nbgrader.grade_id)
            points[exercise] = points.get(exercise, 0.0) + float(cell.metadata.nbgrader.get("points", 0))
    return points


def _untouched(path: Path, notebook: str) -> bool:
    """True when every exercise cell still reads as released; an unreadable file counts as touched."""
    release = RELEASE_DIR / notebook / f"{notebook}.ipynb"
    try:
        mine, theirs = _solution_sources(read_notebook(path)), _solution_sources(read_notebook(release))
    except NotebookError:
        return False  # unreadable: check_notebook will say why
    return mine == theirs


def _solution_sources(nb) -> dict[str, str]:
    return {cell.metadata.nbgrader.grade_id: cell.source.strip() for cell in nb.cells
            if cell.get("metadata", {}).get("nbgrader", {}).get("solution")}


# --- text for the terminal --------------------------------------------------------


def _points(value: float) -> str:
    return f"{value:g}"


def _wrap(text: str, indent: str, subsequent: str | None = None) -> str:
    return "\n".join(textwrap.fill(line, width=100, initial_indent=indent, subsequent_indent=subsequent or indent)
                     for line in text.splitlines() if line.strip())


def _verdict(exercise: ExerciseReport) -> str:
    """``failed: missing_bias (cell 8)``: what happened, the diagnosis code of a wrong answer, and where."""
    code = f": {exercise.code}" if exercise.status == WRONG else ""
    where = f" ({exercise.cell})" if exercise.cell else ""
    return f"{exercise.status}{code}{where}"


def format_notebook(report: NotebookReport) -> str:
    """Every exercise with its points, and for each failure the first diagnosis."""
    where = f" ({report.path})" if report.path else ""
    if report.state != CHECKED:  # the problem names the file
        return "\n".join(_wrap(problem, "✘ ", "  ") for problem in report.problems or [f"{report.path}: {report.state}."])
    lines = [f"{report.notebook}: {_points(report.score)} of {_points(report.max_score)} points{where}"]
    width = max((len(e.exercise) for e in report.exercises), default=0)
    for e in report.exercises:
        lines.append(f"  {'✔' if e.passed else '✘'} {e.exercise:<{width}}  {_points(e.points):>2}/{_points(e.max_points)}"
                     + ("" if e.passed else f"  {_verdict(e)}"))
        if e.cell_error and not e.passed and e.code != "not_defined":
            lines.append(_wrap(f"{e.cell} raised {e.cell_error}", "      "))
        if e.message:
            lines.append(_wrap(e.message, "      "))
    if report.problems:
        lines.append("  Problems while running the notebook:")
        lines.extend(_wrap(problem, "    ! ", "      ") for problem in report.problems)
    if report.complete:
        lines.append("  Everything passes.")
    elif report.left:
        lines.append(f"  Left to do: {', '.join(report.left)}.")
    return "\n".join(lines)


def _state_and_left(report: NotebookReport) -> tuple[str, str]:
    if report.state == NOT_COPIED:
        return report.state, "everything (make lab copies it)"
    if report.state == NOT_STARTED:
        return report.state, "everything"
    if report.state != CHECKED:
        return report.state, report.problems[0] if report.problems else ""
    if report.complete:
        return "done", "-"
    return "in progress", ", ".join(report.left + (["cells that raise or never end"] if report.problems else []))


def format_table(reports: list[NotebookReport]) -> str:
    """One line per notebook: score, state, and what is left."""
    rows = [("notebook", "score", "state", "left to do")]
    for r in reports:
        rows.append((r.notebook, f"{_points(r.score)}/{_points(r.max_score)}", *_state_and_left(r)))
    total = sum(r.score for r in reports), sum(r.max_score for r in reports)
    rows.append(("total", f"{_points(total[0])}/{_points(total[1])}", "", ""))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(f"{a:<{widths[0]}}  {b:>{widths[1]}}  {c:<{widths[2]}}  {d}".rstrip() for a, b, c, d in rows)
