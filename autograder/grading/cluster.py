"""Grading on a Dask cluster, the coordinator's side: workers grade (:mod:`.worker`), the coordinator records.

::

    coordinator (autograder grade --scheduler / --cluster)       a Dask worker, per notebook
    collect into submitted/                                       a private scratch course: the
    Job: the submitted folder (zip), no course path   ───────►    assignment's gradebook entries only,
                                                                  this one submission; nbgrader's
                                                                  autograde with the course's run
                                                                  steps in the worker's confined fork
                                                                  servers, feedback, diagnosis
    Ledger.record, once: autograded/ and feedback/    ◄───────    Outcome: the SubmissionResult, the
      files, the gradebook rows, the state file                   autograded and feedback folders
                                                                  (zip), the gradebook rows

Everything a worker needs travels through Dask: the :class:`~.worker.Context`
(the assignment, the course's configuration, a gradebook holding only the
assignment's definition, the assignment's other source files), sent once to
every worker, and one :class:`~.worker.Job` per submission. What a worker keeps
between notebooks (its kernels, its scratch courses) lives in the run's
:class:`~.worker.GradingPlugin`, set up when the run starts and torn down when
it ends. A worker needs the course's environment (the same autograder and
torch: checked on connection), not its folder: it never sees ``solutions/``,
the gradebook or another student's files, and inside it every kernel is
confined as in local grading (:mod:`.sandbox`).

The gradebook is written only here, once per submission, when its outcome
arrives: a worker that dies mid-notebook costs only time, as Dask runs the task
again elsewhere. After the scheduler's ``allowed-failures`` it gives up
(:class:`~distributed.KilledWorker`); that submission is reported as failed and
graded again by the next run, like any other failed grading.

Doing the nbgrader steps and the feedback on the workers is what lets one
coordinator keep up with many of them: per notebook it only unpacks two
folders and writes a few gradebook rows (``make bench-grade`` measures it).

:class:`DaskBackend` is what the pipeline calls (:mod:`.backend`); it talks to
the workers through a :class:`Cluster`, a Dask client.
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
import threading
from dataclasses import replace
from pathlib import Path

from autograder.cells import is_test_cell
from autograder.course import Course
from autograder.grading.collect import Collected
from autograder.grading.result import SubmissionResult, SubmissionStatus
from autograder.grading.submission import Assignment
from autograder.grading.worker import (
    LOG,
    ClusterError,
    Context,
    GradingPlugin,
    Job,
    Outcome,
    check_worker,
    expected_environment,
    run_job,
    unfitness,
    unzip_into,
    zip_folder,
)

CONNECT_TIMEOUT = 20  # seconds to reach the scheduler
WORKERS_TIMEOUT = 120  # seconds to see a first worker (a LocalCluster's, or a batch job's, may take a while)


def _replace_folder(folder: Path, data: bytes) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    if data:
        unzip_into(data, folder)


def template_gradebook(course: Course, assignment: str, folder: Path) -> bytes:
    """A gradebook holding only ``assignment`` as ``nbgrader generate_assignment`` records it (its
    notebook, graded cells and the source of its locked cells), with the course's due date."""
    from nbgrader.api import Gradebook

    from autograder.grading.nbgrader_steps import gradebook, register_assignment

    folder.mkdir(parents=True, exist_ok=True)
    config = copy.deepcopy(course.config)
    config.CourseDirectory.db_url = f"sqlite:///{folder / 'gradebook.db'}"
    config.CourseDirectory.source_directory = str(course.source)
    register_assignment(Course(folder, config, course.log), assignment, folder / "release")
    course_id = course.coursedir().course_id
    with gradebook(course) as real:
        duedate = real.find_assignment(assignment).duedate
    if duedate is not None:
        with Gradebook(config.CourseDirectory.db_url, course_id) as template:
            template.update_or_create_assignment(assignment, duedate=duedate)
    return (folder / "gradebook.db").read_bytes()


