"""``autograder check``: a learner's own verdict on a notebook, without an instructor.

A notebook runs exactly as nbgrader grades it (:func:`autograder.execute.prepare` and `run`,
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
from autograder.cells import grade_id, is_solution_cell, is_test_cell, is_withheld_test
from autograder.course import Course, CourseError
from autograder.execute import (
    DEFAULT_CELL_TIMEOUT,
    Engine,
    NotebookError,
    NotebookRun,
    prepare,
    read_notebook,
    run,
)
from autograder.faults import find_faults
from autograder.verdicts import ExerciseVerdict, Status, exercise_verdicts

# What became of an exercise (see autograder.verdicts.Status).
DONE, WRONG, RAISED, TODO, NOT_RUN = Status.PASSED, Status.FAILED, Status.RAISED, Status.TODO, Status.NOT_RUN
# What became of a notebook.
CHECKED, NOT_COPIED, NOT_STARTED, UNREADABLE = "checked", "not copied yet", "not started", "could not be checked"


@dataclass
class NotebookReport:
    notebook: str  # the assignment, or the file name when it is not one
    path: Path | None
    state: str
    exercises: list[ExerciseVerdict] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)  # timeouts, a dead kernel, cells that raised (autograder.faults)
    notes: list[str] = field(default_factory=list)  # what costs nothing: warnings
    run: NotebookRun | None = None
    withheld: bool = False  # some tests run only at grading (the student pack has no hidden tests)

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
        return self.state == CHECKED and not self.left and not self.faults


# --- checking -------------------------------------------------------------------


def check_notebook(path: str | os.PathLike, timeout: int = DEFAULT_CELL_TIMEOUT,
                   course: Course | None = None) -> NotebookReport:
    """Run one notebook and report on every exercise; never raises."""
    path = Path(path)
    try:
        prepared = prepare(path, course=course)
        notebook_run = run(prepared, Engine(timeout=timeout))
        found = faults(notebook_run)
        # an exercise's own cell that raised is shown with that exercise
        return NotebookReport(prepared.assignment, path, CHECKED, exercise_reports(notebook_run),
                              found.outside_exercises(), found.notes, notebook_run, withheld=_withheld(notebook_run))
    except NotebookError as error:
        return NotebookReport(path.name, path, UNREADABLE, faults=[str(error)])
    except Exception as error:  # the last guard: a learner never sees a traceback from in here
        return NotebookReport(path.name, path, UNREADABLE,
                              faults=[f"{path}: the notebook could not be run ({type(error).__name__}: {error})."])


def exercise_reports(notebook_run: NotebookRun) -> list[ExerciseVerdict]:
    """The graded cells of a run, summed up per exercise in the course's order. Cells whose tests were
    withheld (they run only at grading) test nothing here, so they neither earn nor count points."""
    cells = notebook_run.notebook.cells
    tested = [v for v in notebook_run.verdicts if v.index is None or not is_withheld_test(cells[v.index])]
    return exercise_verdicts(notebook_run.notebook, tested, registry.exercises(notebook_run.assignment))


def _withheld(notebook_run: NotebookRun) -> bool:
    return any(is_withheld_test(cell) for cell in notebook_run.notebook.cells)


def faults(notebook_run: NotebookRun):
    """What went wrong outside the tests, by the rule grading uses too (:mod:`autograder.faults`)."""
    log = notebook_run.log
    return find_faults(notebook_run.notebook, notebook_run.assignment, notebook_run.faults,
                       log.truncated if log is not None else None)


# --- the workspace ----------------------------------------------------------------


def check_workspace(workspace: Path, timeout: int = DEFAULT_CELL_TIMEOUT, announce=lambda text: None,
                    course: Course | None = None) -> list[NotebookReport]:
    """One report per notebook of the series; only notebooks the learner has worked on are run."""
    course = course or Course.find(workspace)
    reports = []
    for notebook in registry.notebooks():
        path = Path(workspace) / notebook / f"{notebook}.ipynb"
        if not path.exists():
            reports.append(not_started(notebook, path, NOT_COPIED, course))
        elif _untouched(path, notebook, course):
            reports.append(not_started(notebook, path, NOT_STARTED, course))
        else:
            announce(f"checking {path} ...")
            reports.append(check_notebook(path, timeout, course))
    return reports


def not_started(notebook: str, path: Path, state: str, course: Course | None = None) -> NotebookReport:
    """A notebook that did not run: every exercise at zero, out of the points the course gives it."""
    points = course_points(notebook, course)
    exercises = [ExerciseVerdict(exercise, 0.0, points.get(exercise, 0.0), TODO) for exercise in registry.exercises(notebook)]
    return NotebookReport(notebook, path, state, exercises)


def course_points(notebook: str, course: Course | None = None) -> dict[str, float]:
    """The points each exercise is worth, read from the course's own copy of the notebook."""
    course = course or Course.find()
    source = course.authoritative(notebook) if course else None
    points: dict[str, float] = {}
    for cell in read_notebook(source).cells if source else []:
        if is_test_cell(cell) and not is_withheld_test(cell):
            exercise = registry.exercise_of_grade_id(grade_id(cell))
            points[exercise] = points.get(exercise, 0.0) + float(cell.metadata.nbgrader.get("points", 0))
    return points


