"""After a dead kernel, a new one: a crash costs only the exercise whose cell caused it.

:class:`Recovery` is a run observer (:class:`~autograder.preprocessors.RunObserver`). When the kernel dies
in cell K (``os._exit``, a segfault, running out of memory), a new kernel (in a fresh, emptied sandbox)
runs the code cells before K again for their state (their outputs and results from the first run stay;
test cells are not run again), skips K, and goes on with the rest. If K defines an exercise, that
exercise's tests score zero with the reason; if K is a test cell, that test does (its error says so).
"""

from __future__ import annotations

from nbclient.exceptions import DeadKernelError
from nbformat import NotebookNode

from autograder.cells import check_calls, error_output, grade_id, has_error, is_test_cell
from autograder.grading import tamper
from autograder.preprocessors import RUN_FAILURES, RunCells, RunObserver
from autograder.verdicts import KERNEL_DIED


def exercises_of(nb: NotebookNode) -> set[str]:
    """The exercises the notebook's test cells check."""
    return {call.exercise for cell in nb.cells if is_test_cell(cell) for call in check_calls(cell.source)}


def defined_exercises(cell: NotebookNode, exercises: set[str]) -> set[str]:
    """The exercises a code cell defines: by name, or as the solution cell of that exercise."""
    if cell.cell_type != "code":
        return set()
    return (tamper.defined_names(cell.source) | {grade_id(cell)}) & exercises


class Recovery(RunObserver):
    """A new kernel after a dead one, up to ``max_restarts`` times a run."""

    max_restarts = 3

    def start(self, run: RunCells, nb) -> None:
        self.exercises = exercises_of(nb)
        self.replay: tuple[int, set[int]] | None = None  # (the fatal cell, every cell skipped so far)

    def before_cell(self, run: RunCells, cell, index: int) -> str | None:
        """While resuming: 'skip' (the fatal cells, and test cells already graded), 'quiet' (a cell run
        again for its state; its first outputs stay) or None (run as usual)."""
        if self.replay is None:
            return None
        upto, skipped = self.replay
        if index in skipped or (index < upto and is_test_cell(cell)):
            return "skip"
        if index < upto:
            return "quiet"
        if index > upto:
            self.replay = None  # past the fatal cell: everything from here on is graded as usual
        return None

    def recover(self, run: RunCells, error: DeadKernelError) -> BaseException | None:
        nb = run.nb
        skipped: set[int] = set()
        for _ in range(self.max_restarts):
            fatal = run.running
            if self.replay is not None and fatal < self.replay[0]:
                self.replay = None
                return error  # it died again while replaying: the usual stop
            cell = nb.cells[fatal]
            why = f"the kernel died while running {run.label(fatal)}{run.exit_text()}"
            run.log_.faults.append(f"{why}; a new kernel ran the cells before it again and grading went on without it")
            if not has_error(cell):
                cell.outputs.append(error_output(KERNEL_DIED, why + "; the cells after it were graded with a new kernel."))
            for exercise in defined_exercises(cell, self.exercises):
                run.log_.zeroed.setdefault(exercise, (f"{why}, which defines {exercise}", KERNEL_DIED))
            skipped.add(fatal)
            self.replay = (fatal, skipped)
            try:
                run.run_again()
                self.replay = None
                return None
            except DeadKernelError as again:
                error, nb = again, run.nb
            except RUN_FAILURES as other:  # a timeout, a stuck kernel: the usual stop
                self.replay = None
                return other
        self.replay = None
        return error