class Cluster:
    """A Dask client for one grading run: on an existing scheduler (``tcp://host:8786``), or on a
    ``LocalCluster`` it starts (``local:N``: N worker processes of one thread each)."""

    def __init__(self, address: str, sandbox: bool, preload: list[str] | None, log=None):
        try:
            from distributed import Client, LocalCluster
        except ImportError as error:  # pragma: no cover - dask is one of the course's pins
            raise ClusterError(f"Dask distributed is not installed ({error})") from None
        self.sandbox, self.log = sandbox, log or LOG
        self.preload = tuple(preload) if preload is not None else None
        self.client = self.local = self.context = self.plugin = None
        try:
            if address.startswith("local:"):
                workers = int(address.split(":", 1)[1])
                if workers < 1:
                    raise ValueError
                # processes, not threads: every worker is its own interpreter, as on a real cluster
                self.local = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                          dashboard_address=None, silence_logs=logging.ERROR)
                address = self.local.scheduler_address
            self.client = Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
            self.client.wait_for_workers(1, timeout=WORKERS_TIMEOUT)
        except ValueError:
            self.close()
            raise ClusterError(f"--cluster takes local:N with N a number of workers, not {address!r}") from None
        except (OSError, TimeoutError) as error:
            self.close()
            raise ClusterError(f"cannot grade on the Dask cluster at {address} ({error or type(error).__name__}): "
                               "is its scheduler running, with at least one worker? (README, \"Grading on a "
                               "cluster\")") from None
        self._verify()

    def _verify(self) -> None:
        """Refuse workers that would grade differently: other checks, another torch, no confinement.
        (A worker that joins later checks itself before its first notebook: see worker.run_job.)"""
        expected = expected_environment()
        unfit = [f"{worker}: {reason}" for worker, found in self.client.run(check_worker, self.sandbox).items()
                 for reason in unfitness(found, expected)]
        if unfit:
            self.close()
            raise ClusterError("workers unfit to grade (every worker needs the course's environment at the same "
                               "commit): " + "; ".join(unfit[:5]))

    @property
    def threads(self) -> int:
        """Notebooks the cluster grades at once now."""
        return sum(self.client.nthreads().values()) or 1

    @property
    def description(self) -> str:
        workers = self.client.nthreads()
        return f"a Dask cluster of {len(workers)} worker{'' if len(workers) == 1 else 's'}"

    def share(self, course: Course, assignment: Assignment, folder: Path) -> None:
        """Send every worker (and any that joins later) what the run's jobs refer to, and the run's
        plugin, which keeps a worker's kernels and scratch courses from one notebook to the next."""
        source = course.assignment_folder("source", assignment.name)
        # a worker puts back test cells from the source: it gets those and nothing else of it (no solution)
        tests = copy.deepcopy(assignment.source)
        tests.cells = [cell for cell in tests.cells if is_test_cell(cell)]
        assignment = replace(assignment, source=tests)
        config = copy.deepcopy(course.config)
        config.CourseDirectory.pop("root", None)  # the course's path means nothing on a worker
        plugin = GradingPlugin()
        context = Context(assignment, config, template_gradebook(course, assignment.name, folder),
                          zip_folder(source, skip=lambda relative: relative.endswith(".ipynb")),
                          self.sandbox, self.preload, tuple(expected_environment().items()), plugin.name)
        self.client.register_plugin(plugin, name=plugin.name)
        self.plugin = plugin.name
        self.context = self.client.scatter(context, broadcast=True, hash=False)

    def grade(self, collected: Collected, submitted: Path) -> Outcome:
        """Grade one collected submission on a worker; never raises for the cluster's troubles."""
        job = Job(collected.student, zip_folder(submitted), collected.placeholder, tuple(collected.notes))
        try:
            # retries: an error on one worker (one that joined unfit, say) is tried once more, maybe elsewhere
            future = self.client.submit(run_job, self.context, job, pure=False, retries=1,
                                        key=f"grade-{collected.student[:40]}-{os.urandom(4).hex()}")
            return future.result()
        except Exception as error:  # KilledWorker, a lost scheduler, a bug of ours on the worker
            from distributed import KilledWorker

            why = (f"every worker that ran it died ({error})" if isinstance(error, KilledWorker)
                   else f"{type(error).__name__}: {error}")
            fault = f"grading failed on the cluster, to be retried by the next run: {why}"
            return Outcome(SubmissionResult.failed(collected.student, fault, collected.notes), lost=why)

    def close(self) -> None:
        client, local, plugin = self.client, self.local, self.plugin
        self.client = self.local = self.plugin = None
        if client is not None:
            if plugin is not None:  # the workers end this run's kernels and sandboxes
                try:
                    client.unregister_worker_plugin(plugin)
                except Exception as error:  # a lost scheduler: its workers end them when they stop
                    self.log.warning("the workers could not be told that grading ended: %s", error)
            client.close()
        if local is not None:
            local.close()


