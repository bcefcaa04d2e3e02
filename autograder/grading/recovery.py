"""What `autograder grade` does after each cell (issue 12): the guard's findings cost points, and a
dead kernel costs only the exercise that killed it.

Both hook into :class:`~autograder.preprocessors.RunCells` (``guard`` and ``recover``), and keep what
they find in its :class:`~autograder.preprocessors.RunLog`:

- :func:`after_cell` asks the kernel's audit hook (:mod:`.guard`) what it refused while the cell
  ran. In a test cell anything refused scores that test zero (``RunLog.integrity``). In a cell that
  defines an exercise, code built at run time (found by the hook, or by the static scan) scores that
  exercise's tests zero. Elsewhere it is flagged (``RunLog.blocked``). A missing answer means the
  hook was bypassed: also zero.
- :func:`resume` runs when the kernel dies in cell K: a new kernel (in a fresh, emptied sandbox)
  runs the code cells before K again for their state (their outputs and results from the first run
  stay; test cells are not run again), skips K, and goes on with the rest. If K defines an
  exercise, that exercise's tests score zero with the reason; if K is a test cell, that test does.
"""

from __future__ import annotations

import json

from nbclient.exceptions import DeadKernelError
from nbformat import NotebookNode
from nbgrader.preprocessors import Execute

from autograder import registry
from autograder.cells import cell_label, error_output, has_error, is_solution_cell, is_test_cell
from autograder.cells import grade_id as grade_id_of
from autograder.grading import tamper
from autograder.preprocessors import RUN_FAILURES, expected_checks
from autograder.verdicts import INTEGRITY, KERNEL_DIED

REPORT = "__import__('sys').audit('autograder.guard.report', {token!r})"


def exercises_of(nb: NotebookNode) -> set[str]:
    """The exercises the notebook's test cells check."""
    return {exercise for cell in nb.cells if is_test_cell(cell) for exercise, _ in expected_checks(cell.source)}


def defined_exercises(cell: NotebookNode, exercises: set[str]) -> set[str]:
    """The exercises a code cell defines: by name, or as the solution cell of that exercise."""
    if cell.cell_type != "code":
        return set()
    return (tamper.defined_names(cell.source) | {grade_id_of(cell)}) & exercises


def _label(nb: NotebookNode, index: int) -> str:
    return cell_label(nb, index, registry.exercise_of_grade_id)


# --- the guard's findings ----------------------------------------------------------


def start(executor, nb: NotebookNode) -> None:
    """Before the first cell: what the static scan already says costs points."""
    executor._exercises = exercises_of(nb)
    executor._zeroed = {}  # exercise -> why its tests score zero
    executor._dead = set()  # of those, the exercises whose cell killed the kernel (a fault, not tampering)
    executor._replay = None
    for index, cell in enumerate(nb.cells):
        if is_solution_cell(cell) or not is_test_cell(cell):
            for exercise in defined_exercises(cell, executor._exercises):
                found = tamper.runs_unreadable_code(cell.source)
                if found:
                    executor._zeroed.setdefault(
                        exercise, f"{_label(nb, index)}, which defines {exercise}, {found[0].split(': ', 1)[-1]}")


def after_cell(executor, cell: NotebookNode, index: int, mode: str | None = None) -> None:
    """Ask the kernel's audit hook what it refused while ``cell`` ran, and score accordingly."""
    if cell.cell_type != "code" or not cell.source.strip():
        return
    found = _report(executor)
    if not found or mode == "quiet":  # a cell run again for its state was reported on the first time
        return
    log, label = executor._log, _label(executor.nb, index)
    if is_test_cell(cell):
        grade_id = grade_id_of(cell)
        found = list(dict.fromkeys(found))
        why = "; ".join(found[:3]) + (f"; and {len(found) - 3} more" if len(found) > 3 else "")
        log.integrity.append(f"{grade_id}: tampering while this test ran: {why}")
        cell.outputs.append(error_output(INTEGRITY, f"tampering while this test ran ({why}); it scores zero"))
        return
    runtime = [f for f in found if f.startswith(("built code", "loaded code", "built a code"))]
    defined = defined_exercises(cell, executor._exercises)
    for exercise in defined if runtime else ():
        executor._zeroed.setdefault(exercise, f"{label}, which defines {exercise}, {runtime[0]}")
    log.blocked.extend(f"{label}: {what} (refused)" for what in dict.fromkeys(found))


