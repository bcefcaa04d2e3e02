"""Where a class's notebooks are graded: here (:class:`LocalBackend`) or on Dask workers
(:class:`~.cluster.DaskBackend`), behind one small interface the pipeline calls.

::

    problem()          why it cannot grade at all, before anything is written ("" when it can)
    open(course, preload, jobs, todo)
                       connect, warm kernels up (while nbgrader registers the assignment);
                       returns how many notebooks to keep in flight
    share(assignment)  what grading every submission of the assignment needs
    grade(collected)   one submission, graded; its SubmissionResult, never an exception
                       for the student's doing
    where              where student code runs, for the report ("" here)
    close()

Both grade a submission with the same :class:`~.submission.SubmissionGrader`
in kernels from the same factory (:class:`Kernels`): here in the instructor's
course, on a worker in a scratch course of its own.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Protocol

from autograder.course import Course
from autograder.grading import nbgrader_steps
from autograder.grading.collect import Collected
from autograder.grading.result import SubmissionResult
from autograder.grading.submission import Assignment, SubmissionGrader, grading_engine


class BackendError(RuntimeError):
    """The backend cannot grade as asked (bwrap missing, a cluster unreachable or unfit): nothing was graded."""


class Backend(Protocol):
    where: str

    def problem(self) -> str: ...

    def open(self, course: Course, preload: list[str] | None, jobs: int, todo: int) -> int: ...

    def share(self, assignment: Assignment) -> None: ...

    def grade(self, collected: Collected) -> SubmissionResult: ...

    def close(self) -> None: ...


class Kernels:
    """The kernels one grading process gives its notebooks, made once and closed once: confined, one
    sandboxed fork server per grading thread (``threads``), unless ``sandbox`` is False; then forked
    from one warm server, or started the usual way. ``preload`` (modules the fork servers import once)
    None: cold kernels, for comparison."""

    def __init__(self, sandbox: bool, preload: list[str] | None, memory_limit: int | None, threads: int,
                 log: logging.Logger):
        from autograder.grading.kernels import kernel_manager_class, kernel_threads

        self.folder = Path(tempfile.mkdtemp(prefix="autograder-kernels-"))
        self.server = self.pool = self.fallback = None
        env = {"NBGRADER_EXECUTION": "autograde"}
        if sandbox:
            from autograder.grading.sandbox import Pool

            self.pool = Pool(self.folder / "slots", threads, list(preload or []))
            self.manager = kernel_manager_class(None, memory_limit=memory_limit, threads=kernel_threads(threads),
                                                extra_env=env, pool=self.pool)
            return
        if preload is not None and hasattr(os, "fork") and hasattr(os, "pidfd_open"):  # Linux
            from autograder.grading.forkserver import ForkServer

            try:
                self.server = ForkServer(list(preload))
            except Exception as error:  # then every kernel starts the usual way
                log.warning("the warm kernel server did not start (%s); starting kernels normally", error)
        settings = dict(memory_limit=memory_limit, threads=kernel_threads(threads), log_dir=str(self.folder),
                        extra_env=env)
        self.manager = kernel_manager_class(self.server, **settings)
        self.fallback = kernel_manager_class(None, **settings) if self.server else None

    def close(self) -> None:
        try:
            for closing in (self.server, self.pool):
                if closing is not None:
                    closing.close()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


class LocalBackend:
    """Grades here: ``jobs`` threads, each grading one submission at a time in its own kernel (confined
    in its own sandbox), nbgrader's bookkeeping one submission at a time under a lock that the engine
    lets go of while a notebook runs."""

    where = ""

    def __init__(self, sandbox: bool, memory_limit: int | None, scratch: Path):
        self.sandbox, self.memory_limit, self.scratch = sandbox, memory_limit, scratch
        self.lock = threading.Lock()
        self.course = self.kernels = self.grader = None

    def problem(self) -> str:
        if not self.sandbox:
            return ""
        from autograder.grading.sandbox import problem

        return problem()

    def open(self, course: Course, preload: list[str] | None, jobs: int, todo: int) -> int:
        self.course = course
        jobs = jobs or os.cpu_count() or 1
        self.kernels = Kernels(self.sandbox, preload, self.memory_limit, max(1, min(jobs, todo)), course.log)
        return jobs

    def share(self, assignment: Assignment) -> None:
        def engine(student: str):
            return grading_engine(assignment.timeout, self.kernels.manager, self.kernels.fallback, self.lock,
                                  self.scratch / "kernels" / student)

        self.grader = SubmissionGrader(self.course, assignment, self.lock, engine,
                                       nbgrader_steps.Feedback(self.course, assignment.name))

    def grade(self, collected: Collected) -> SubmissionResult:
        return self.grader.grade(collected)

    def close(self) -> None:
        if self.kernels is not None:
            self.kernels.close()
