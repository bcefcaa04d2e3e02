"""Grading on a Dask cluster: workers grade, the coordinator records.

::

    coordinator (autograder grade --scheduler / --cluster)       a Dask worker, per notebook
    collect into submitted/                                       a private scratch course: the
    Job: the submitted folder (zip), no course path   ───────►    assignment's gradebook entries only,
                                                                  this one submission; nbgrader's
                                                                  autograde with the course's run
                                                                  steps in the worker's confined fork
                                                                  servers, feedback, diagnosis
    Ledger.record, once: autograded/ and feedback/    ◄───────    Outcome: the verdict, the autograded
      files, the gradebook rows, the state file                   and feedback folders (zip), the
                                                                  gradebook rows

Everything a worker needs travels through Dask: the :class:`Context` (the
assignment, the course's configuration, a gradebook holding only the
assignment's definition, the assignment's other source files), sent once to
every worker, and one :class:`Job` per submission. A worker needs the course's
environment (the same autograder and torch: checked on connection), not its
folder: it never sees ``solutions/``, the gradebook or another student's files,
and inside it every kernel is confined as in local grading (:mod:`.sandbox`).

The gradebook is written only here, once per submission, when its outcome
arrives: a worker that dies mid-notebook costs only time, as Dask runs the task
again elsewhere. After the scheduler's ``allowed-failures`` it gives up
(:class:`~distributed.KilledWorker`); that submission is reported as failed and
graded again by the next run, like any other failed grading.

Doing the nbgrader steps and the feedback on the workers is what lets one
coordinator keep up with many of them: per notebook it only unpacks two
folders and writes a few gradebook rows (``make bench-grade`` measures it).
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import os
import shutil
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from traitlets.config import Config

from autograder.cells import is_test_cell
from autograder.grading.collect import Collected
from autograder.grading.submission import Assignment, Graded

CONNECT_TIMEOUT = 20  # seconds to reach the scheduler
WORKERS_TIMEOUT = 120  # seconds to see a first worker (a LocalCluster's, or a batch job's, may take a while)
LOG = logging.getLogger("autograder.grading.worker")


class ClusterError(RuntimeError):
    """The cluster cannot grade as asked (unreachable, workers unfit): nothing was graded."""


@dataclass(frozen=True)
class Context:
    """What every worker needs for one grading run; sent to each worker once."""

    assignment: Assignment
    config: Config  # the course's nbgrader configuration
    gradebook: bytes  # an SQLite gradebook holding the assignment's definition and nothing else
    sources: bytes  # the assignment's source folder without its notebooks (data files), zipped
    sandbox: bool
    preload: tuple[str, ...]
    environment: tuple[tuple[str, str], ...]  # what check_worker must find on a worker (code, torch)


@dataclass(frozen=True)
class Job:
    student: str
    submitted: bytes  # nbgrader's submitted/<student>/<assignment>/, zipped
    placeholder: str  # why the submission could not be graded, when collect wrote a placeholder
    notes: tuple[str, ...]


@dataclass
class Outcome:
    graded: Graded
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


def _replace_folder(folder: Path, data: bytes) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    if data:
        unzip_into(data, folder)


# --- the worker's side -------------------------------------------------------------------

_KERNELS: dict[tuple, tuple] = {}  # (sandbox, preload, memory limit) -> (kernel manager class, fallback, closer, folder)
_SETUP = threading.Lock()
_BOOKKEEPING = threading.Lock()  # nbgrader's steps change the working directory: one at a time per worker
_PLACES = threading.local()
_ENVIRONMENT = contextlib.ExitStack()


def _threads() -> int:
    try:
        from distributed import get_worker

        return max(1, int(get_worker().state.nthreads))
    except (ImportError, ValueError, AttributeError):
        return 1


def _kernels(context: Context) -> tuple:
    """This worker's kernel manager classes: forked from warm servers, one confined server per worker
    thread (each thread grades one notebook at a time), made on first use."""
    from autograder.grading import nbgrader_steps
    from autograder.grading.kernels import kernel_manager_class

    memory = context.assignment.memory_limit
    key = (context.sandbox, context.preload, memory)
    with _SETUP:
        if not _KERNELS:
            _ENVIRONMENT.enter_context(nbgrader_steps.environment())  # for as long as the worker lives
        if key in _KERNELS:
            return _KERNELS[key]
        folder = Path(tempfile.mkdtemp(prefix="autograder-worker-"))
        env = {"NBGRADER_EXECUTION": "autograde"}
        if context.sandbox:
            from autograder.grading.sandbox import Pool

            pool = Pool(folder / "slots", _threads(), list(context.preload))
            made = (kernel_manager_class(None, memory_limit=memory, extra_env=env, pool=pool), None, pool, folder)
        else:
            from autograder.grading.forkserver import ForkServer

            server = ForkServer(list(context.preload))
            settings = dict(memory_limit=memory, log_dir=str(folder), extra_env=env)
            made = (kernel_manager_class(server, **settings), kernel_manager_class(None, **settings), server, folder)
        _KERNELS[key] = made
        return made


def close_kernels() -> None:
    """End this worker's fork servers and their sandboxes (the plugin calls it as the worker stops)."""
    with _SETUP:
        for _, _, closing, folder in _KERNELS.values():
            try:
                closing.close()
            finally:
                shutil.rmtree(folder, ignore_errors=True)
        _KERNELS.clear()
        _ENVIRONMENT.close()