def _report(executor) -> list[str]:
    try:
        reply = executor._silent_reply(REPORT.format(token=executor._token))
    except DeadKernelError:
        raise
    except Exception as error:  # a kernel that no longer answers is handled by nbclient
        return [f"the grading guard did not answer ({type(error).__name__})"]
    if reply.get("status") == "error" and reply.get("ename") == "GuardReport":
        try:
            return list(json.loads(reply.get("evalue", "[]")))
        except ValueError:
            pass
    return ["the grading guard's audit hook did not answer (sys.audit or the kernel was changed)"]


def finish(executor, nb: NotebookNode) -> None:
    """After the last cell: the tests of every exercise that lost its points say why."""
    for index, cell in enumerate(nb.cells):
        if not is_test_cell(cell):
            continue
        for exercise, _ in expected_checks(cell.source):
            why = executor._zeroed.get(exercise)
            if why:
                grade_id = grade_id_of(cell)
                if exercise in executor._dead:  # a fault, which the learner should fix
                    executor._log.faults.append(f"{grade_id} scores zero: {why}")
                    cell.outputs.append(error_output(KERNEL_DIED, f"{why}; the tests of {exercise} score zero"))
                else:
                    executor._log.integrity.append(f"{grade_id}: {why}")
                    cell.outputs.append(error_output(INTEGRITY, f"{why}; the tests of {exercise} score zero"))
                break


# --- a dead kernel ---------------------------------------------------------------------


def resume(executor, resources, km, error: DeadKernelError):
    """Go on after the kernel died in cell ``executor._running``; return (nb, resources, failure),
    failure None when the rest of the notebook ran."""
    nb = executor.nb
    skipped: set[int] = set()
    for _ in range(executor.max_restarts):
        fatal = executor._running
        if executor._replay is not None and fatal < executor._replay[0]:
            executor._replay = None
            return nb, resources, error  # it died again while replaying: the usual stop
        cell = nb.cells[fatal]
        why = f"the kernel died while running {_label(nb, fatal)}{executor._exit_text()}"
        executor._log.faults.append(
            f"{why}; a new kernel ran the cells before it again and grading went on without it")
        if not has_error(cell):
            cell.outputs.append(error_output(KERNEL_DIED, why + "; the cells after it were graded with a new kernel."))
        for exercise in defined_exercises(cell, executor._exercises):
            if exercise not in executor._zeroed:
                executor._zeroed[exercise] = f"{why}, which defines {exercise}"
                executor._dead.add(exercise)
        skipped.add(fatal)
        executor._replay = (fatal, skipped)
        executor._installed, executor._kernel = False, None  # the new kernel: guard it, and read how it ends
        try:
            nb, resources = Execute.preprocess(executor, nb, resources, km)
            executor._replay = None
            return nb, resources, None
        except DeadKernelError as again:
            error, nb = again, executor.nb
        except RUN_FAILURES as other:  # a timeout, a stuck kernel: the usual stop
            executor._replay = None
            return executor.nb, resources, other
    executor._replay = None
    return nb, resources, error


def replaying(executor, cell: NotebookNode, index: int):
    """While resuming: 'skip' (the fatal cells, and test cells already graded), 'quiet' (a cell run
    again for its state; its first outputs stay) or None (run as usual)."""
    replay = getattr(executor, "_replay", None)
    if replay is None:
        return None
    upto, skipped = replay
    if index in skipped or (index < upto and is_test_cell(cell)):
        return "skip"
    if index < upto:
        return "quiet"
    if index > upto:
        executor._replay = None  # past the fatal cell: everything from here on is graded as usual
    return None