def _untouched(path: Path, notebook: str, course: Course | None) -> bool:
    """True when every exercise cell still reads as released; an unreadable file counts as touched."""
    if course is None:
        return False
    try:
        mine = _solution_sources(read_notebook(path))
        theirs = _solution_sources(read_notebook(course.release_notebook(notebook)))
    except (NotebookError, CourseError):
        return False  # unreadable: check_notebook will say why
    return mine == theirs


def _solution_sources(nb) -> dict[str, str]:
    return {grade_id(cell): cell.source.strip() for cell in nb.cells if is_solution_cell(cell)}


# --- text for the terminal --------------------------------------------------------


def _points(value: float) -> str:
    return f"{value:g}"


def _wrap(text: str, indent: str, subsequent: str | None = None) -> str:
    return "\n".join(textwrap.fill(line, width=100, initial_indent=indent, subsequent_indent=subsequent or indent)
                     for line in text.splitlines() if line.strip())


def _verdict(exercise: ExerciseVerdict) -> str:
    """``failed: missing_bias (cell 8)``: what happened, the diagnosis code of a wrong answer, and where."""
    code = f": {exercise.code}" if exercise.status == WRONG else ""
    where = f" ({exercise.cell})" if exercise.cell else ""
    return f"{exercise.status}{code}{where}"


def format_notebook(report: NotebookReport) -> str:
    """Every exercise with its points, and for each failure the first diagnosis."""
    where = f" ({report.path})" if report.path else ""
    if report.state != CHECKED:  # the fault names the file
        return "\n".join(_wrap(fault, "✘ ", "  ") for fault in report.faults or [f"{report.path}: {report.state}."])
    lines = [f"{report.notebook}: {_points(report.score)} of {_points(report.max_score)} points{where}"]
    width = max((len(e.exercise) for e in report.exercises), default=0)
    for e in report.exercises:
        lines.append(f"  {'✔' if e.passed else '✘'} {e.exercise:<{width}}  {_points(e.points):>2}/{_points(e.max_points)}"
                     + ("" if e.passed else f"  {_verdict(e)}"))
        if e.cell_error and not e.passed and e.code != "not_defined":
            lines.append(_wrap(f"{e.cell} raised {e.cell_error}", "      "))
        if e.message:
            lines.append(_wrap(e.message, "      "))
    if report.faults:
        lines.append("  Problems while running the notebook:")
        lines.extend(_wrap(fault, "    ! ", "      ") for fault in report.faults)
    if report.notes:
        lines.append("  Notes:")
        lines.extend(_wrap(note, "    - ", "      ") for note in report.notes)
    if report.complete:
        lines.append("  Everything passes" + (" the public tests." if report.withheld else "."))
    elif report.left:
        lines.append(f"  Left to do: {', '.join(report.left)}.")
    if report.withheld:
        lines.append(_wrap(WITHHELD, "  "))
    return "\n".join(lines)


def _state_and_left(report: NotebookReport) -> tuple[str, str]:
    if report.state == NOT_COPIED:
        return report.state, "everything (make lab copies it)"
    if report.state == NOT_STARTED:
        return report.state, "everything"
    if report.state != CHECKED:
        return report.state, report.faults[0] if report.faults else ""
    if report.complete:
        return "done", "-"
    return "in progress", ", ".join(report.left + (["cells that raise or never end"] if report.faults else []))


WITHHELD = ("These are the public tests and their points. More tests run when your instructor grades your "
            "work: the same exercises on inputs you cannot see (other sizes, seeds and values), so code that "
            "passes here can still lose points there.")


def format_table(reports: list[NotebookReport]) -> str:
    """One line per notebook: score, state, and what is left."""
    rows = [("notebook", "score", "state", "left to do")]
    for r in reports:
        rows.append((r.notebook, f"{_points(r.score)}/{_points(r.max_score)}", *_state_and_left(r)))
    total = sum(r.score for r in reports), sum(r.max_score for r in reports)
    rows.append(("total", f"{_points(total[0])}/{_points(total[1])}", "", ""))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    table = "\n".join(f"{a:<{widths[0]}}  {b:>{widths[1]}}  {c:<{widths[2]}}  {d}".rstrip() for a, b, c, d in rows)
    return table + ("\n\n" + _wrap(WITHHELD, "") if any(r.withheld for r in reports) else "")