class _Place:
    """A worker thread's scratch course: nbgrader's folders and a gradebook of its own."""

    def __init__(self, context: Context, parent: Path):
        from autograder.grading import nbgrader_steps
        from autograder.grading.course import Course

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
        name = self.context.assignment.name
        for kind in ("submitted", "autograded", "feedback", "source"):
            shutil.rmtree(self.course.folder(kind), ignore_errors=True)
        shutil.rmtree(self.root / "kernels", ignore_errors=True)  # the previous run's check records
        unzip_into(self.context.sources, self.course.folder("source") / name)
        (self.root / "gradebook.db").write_bytes(self.context.gradebook)


class _Collect(logging.Handler):
    def __init__(self, into: list):
        super().__init__()
        self.into = into

    def emit(self, record):
        self.into.append((record.levelno, record.getMessage()))


def _place(context: Context, parent: Path) -> _Place:
    place = getattr(_PLACES, "place", None)
    if place is None or place.context is not context:  # a new run (workers keep one context per run)
        if place is not None:
            shutil.rmtree(place.root, ignore_errors=True)
        place = _PLACES.place = _Place(context, parent)
    place.reset()
    return place


def run_job(context: Context, job: Job) -> Outcome:
    """Grade one submission on this worker, as local grading would, in a scratch course."""
    from autograder.grading import nbgrader_steps
    from autograder.grading.collect import read_problem
    from autograder.grading.submission import SubmissionGrader, grading_engine

    started = time.perf_counter()
    unfit = _unfit(context)
    if unfit:  # a worker that joined after the coordinator checked the others
        raise ClusterError(f"this worker cannot grade: {unfit}")
    kernels, fallback, _, folder = _kernels(context)
    spec, student = context.assignment, job.student
    place = _place(context, folder)
    dest = place.course.folder("submitted") / student / spec.name
    unzip_into(job.submitted, dest)
    notebook = dest / f"{spec.notebook}.ipynb"
    before = notebook.read_bytes()
    nb = None if job.placeholder else read_problem(notebook)[0]
    collected = Collected(student, notebook, job.placeholder, list(job.notes), nb)

    def engine(who: str):
        return grading_engine(spec.timeout, kernels, fallback, _BOOKKEEPING, place.root / "kernels" / who)

    graded = SubmissionGrader(place.course, spec, _BOOKKEEPING, engine, place.feedback).grade(collected)
    outcome = Outcome(graded, worker=_worker_name(), messages=list(place.messages))
    if graded.status != "failed":
        with _BOOKKEEPING:
            outcome.rows = nbgrader_steps.submission_rows(place.course, spec.name, spec.notebook, student)
        outcome.autograded = zip_folder(place.course.folder("autograded") / student / spec.name)
        if graded.feedback:
            outcome.feedback = zip_folder(place.course.folder("feedback") / student / spec.name)
    after = notebook.read_bytes()
    if after != before:
        outcome.submitted = after.decode("utf-8")
    outcome.seconds = round(time.perf_counter() - started, 2)
    return outcome


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


_CHECKED: dict[tuple, str] = {}  # what a coordinator expects -> why this worker is unfit for it ("" when fit)


def _unfit(context: Context) -> str:
    key = (context.sandbox, context.environment)
    if key not in _CHECKED:
        _CHECKED[key] = "; ".join(unfitness(check_worker(context.sandbox), dict(context.environment)))
    return _CHECKED[key]


def expected_environment() -> dict:
    """What makes grades differ between machines: the autograder's code and torch's version."""
    import torch

    from autograder.grading.course import code_fingerprint

    return {"code": code_fingerprint(), "torch": torch.__version__}


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return ""


def _plugin():
    from distributed.diagnostics.plugin import WorkerPlugin

    class GradingKernels(WorkerPlugin):
        """Ends the worker's fork servers (and so their sandboxes) when the worker stops."""

        name = "autograder-kernels"

        def teardown(self, worker):
            close_kernels()

    return GradingKernels()


# --- the coordinator's side ------------------------------------------------------------------