class Ledger:
    """Records outcomes into the course: the autograded and feedback folders, and the gradebook rows,
    through one gradebook session for the whole run (not thread-safe: the backend holds its lock)."""

    def __init__(self, course: Course, assignment: Assignment):
        from nbgrader.api import Gradebook

        from autograder.grading.nbgrader_steps import create_gradebook

        self.course, self.assignment, self._feedback = course, assignment, None
        create_gradebook(course.db_url)
        self.gradebook = Gradebook(course.db_url, course.coursedir().course_id)

    def record(self, student: str, outcome: Outcome) -> SubmissionResult:
        from autograder.grading import nbgrader_steps

        name, notebook = self.assignment.name, self.assignment.notebook
        if outcome.submitted is not None:
            self.course.notebook("submitted", name, student, name=notebook).write_text(outcome.submitted,
                                                                                     encoding="utf-8")
        for level, message in outcome.messages:  # as local grading would have logged them
            self.course.log.log(level, "%s", message)
        result = outcome.result
        if result.status == SubmissionStatus.FAILED:
            return result
        _replace_folder(self.course.assignment_folder("autograded", name, student), outcome.autograded)
        _replace_folder(self.course.assignment_folder("feedback", name, student), outcome.feedback)
        manual = nbgrader_steps.record_rows(self.gradebook, name, notebook, student, outcome.rows)
        self.course.log.info("recorded %s (graded by %s in %.1f s)", student, outcome.worker or "a worker",
                             outcome.seconds)
        if manual and outcome.feedback:
            return self._feedback_with_manual_grades(student, result)
        feedback = nbgrader_steps.feedback_path(self.course, name, notebook, student)
        return replace(result, student=student, feedback=str(feedback) if outcome.feedback else "")

    def _feedback_with_manual_grades(self, student: str, result: SubmissionResult) -> SubmissionResult:
        """A grader's scores and comments from before are in this gradebook, not in the worker's: the
        feedback that shows them is written here, as local grading writes it."""
        from autograder.grading import nbgrader_steps
        from autograder.grading.submission import SubmissionGrader

        if self._feedback is None:
            self._feedback = nbgrader_steps.Feedback(self.course, self.assignment.name)
        grader = SubmissionGrader(self.course, self.assignment, None, None, self._feedback)
        path, problem = grader.feedback_for(student)
        return replace(result, student=student, feedback=path, faults=result.faults + ([problem] if problem else []))

    def close(self) -> None:
        self.gradebook.close()


class DaskBackend:
    """Grades on the workers of a Dask cluster (``address``: ``tcp://host:8786``, or ``local:N`` for a
    LocalCluster started here) and records every outcome here, once. ``workers`` is the Dask client's
    class: :class:`Cluster`, or a stand-in (the benchmark's workers that answer at once)."""

    def __init__(self, address: str, sandbox: bool, scratch: Path, workers: type = Cluster):
        self.address, self.sandbox, self.scratch, self.workers = address, sandbox, scratch, workers
        self.course = self.cluster = self.ledger = self.assignment = None
        self.lock = threading.Lock()  # the ledger's gradebook session is not thread-safe
        self.where = ""

    def problem(self) -> str:
        return ""  # the workers are checked when the cluster connects

    def open(self, course: Course, preload: list[str] | None, jobs: int, todo: int) -> int:
        """Connect to the Dask cluster (or start the local one) and check its workers."""
        self.course = course
        self.cluster = self.workers(self.address, self.sandbox, preload, course.log)
        self.where = f"on {self.cluster.description}"
        # enough notebooks in flight to keep every worker busy, also workers that join later
        # (a waiting thread here costs little: its notebook queues at the scheduler)
        return jobs or max(32, 2 * self.cluster.threads)

    def share(self, assignment: Assignment) -> None:
        self.assignment = assignment
        self.cluster.share(self.course, assignment, self.scratch / "template")
        self.ledger = Ledger(self.course, assignment)

    def grade(self, collected: Collected) -> SubmissionResult:
        """Send the submission to a worker and record what comes back, here, once."""
        submitted = self.course.assignment_folder("submitted", self.assignment.name, collected.student)
        outcome = self.cluster.grade(collected, submitted)
        if outcome.result.status == SubmissionStatus.FAILED and outcome.lost:  # graded again next run
            self.course.log.error("the cluster could not grade %s: %s", collected.student, outcome.lost)
            return outcome.result
        with self.lock:
            return self.ledger.record(collected.student, outcome)

    def close(self) -> None:
        try:
            if self.ledger is not None:
                self.ledger.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()
