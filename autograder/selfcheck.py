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
    # Per exercise, the points of the tests that run only at grading: the release keeps each hidden test
    # cell, its code taken out but its nbgrader metadata (and so its points) intact.
    hidden: dict[str, float] = field(default_factory=dict)

    @property
    def score(self) -> float:
        return sum(e.points for e in self.exercises)

    @property
    def max_score(self) -> float:
        return sum(e.max_points for e in self.exercises)

    @property
    def hidden_score(self) -> float:
        """The points only grading can award (0 where the hidden tests ran here)."""
        return sum(self.hidden.values())

    @property
    def graded_max(self) -> float:
        """What the notebook is graded out of: its public points and its hidden tests' points."""
        return self.max_score + self.hidden_score

    @property
    def checkable(self) -> bool:
        """The check could say something about the notebook (finished or not)."""
        return self.state != UNREADABLE

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
                              found.outside_exercises(), found.notes, notebook_run, withheld=_withheld(notebook_run),
                              hidden=withheld_points(notebook_run.notebook, prepared.assignment))
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


def _points_by_exercise(nb, assignment: str, withheld: bool) -> dict[str, float]:
    """The points of the notebook's test cells per exercise: the withheld ones' or the others'."""
    points: dict[str, float] = {}
    for cell in nb.cells:
        if is_test_cell(cell) and is_withheld_test(cell) == withheld:
            exercise = registry.exercise_of_grade_id(grade_id(cell), assignment)
            points[exercise] = points.get(exercise, 0.0) + float(cell.metadata.nbgrader.get("points", 0))
    return points


def withheld_points(nb, assignment: str) -> dict[str, float]:
    """Per exercise, the points of the test cells whose tests run only at grading."""
    return {exercise: points for exercise, points in _points_by_exercise(nb, assignment, True).items() if points}


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
    nb = _course_notebook(notebook, course)
    points = _points_by_exercise(nb, notebook, False) if nb else {}
    exercises = [ExerciseVerdict(exercise, 0.0, points.get(exercise, 0.0), TODO) for exercise in registry.exercises(notebook)]
    hidden = withheld_points(nb, notebook) if nb else {}
    return NotebookReport(notebook, path, state, exercises, withheld=bool(hidden), hidden=hidden)


def _course_notebook(notebook: str, course: Course | None = None):
    """The course's own copy of the notebook (the source, or the release where there is none), or None."""
    course = course or Course.find()
    source = course.authoritative(notebook) if course else None
    return read_notebook(source) if source else None


def course_points(notebook: str, course: Course | None = None) -> dict[str, float]:
    """The points each exercise is worth here (its tests that run where it is checked), read from the
    course's own copy of the notebook."""
    nb = _course_notebook(notebook, course)
    return _points_by_exercise(nb, notebook, False) if nb else {}


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
    lines = [f"{report.notebook}: {stakes(report) if report.hidden else _plain_score(report)}{where}"]
    width = max((len(e.exercise) for e in report.exercises), default=0)
    scores = [f"{_points(e.points):>2}/{_points(e.max_points)}" for e in report.exercises]
    if report.hidden:  # which exercises carry points that only grading can award, and how many
        scores = [f"{score} public" + (f" · {_points(report.hidden[e.exercise])} more in hidden tests"
                                       if report.hidden.get(e.exercise) else "")
                  for score, e in zip(scores, report.exercises)]
        score_width = max(map(len, scores), default=0)
        scores = [score.ljust(score_width) for score in scores]
    for e, score in zip(report.exercises, scores):
        lines.append((f"  {'✔' if e.passed else '✘'} {e.exercise:<{width}}  {score}"
                      + ("" if e.passed else f"  {_verdict(e)}")).rstrip())
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


def _plain_score(report: NotebookReport) -> str:
    return f"{_points(report.score)} of {_points(report.max_score)} points"


def stakes(report: NotebookReport) -> str:
    """``6/12 public · 7 more in hidden tests · graded out of 19``."""
    return _stakes_text(_stakes_numbers(report.score, report.max_score, report.hidden_score))


def total_stakes(reports: list[NotebookReport]) -> str:
    """The same for a series of notebooks."""
    return _stakes_text(_total_numbers(reports))


def _total_numbers(reports: list[NotebookReport]) -> tuple[str, str, str]:
    return _stakes_numbers(sum(r.score for r in reports), sum(r.max_score for r in reports),
                           sum(r.hidden_score for r in reports))


def _stakes_numbers(score: float, public: float, hidden: float) -> tuple[str, str, str]:
    return f"{_points(score)}/{_points(public)}", _points(hidden), _points(public + hidden)


def _stakes_text(numbers: tuple[str, str, str], widths: tuple[int, int, int] = (0, 0, 0)) -> str:
    """The numbers right-aligned in ``widths``, so that a column of them lines up."""
    (score, hidden, graded), (a, b, c) = numbers, widths
    return f"{score:>{a}} public · {hidden:>{b}} more in hidden tests · graded out of {graded:>{c}}"


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
    """One line per notebook: score, state, and what is left. Where some tests run only at grading, the
    score says what the public tests gave, what the hidden ones hold, and what the notebook is graded out of."""
    hidden = any(r.hidden for r in reports)
    if hidden:
        numbers = [_stakes_numbers(r.score, r.max_score, r.hidden_score) for r in reports] + [_total_numbers(reports)]
        widths = tuple(max(len(row[i]) for row in numbers) for i in range(3))
        scores = [_stakes_text(row, widths) for row in numbers]
    else:
        scores = [f"{_points(r.score)}/{_points(r.max_score)}" for r in reports]
        scores.append(f"{_points(sum(r.score for r in reports))}/{_points(sum(r.max_score for r in reports))}")
    rows = [("notebook", "score", "state", "left to do")]
    rows.extend((r.notebook, score, *_state_and_left(r)) for r, score in zip(reports, scores))
    rows.append(("total", scores[-1], "", ""))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [f"{a:<{widths[0]}}  {b:>{widths[1]}}  {c:<{widths[2]}}  {d}".rstrip() for a, b, c, d in rows]
    if hidden:  # a long score column reads better with its heading over its start
        lines[0] = f"{'notebook':<{widths[0]}}  {'score':<{widths[1]}}  {'state':<{widths[2]}}  left to do"
    table = "\n".join(lines)
    return table + ("\n\n" + _wrap(WITHHELD, "") if any(r.withheld for r in reports) else "")