def template_gradebook(course, assignment: str, folder: Path) -> bytes:
    """A gradebook holding only ``assignment`` as ``nbgrader generate_assignment`` records it (its
    notebook, graded cells and the source of its locked cells), with the course's due date."""
    from nbgrader.api import Gradebook

    from autograder.grading.course import Course

    folder.mkdir(parents=True, exist_ok=True)
    config = copy.deepcopy(course.config)
    config.CourseDirectory.db_url = f"sqlite:///{folder / 'gradebook.db'}"
    config.CourseDirectory.source_directory = str(course.folder("source"))
    Course(folder, config, course.log).register_assignment(assignment, folder / "release")
    course_id = course.coursedir().course_id
    with Gradebook(course.db_url, course_id) as real:
        duedate = real.find_assignment(assignment).duedate
    if duedate is not None:
        with Gradebook(config.CourseDirectory.db_url, course_id) as template:
            template.update_or_create_assignment(assignment, duedate=duedate)
    return (folder / "gradebook.db").read_bytes()


class Cluster:
    """A Dask client for one grading run: on an existing scheduler (``tcp://host:8786``), or on a
    ``LocalCluster`` it starts (``local:N``: N worker processes of one thread each)."""

    def __init__(self, address: str, sandbox: bool, preload: list[str], log=None):
        try:
            from distributed import Client, LocalCluster
        except ImportError as error:  # pragma: no cover - dask is one of the course's pins
            raise ClusterError(f"Dask distributed is not installed ({error})") from None
        self.sandbox, self.preload, self.log = sandbox, tuple(preload), log or LOG
        self.client = self.local = self.context = None
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
        self.client.register_plugin(_plugin())

    def _verify(self) -> None:
        """Refuse workers that would grade differently: other checks, another torch, no confinement.
        (A worker that joins later checks itself before its first notebook: see run_job.)"""
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

    def share(self, course, assignment: Assignment, folder: Path) -> None:
        """Send every worker (and any that joins later) what the run's jobs refer to."""
        source = course.folder("source") / assignment.name
        # a worker puts back test cells from the source: it gets those and nothing else of it (no solution)
        tests = copy.deepcopy(assignment.source)
        tests.cells = [cell for cell in tests.cells if is_test_cell(cell)]
        assignment = replace(assignment, source=tests)
        config = copy.deepcopy(course.config)
        config.CourseDirectory.pop("root", None)  # the course's path means nothing on a worker
        context = Context(assignment, config, template_gradebook(course, assignment.name, folder),
                          zip_folder(source, skip=lambda relative: relative.endswith(".ipynb")),
                          self.sandbox, self.preload, tuple(expected_environment().items()))
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
            return Outcome(Graded(0.0, 0.0, "failed", [fault], list(collected.notes), [], [], "", 0.0), lost=why)

    def close(self) -> None:
        client, local = self.client, self.local
        self.client = self.local = None
        if client is not None:
            client.close()
        if local is not None:
            local.close()


class Ledger:
    """Records outcomes into the course: the autograded and feedback folders, and the gradebook rows,
    through one gradebook session for the whole run (not thread-safe: the pipeline holds its lock)."""

    def __init__(self, course, assignment: Assignment):
        from nbgrader.api import Gradebook

        self.course, self.assignment, self._feedback = course, assignment, None
        self.gradebook = Gradebook(course.db_url, course.coursedir().course_id)

    def record(self, student: str, outcome: Outcome) -> Graded:
        from autograder.grading import nbgrader_steps

        name, notebook = self.assignment.name, self.assignment.notebook
        if outcome.submitted is not None:
            (self.course.folder("submitted") / student / name / f"{notebook}.ipynb").write_text(
                outcome.submitted, encoding="utf-8")
        for level, message in outcome.messages:  # as local grading would have logged them
            self.course.log.log(level, "%s", message)
        graded = outcome.graded
        if graded.status == "failed":
            return graded
        _replace_folder(self.course.folder("autograded") / student / name, outcome.autograded)
        _replace_folder(self.course.folder("feedback") / student / name, outcome.feedback)
        if nbgrader_steps.record_rows(self.gradebook, name, notebook, student, outcome.rows) and outcome.feedback:
            return self._feedback_with_manual_grades(student, graded)
        self.course.log.info("recorded %s (graded by %s in %.1f s)", student, outcome.worker or "a worker",
                             outcome.seconds)
        feedback = nbgrader_steps.feedback_path(self.course, name, notebook, student)
        return replace(graded, feedback=str(feedback) if outcome.feedback else "")

    def _feedback_with_manual_grades(self, student: str, graded: Graded) -> Graded:
        """A grader's scores and comments from before are in this gradebook, not in the worker's: the
        feedback that shows them is written here, as local grading writes it."""
        from autograder.grading import nbgrader_steps
        from autograder.grading.submission import SubmissionGrader

        if self._feedback is None:
            self._feedback = nbgrader_steps.Feedback(self.course, self.assignment.name)
        grader = SubmissionGrader(self.course, self.assignment, None, None, self._feedback)
        path, problem = grader.feedback_for(student)
        return replace(graded, feedback=path, faults=graded.faults + ([problem] if problem else []))

    def close(self) -> None:
        self.gradebook.close()
