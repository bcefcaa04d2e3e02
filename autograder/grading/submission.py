"""Grade one collected submission inside an nbgrader course: autograde, score, diagnose, feedback.

The same code grades locally, in the instructor's course, and on a cluster
worker, in a private scratch course that holds only this submission and the
assignment's gradebook entries (:mod:`.cluster`). What it needs to know of the
assignment travels in one :class:`Assignment`. What it finds is made here,
once, right after the notebook ran: one :class:`~.result.SubmissionResult`,
with a verdict per exercise (:mod:`autograder.verdicts`) and what went wrong
besides (:mod:`autograder.faults`, the rule a learner's check uses too).
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from autograder import registry
from autograder.execute import Engine
from autograder.faults import find_faults
from autograder.grading import nbgrader_steps
from autograder.grading.collect import Collected, placeholder
from autograder.grading.result import SubmissionResult, SubmissionStatus
from autograder.grading.tamper import scan_notebook
from autograder.preprocessors import RunLog
from autograder.verdicts import ExerciseVerdict, cell_verdicts, exercise_verdicts


@dataclass
class Assignment:
    """What grading any submission of one assignment needs (picklable: it is sent to every worker)."""

    name: str
    notebook: str  # the notebook's name, without .ipynb
    source: NotebookNode
    release: NotebookNode
    source_ids: frozenset[str]
    test_ids: frozenset[str]
    hidden: list[str]  # lines of hidden tests that feedback must never show
    timeout: int
    memory_limit: int | None


def grading_engine(timeout: int, kernels, fallback, lock: threading.Lock, scratch: Path) -> Engine:
    """How graded notebooks run: in warm, memory-limited (and, unless --no-sandbox, confined) kernels,
    with output limits, handing the bookkeeping lock back while the kernel runs, and three observers:
    a new kernel after a dead one, the guard's evidence, and the judge that decides every test cell in
    this process."""
    from autograder.grading.judge import Judge
    from autograder.grading.recovery import Recovery
    from autograder.grading.watch import Watch

    scratch.mkdir(parents=True, exist_ok=True)
    return Engine(timeout=timeout, kernel_name="", limit_output=True, kernels=kernels, fallback_kernels=fallback,
                  while_running=released(lock), scratch=str(scratch), observers=[Recovery, Watch, Judge],
                  extra_arguments=[])


def released(lock: threading.Lock):
    """A context manager factory that lets go of ``lock`` for as long as it is held (a plain function,
    so that traitlets can take it as a setting)."""

    @contextlib.contextmanager
    def released():
        lock.release()
        try:
            yield
        finally:
            lock.acquire()

    return released


class SubmissionGrader:
    """Grades submissions of ``assignment`` in ``course``. nbgrader's steps run under ``lock`` (they
    share the gradebook and the working directory); ``engine(student)`` says how notebooks run."""

    def __init__(self, course, assignment: Assignment, lock: threading.Lock, engine, feedback):
        self.course, self.assignment, self.lock, self.engine, self.feedback = course, assignment, lock, engine, feedback

    def grade(self, collected: Collected) -> SubmissionResult:
        tamper = scan_notebook(collected.nb, set(self.assignment.test_ids)) if collected.nb is not None else []
        faults: list[str] = []
        log, executed, failed = self._autograde(collected, faults)
        return self._result(collected, log, executed, failed, faults, tamper)

    def _attempt(self, student: str) -> tuple[RunLog, NotebookNode | None, str]:
        """Autograde one student with nbgrader: what the run found, the notebook as it ran, and '' or
        nbgrader's error."""
        with self.lock:
            try:
                return *nbgrader_steps.autograde(self.course, self.assignment.name, student, self.engine(student)), ""
            except Exception as error:
                return RunLog(), None, str(error)

    def _autograde(self, collected: Collected, faults: list[str]) -> tuple[RunLog, NotebookNode | None, bool]:
        """What running the submission found, the notebook as it ran, and whether grading failed altogether."""
        student = collected.student
        log, executed, error = self._attempt(student)
        if error and collected.nb is not None:
            # nbgrader could not put deleted test cells back (their neighbours were deleted too): do it ourselves
            from autograder.execute import restore_test_cells

            self.course.log.warning("retrying %s with test cells restored: %s", student, error)
            nbformat.write(restore_test_cells(collected.nb, self.assignment.source, self.assignment.name),
                           collected.notebook)
            log, executed, error = self._attempt(student)
        if error:
            self.course.log.error("grading %s as zero: %s", student, error)
            reason = f"nbgrader could not grade this notebook ({error.splitlines()[0][:300]})"
            collected.placeholder = reason
            nbformat.write(placeholder(self.assignment.release, reason), collected.notebook)
            log, executed, error = self._attempt(student)
            if error:
                faults.append(f"grading failed: {error}")
                return log, executed, True
        return log, executed, False

    def _result(self, collected: Collected, log: RunLog, executed: NotebookNode | None, failed: bool,
                faults: list[str], tamper: list[str]) -> SubmissionResult:
        student = collected.student
        if failed:
            return SubmissionResult(student, 0.0, 0.0, SubmissionStatus.FAILED, faults, list(collected.notes), tamper,
                                    kernel_seconds=log.seconds)
        name, notebook = self.assignment.name, self.assignment.notebook
        with self.lock:
            score, max_score, cells = nbgrader_steps.gradebook_scores(self.course, name, notebook, student)
            feedback_file, feedback_problem = self.feedback_for(student)
        notes = list(collected.notes)
        if collected.placeholder:
            faults.append(f"not graded: {collected.placeholder}; every test scores zero")
        elif executed is not None:
            found = find_faults(executed, name, log.faults, log.truncated, self.assignment.memory_limit)
            faults.extend(found.faults)
            notes.extend(found.notes)
        if feedback_problem:
            faults.append(feedback_problem)
        tamper = list(tamper)
        tamper.extend(f"{item}; the cell scored zero" for item in log.integrity)
        tamper.extend(log.blocked)  # what the guard refused or found outside test cells (flagged, costs nothing)
        status = SubmissionStatus.NOT_GRADED if collected.placeholder else SubmissionStatus.GRADED
        return SubmissionResult(student, score, max_score, status, faults, notes, tamper,
                                judge_exercises(name, cells, executed, log.records), feedback_file,
                                kernel_seconds=log.seconds, journal=list(log.journal))

    def feedback_for(self, student: str) -> tuple[str, str]:
        """Write the student's feedback with nbgrader (the caller holds the lock): its path or "", and
        what went wrong or ""."""
        try:
            self.feedback(student)
        except Exception as error:
            return "", f"no feedback was written ({error})"
        path = nbgrader_steps.feedback_path(self.course, self.assignment.name, self.assignment.notebook, student)
        if not path.exists():
            return "", "no feedback was written (nbgrader produced no file)"
        shown = nbgrader_steps.leaked(path.read_text(encoding="utf-8"), self.assignment.hidden)
        if shown:
            path.unlink()
            return "", ("feedback withheld: it would have shown hidden tests "
                        f"({shown[0][:60]}); check the course's GenerateFeedback configuration")
        return str(path), ""


def judge_exercises(assignment: str, cells: list, executed: NotebookNode | None,
                    records: dict[int, list]) -> list[ExerciseVerdict]:
    """One verdict per exercise: points and maximum summed over its test cells (as the gradebook holds
    them: ``cells``), and the first diagnosis (see autograder.verdicts)."""
    points = {grade.grade_id: (grade.points, grade.max_points) for grade in cells}
    verdicts = cell_verdicts(executed, records, points, registry.exercise_of_grade_id)
    order = registry.exercises(assignment) if assignment in registry.notebooks() else []
    return exercise_verdicts(executed or NotebookNode(cells=[]), verdicts, order)
