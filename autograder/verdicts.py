"""The one place where a verdict is made: per test cell, then per exercise.

A run of a notebook (a learner's ``autograder check``, ``pytest --nbcheck``,
or a class's ``autograder grade``) ends with executed cells and the results
the checks recorded. :func:`cell_verdicts` scores each test cell with
nbgrader's rule; :func:`exercise_verdicts` sums them up per exercise and
gives each exercise that lost points one :class:`Status` and one diagnosis
:class:`Code` with its message. The front ends only render these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from autograder import cells as nbcells
from autograder.results import ERROR, NOT_IMPLEMENTED, PASSED, SKIPPED, CheckResult

# The errors the executor writes into cells itself, so that nbgrader's rule scores them zero.
TIMEOUT_ERROR = "CellTimeoutError"  # nbclient's name for a cell stopped at the time limit
KERNEL_DIED = "KernelDied"  # written into the cell the kernel died in
NOT_RUN = "NotRun"  # written into every test cell after the kernel died or was shut down
NOT_GRADED = "NotGraded"  # written into every test cell of a submission that cannot be run
INTEGRITY = "AutograderIntegrityError"  # a test cell that showed no error though its checks did not pass
RUN_ERRORS = (TIMEOUT_ERROR, KERNEL_DIED, NOT_RUN, NOT_GRADED, INTEGRITY)


class Status(StrEnum):
    """What became of an exercise, in the learner's words."""

    PASSED = "passed"
    FAILED = "failed"
    RAISED = "your code raised an error"
    TODO = "not written yet"
    NOT_RUN = "not run"


class Code(StrEnum):
    """Diagnosis codes that running a notebook gives. A check's own failure carries the check's code
    (``missing_bias``, ``broadcast_shape``, ...) instead; these are the rest."""

    NOT_IMPLEMENTED = "not_implemented"  # the exercise still raises NotImplementedError (not written yet)
    NOT_DEFINED = "not_defined"  # the name the exercise asks for does not exist
    RAISED = "raised"  # the learner's code raised while it was checked
    KERNEL_STOPPED = "kernel_stopped"  # the test did not run: the kernel died or was shut down earlier
    TIMEOUT = "timeout"  # the test cell ran past the time limit and was stopped
    NOT_GRADED = "not_graded"  # the submission could not be run (unreadable, missing, not this assignment)
    TAMPERED = "tampered"  # the test cell showed no error, but its checks did not record a pass
    OUT_OF_MEMORY = "out_of_memory"  # the test cell ran out of memory
    SYNTAX_ERROR = "syntax_error"  # the test cell could not be parsed
    MISSING = "missing"  # the test cell is not in the graded notebook
    STDERR = "stderr"  # the test cell printed to stderr, which nbgrader scores zero
    PARTIAL = "partial"  # the test cell earned part of its points
    TEST_CELL_FAILED = "test_cell_failed"  # the test cell failed, and no check said why


# A test cell's error, when no check recorded a diagnosis: (status, code).
_BY_ENAME = {
    NOT_RUN: (Status.NOT_RUN, Code.KERNEL_STOPPED), KERNEL_DIED: (Status.NOT_RUN, Code.KERNEL_STOPPED),
    NOT_GRADED: (Status.NOT_RUN, Code.NOT_GRADED), INTEGRITY: (Status.FAILED, Code.TAMPERED),
    TIMEOUT_ERROR: (Status.FAILED, Code.TIMEOUT), "KeyboardInterrupt": (Status.FAILED, Code.TIMEOUT),
    "MemoryError": (Status.FAILED, Code.OUT_OF_MEMORY), "SyntaxError": (Status.FAILED, Code.SYNTAX_ERROR),
    "NameError": (Status.FAILED, Code.NOT_DEFINED),
}
_BY_RESULT = {NOT_IMPLEMENTED: Status.TODO, ERROR: Status.RAISED}


@dataclass
class CellVerdict:
    """One test cell, scored by nbgrader's rule."""

    grade_id: str
    exercise: str | None
    points: float
    max_points: float
    error: str = ""  # ``Ename: evalue`` of its first error output
    results: list[CheckResult] = field(default_factory=list)  # what its checks recorded
    stderr: str = ""  # what it printed to stderr
    index: int | None = None  # its position in the notebook
    present: bool = True  # False: the gradebook knows the cell, the graded notebook lacks it

    @property
    def passed(self) -> bool:
        return self.points == self.max_points


