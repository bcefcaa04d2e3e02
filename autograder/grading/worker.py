"""Grading on a Dask cluster, a worker's side: one submission at a time per worker thread, in a scratch
course of its own, with the same :class:`~.submission.SubmissionGrader` as local grading; and what
travels between coordinator and worker (:class:`Context`, :class:`Job`, :class:`Outcome`).

What a worker keeps between notebooks of one run (its kernels, each thread's
scratch course, nbgrader's process settings, whether it is fit to grade) lives
in the run's :class:`GradingPlugin`: made by its ``setup`` when the coordinator
registers it (also on workers that join later), ended by its ``teardown`` when
the run ends or the worker stops. The coordinator's side is :mod:`.cluster`.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import os
import secrets
import shutil
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from distributed.diagnostics.plugin import WorkerPlugin
from traitlets.config import Config

from autograder.course import Course
from autograder.grading.backend import BackendError
from autograder.grading.collect import Collected
from autograder.grading.result import SubmissionResult, SubmissionStatus
from autograder.grading.submission import Assignment

LOG = logging.getLogger("autograder.grading.worker")


class ClusterError(BackendError):
    """The cluster cannot grade as asked (unreachable, workers unfit): nothing was graded."""


@dataclass(frozen=True)
class Context:
    """What every worker needs for one grading run; sent to each worker once."""

    assignment: Assignment
    config: Config  # the course's nbgrader configuration
    gradebook: bytes  # an SQLite gradebook holding the assignment's definition and nothing else
    sources: bytes  # the assignment's source folder without its notebooks (data files), zipped
    sandbox: bool
    preload: tuple[str, ...] | None  # what the fork servers import once (None: cold kernels)
    environment: tuple[tuple[str, str], ...]  # what check_worker must find on a worker (code, torch)
    plugin: str  # the name of this run's GradingPlugin on every worker


@dataclass(frozen=True)
class Job:
    student: str
    submitted: bytes  # nbgrader's submitted/<student>/<assignment>/, zipped
    placeholder: str  # why the submission could not be graded, when collect wrote a placeholder
    notes: tuple[str, ...]


@dataclass
class Outcome:
    result: SubmissionResult
    autograded: bytes = b""  # autograded/<student>/<assignment>/, zipped
    feedback: bytes = b""  # feedback/<student>/<assignment>/, zipped ("": none written)
    submitted: str | None = None  # the submitted notebook, when grading rewrote it (restored or placeholder)
    rows: dict | None = None  # what the scratch gradebook recorded (nbgrader_steps.submission_rows)
    lost: str = ""  # why the cluster could not grade it (then nothing is recorded)
    messages: list[tuple[int, str]] = field(default_factory=list)  # nbgrader's log on the worker, for grading.log
    worker: str = ""
    seconds: float = 0.0


# --- folders as bytes ------------------------------------------------------------------


def zip_folder(folder: str | os.PathLike, skip=lambda relative: False) -> bytes:
    """The files under ``folder`` (links left out), zipped with their permissions."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for top, folders, files in os.walk(folder):  # does not enter linked folders
            folders.sort()
            for name in sorted(files):
                path = os.path.join(top, name)
                relative = os.path.relpath(path, folder)
                if not os.path.islink(path) and not skip(relative):
                    archive.write(path, relative)
    return buffer.getvalue()


def unzip_into(data: bytes, folder: str | os.PathLike) -> None:
    """Unpack a :func:`zip_folder` archive into ``folder``, refusing names that would land outside it."""
    root = Path(folder).resolve()
    root.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = archive.infolist()
        for member in members:
            if root not in (root / member.filename).resolve().parents:
                raise ValueError(f"a file in the archive points outside its folder: {member.filename!r}")
        archive.extractall(root)
        for member in members:  # nbgrader makes the autograded notebook read-only: keep it so
            mode = (member.external_attr >> 16) & 0o777
            if mode:
                os.chmod(root / member.filename, mode)


def check_worker(sandbox: bool) -> dict:
    """What the coordinator verifies of each worker before it sends any notebook."""
    problem = ""
    if sandbox:
        from autograder.grading.sandbox import problem as sandbox_problem

        problem = sandbox_problem()
    return {**expected_environment(), "problem": problem}


def unfitness(found: dict, expected: dict) -> list[str]:
    """Why a worker (``check_worker``'s answer) would not grade as the coordinator (``expected``) does."""
    reasons = [f"it cannot confine kernels: {found['problem']}"] if found.get("problem") else []
    for what, label in (("code", "autograder code (checks, runner)"), ("torch", "torch version")):
        if found.get(what) != expected[what]:
            reasons.append(f"it has another {label}: {found.get(what)}, the coordinator {expected[what]}")
    return reasons


def expected_environment() -> dict:
    """What makes grades differ between machines: the autograder's code and torch's version."""
    import torch

    from autograder.grading.state import code_fingerprint

    return {"code": code_fingerprint(), "torch": torch.__version__}


# --- the worker's state and its one job ---------------------------------------------------