@dataclass
class ExerciseVerdict:
    exercise: str
    points: float
    max_points: float
    status: Status = Status.PASSED
    message: str = ""  # the first diagnosis, empty when the exercise passed
    code: str = ""  # its short, stable name: a Code, or the failing check's own code
    grade_id: str = ""  # the test cell the diagnosis comes from
    cell: str = ""  # where the learner writes the exercise ("cell 7", markdown cells counted)
    cell_error: str = ""  # what that cell itself raised, the likely root cause

    @property
    def passed(self) -> bool:
        return self.status == Status.PASSED

    @property
    def outcome(self) -> str:
        """passed, failed or partial, by points alone (the per-exercise CSV's column)."""
        return "passed" if self.points == self.max_points else "failed" if self.points == 0 else "partial"


def cell_verdicts(nb, records: dict[int, list[CheckResult]] | None = None,
                  points: dict[str, tuple[float, float]] | None = None, exercise_of=lambda gid: None) -> list[CellVerdict]:
    """Every test cell of an executed notebook (``nb``, None when there is none), scored by nbgrader's
    ``determine_grade``; or, where a gradebook holds them, every cell of ``points`` (grade id ->
    (points, maximum)), in the gradebook's order."""
    from nbgrader.utils import determine_grade

    found = {}
    for index, cell in enumerate(nb.cells if nb is not None else []):
        if nbcells.is_test_cell(cell):
            gid = nbcells.grade_id(cell)
            got, most = points[gid] if points and gid in points else determine_grade(cell)
            found[gid] = CellVerdict(gid, exercise_of(gid), float(got or 0.0), float(most), nbcells.error_of(cell),
                                     (records or {}).get(index, []), nbcells.stderr_of(cell), index)
    if points is None:
        return list(found.values())
    return [found.get(gid) or CellVerdict(gid, exercise_of(gid), float(got), float(most), present=False)
            for gid, (got, most) in points.items()]


def diagnose(verdict: CellVerdict) -> tuple[Status, str, str]:
    """Status, code and message of a test cell that lost points."""
    first = next((r for r in verdict.results if r.status not in (PASSED, SKIPPED)), None)
    if first is not None:
        hidden = "hidden tests: " if first.hidden else ""
        return _BY_RESULT.get(first.status, Status.FAILED), first.code or first.status, hidden + (first.message or first.status)
    if not verdict.present:
        return Status.FAILED, Code.MISSING, "the test cell is not in the graded notebook"
    if verdict.error:
        ename, _, evalue = verdict.error.partition(": ")
        status, code = _BY_ENAME.get(ename, (Status.FAILED, Code.TEST_CELL_FAILED))
        if code == Code.TIMEOUT:
            return status, code, evalue.replace("this cell", "the test cell", 1)
        return status, code, evalue if ename in RUN_ERRORS else verdict.error
    if verdict.stderr:
        return Status.FAILED, Code.STDERR, f"the test cell printed to stderr: {verdict.stderr}"
    if verdict.points > 0:
        return Status.FAILED, Code.PARTIAL, "the test cell earned part of its points"
    return Status.FAILED, Code.TEST_CELL_FAILED, "the test cell did not pass."


def exercise_verdicts(nb, verdicts: list[CellVerdict], order: list[str] = ()) -> list[ExerciseVerdict]:
    """The test cells' verdicts summed up per exercise, in ``order`` (then as they appear), each with
    the first diagnosis of a cell that lost points."""
    solution_cells = {nbcells.grade_id(cell): index for index, cell in enumerate(nb.cells)
                      if nbcells.is_solution_cell(cell) and cell.get("cell_type") == "code"}
    names = list(dict.fromkeys([*order, *(v.exercise or v.grade_id for v in verdicts)]))
    found = []
    for name in names:
        mine = [v for v in verdicts if (v.exercise or v.grade_id) == name]
        if not mine:
            continue
        verdict = ExerciseVerdict(name, sum(v.points for v in mine), sum(v.max_points for v in mine))
        if name in solution_cells:
            cell = nb.cells[solution_cells[name]]
            verdict.cell = nbcells.cell_number(solution_cells[name])
            error = nbcells.error_of(cell)
            verdict.cell_error = "" if error.startswith(RUN_ERRORS) else error
        failed = next((v for v in mine if not v.passed), None)
        if failed is not None:
            verdict.status, verdict.code, verdict.message = diagnose(failed)
            verdict.grade_id = failed.grade_id
        if verdict.code == Code.NOT_DEFINED:
            verdict.status, verdict.message = _never_defined(verdict)
        found.append(verdict)
    return found


def _never_defined(verdict: ExerciseVerdict) -> tuple[Status, str]:
    """Every cell ran, so a name that is still missing was never defined: say why."""
    if verdict.cell_error:
        return Status.RAISED, (f"{verdict.cell} raised {verdict.cell_error}, so `{verdict.exercise}` was never "
                               "defined. Fix that error first.")
    where = f" in {verdict.cell}" if verdict.cell else ""
    return Status.FAILED, (f"`{verdict.exercise}` is not defined anywhere in your notebook, though every cell ran. "
                           f"The tests look for exactly this name: did you rename it{where}?")