class GradingPlugin(WorkerPlugin):
    """One grading run's state on one worker. Only its name travels: the rest is made on the worker."""

    def __init__(self):
        self.name = f"autograder-grading-{secrets.token_hex(4)}"

    def setup(self, worker):
        from autograder.grading import nbgrader_steps

        self.threads = max(1, int(worker.state.nthreads))
        self.address = worker.address
        self.lock = threading.Lock()  # making kernels, checking fitness
        self.bookkeeping = threading.Lock()  # nbgrader's steps change the working directory: one at a time
        self.kernels: dict[tuple, object] = {}  # (sandbox, preload, memory limit) -> backend.Kernels
        self.fitness: dict[tuple, str] = {}  # what the coordinator expects -> why this worker is unfit ("": fit)
        self.places = threading.local()
        self.folder = Path(tempfile.mkdtemp(prefix="autograder-worker-"))
        self.environment = contextlib.ExitStack()
        self.environment.enter_context(nbgrader_steps.environment())  # for as long as the run lasts here

    def teardown(self, worker):
        """End this run's fork servers (and so their sandboxes) and scratch courses."""
        with self.lock:
            try:
                for kernels in self.kernels.values():
                    kernels.close()
            finally:
                self.kernels.clear()
                self.environment.close()
                shutil.rmtree(self.folder, ignore_errors=True)

    def unfit(self, context: Context) -> str:
        key = (context.sandbox, context.environment)
        with self.lock:
            if key not in self.fitness:
                self.fitness[key] = "; ".join(unfitness(check_worker(context.sandbox), dict(context.environment)))
            return self.fitness[key]

    def kernels_for(self, context: Context):
        """This worker's kernels for the run: one confined fork server per worker thread (each thread
        grades one notebook at a time), made on first use."""
        from autograder.grading.backend import Kernels

        key = (context.sandbox, context.preload, context.assignment.memory_limit)
        with self.lock:
            if key not in self.kernels:
                preload = list(context.preload) if context.preload is not None else None
                self.kernels[key] = Kernels(context.sandbox, preload, context.assignment.memory_limit, self.threads,
                                            LOG)
            return self.kernels[key]

    def place(self, context: Context) -> "_Place":
        """This thread's scratch course, emptied of the previous notebook."""
        place = getattr(self.places, "place", None)
        if place is None or place.context is not context:
            if place is not None:
                shutil.rmtree(place.root, ignore_errors=True)
            place = self.places.place = _Place(context, self.folder)
        place.reset()
        return place


class _Place:
    """A worker thread's scratch course: nbgrader's folders and a gradebook of its own."""

    def __init__(self, context: Context, parent: Path):
        from autograder.grading import nbgrader_steps

        self.context = context
        self.root = Path(tempfile.mkdtemp(prefix="course-", dir=parent))
        config = copy.deepcopy(context.config)  # the worker shares the context between its threads
        config.CourseDirectory.root = str(self.root)
        config.CourseDirectory.db_url = f"sqlite:///{self.root / 'gradebook.db'}"
        config.CourseDirectory.source_directory = "source"
        self.messages: list[tuple[int, str]] = []
        log = logging.getLogger(f"{LOG.name}.{id(self)}")  # this thread's: its messages go with its outcome
        log.propagate, log.handlers = False, [_Collect(self.messages)]
        log.setLevel(logging.INFO)
        self.course = Course(self.root, config, log)
        self.feedback = nbgrader_steps.Feedback(self.course, context.assignment.name)

    def reset(self) -> None:
        """Only the assignment in the gradebook, only its source files, no earlier student."""
        self.messages.clear()
        for step in ("submitted", "autograded", "feedback", "source"):
            shutil.rmtree(self.course.folder(step), ignore_errors=True)
        shutil.rmtree(self.root / "kernels", ignore_errors=True)  # the previous notebook's check records
        unzip_into(self.context.sources, self.course.assignment_folder("source", self.context.assignment.name))
        (self.root / "gradebook.db").write_bytes(self.context.gradebook)


class _Collect(logging.Handler):
    def __init__(self, into: list):
        super().__init__()
        self.into = into

    def emit(self, record):
        self.into.append((record.levelno, record.getMessage()))


def run_job(context: Context, job: Job) -> Outcome:
    """Grade one submission on this worker, as local grading would, in a scratch course."""
    from distributed import get_worker

    from autograder.grading import nbgrader_steps
    from autograder.grading.collect import read_problem
    from autograder.grading.submission import SubmissionGrader, grading_engine

    started = time.perf_counter()
    plugin = get_worker().plugins.get(context.plugin)
    if not isinstance(plugin, GradingPlugin):
        raise ClusterError("this worker has not set up grading (its plugin is missing)")
    unfit = plugin.unfit(context)
    if unfit:  # a worker that joined after the coordinator checked the others
        raise ClusterError(f"this worker cannot grade: {unfit}")
    kernels = plugin.kernels_for(context)
    spec, student = context.assignment, job.student
    place = plugin.place(context)
    course = place.course
    notebook = course.notebook("submitted", spec.name, student, name=spec.notebook)
    unzip_into(job.submitted, notebook.parent)
    before = notebook.read_bytes()
    nb = None if job.placeholder else read_problem(notebook)[0]
    collected = Collected(student, notebook, job.placeholder, list(job.notes), nb)

    def engine(who: str):
        return grading_engine(spec.timeout, kernels.manager, kernels.fallback, plugin.bookkeeping,
                              place.root / "kernels" / who)

    result = SubmissionGrader(course, spec, plugin.bookkeeping, engine, place.feedback).grade(collected)
    outcome = Outcome(result, worker=plugin.address, messages=list(place.messages))
    if result.status != SubmissionStatus.FAILED:
        with plugin.bookkeeping:
            outcome.rows = nbgrader_steps.submission_rows(course, spec.name, spec.notebook, student)
        outcome.autograded = zip_folder(course.assignment_folder("autograded", spec.name, student))
        if result.feedback:
            outcome.feedback = zip_folder(course.assignment_folder("feedback", spec.name, student))
    after = notebook.read_bytes()
    if after != before:
        outcome.submitted = after.decode("utf-8")
    outcome.seconds = round(time.perf_counter() - started, 2)
    return outcome
