"""Grade a class: discover, collect, autograde, feedback, export, in parallel, resumably.

:func:`grade_class` composes the steps of this package::

    layout.discover        the class's submissions, validated          (layout.py)
    collect.collect        each into nbgrader's submitted/ folder      (collect.py)
    SubmissionGrader       one submission: tamper scan, nbgrader's autograde
                           (running the notebook with the course's steps,
                           autograder/preprocessors.py), scores, feedback  (submission.py)
    report.*               grades.csv, exercises.csv, report.md/json   (report.py)

Locally, submissions are graded by ``jobs`` threads. Their kernels are separate
processes forked from a warm server (:mod:`.forkserver`), each thread's server
confined with bubblewrap (:mod:`.sandbox`; ``--no-sandbox``: one unconfined
server), so notebooks run in parallel; nbgrader's bookkeeping (the gradebook is one SQLite file) runs one
submission at a time under a lock, which the engine releases while a
notebook runs (``Engine.while_running``). On a Dask cluster (``scheduler``), each
thread hands its submission to a worker, which runs the same SubmissionGrader in
a scratch course, and records the outcome here, once (:mod:`.cluster`). A
submission whose grading goes wrong in any way is graded zero with the reason;
the others never notice.

A state file per student remembers what was graded: a re-run skips students
whose files, assignment source, autograder code (checks, runner, executor,
guard, ...) and grading settings are unchanged (``force`` regrades).
"""

from __future__ import annotations

import ast
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat
from traitlets.config import Config

from autograder import registry
from autograder.cells import grade_ids, test_cell_ids
from autograder.execute import Engine
from autograder.grading import nbgrader_steps, report as reporting
from autograder.grading.collect import Collected, collect, placeholder, snapshot_submitted
from autograder.grading.course import Course, working_directory
from autograder.grading.layout import LayoutError, Submission, discover
from autograder.grading.submission import Assignment, Graded, SubmissionGrader, grading_engine

DEFAULT_MEMORY_LIMIT = 4 * 2**30
STATE_VERSION = 2  # 2: "reasons" became "faults"


@dataclass
class Options:
    assignment: str
    submissions: Path
    course: Path = Path(".")
    jobs: int = 0  # 0: one per CPU core
    student: str | None = None
    force: bool = False
    timeout: int | None = None  # seconds per cell; None: the course's Execute.timeout
    memory_limit: int | None = DEFAULT_MEMORY_LIMIT  # bytes of address space per kernel; None: unlimited
    out: Path | None = None  # default: <course>/exports/<assignment>
    progress: bool = True
    warm_kernels: bool = True  # fork kernels from a warm server (False: start each one normally)
    sandbox: bool = True  # confine every kernel with bwrap (sandbox.py); False: --no-sandbox
    scheduler: str | None = None  # run the notebooks on this Dask cluster (tcp://host:8786; local:N starts one)


@dataclass
class StudentResult:
    student: str
    score: float
    max_score: float
    status: str  # graded | not graded | failed
    faults: list[str] = field(default_factory=list)  # what went wrong, and so cost points
    notes: list[str] = field(default_factory=list)  # facts that cost nothing
    tamper: list[str] = field(default_factory=list)  # evidence of interfering with grading
    exercises: list[dict] = field(default_factory=list)
    feedback: str = ""
    seconds: float = 0.0  # wall time of this student's grading, kernel included
    kernel_seconds: float = 0.0  # of which the notebook ran in its kernel
    fingerprint: str = ""
    source: str = ""
    state_version: int = STATE_VERSION


@dataclass
class ClassResult:
    assignment: str
    out: Path
    students: list[StudentResult]
    graded: list[str]  # graded in this run
    resumed: list[str]  # skipped: already graded and unchanged
    seconds: float
    files: dict[str, Path]


class GradingError(RuntimeError):
    """The class cannot be graded as asked (bad layout, unknown assignment, ...): nothing was graded."""


def parse_size(text: str) -> int | None:
    """'4G', '512M', '2048' (MiB) or '0'/'none' (no limit) -> bytes or None."""
    text = text.strip().lower()
    if text in ("0", "none", "unlimited", ""):
        return None
    units = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
    if text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(float(text) * 2**20)


def _imports(tree: ast.AST) -> list[str]:
    names = []
    for node in ast.walk(tree):  # every import, also those inside functions (imported on first use)
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
    return names


def _preload(source: nbformat.NotebookNode, assignment: str) -> list[str]:
    """Modules the assignment's notebook imports, directly or through the autograder's own modules
    (whose functions may import, say, scikit-learn on first use), and its checks: the fork server
    imports them once, for every kernel."""
    import importlib.util

    from autograder.grading.tamper import _python

    wanted = ["ipykernel.kernelapp", "autograder", f"autograder.checks.{assignment}"]
    for cell in source.cells:
        if cell.cell_type == "code":
            try:
                wanted.extend(_imports(ast.parse(_python(cell.source))))
            except SyntaxError:
                pass
    modules: list[str] = []
    while wanted:
        name = wanted.pop(0)
        # matplotlib_inline's backend must be imported inside the kernel, where it hooks into IPython
        if name in modules or name.startswith("matplotlib_inline"):
            continue
        modules.append(name)
        if name.split(".")[0] == "autograder":
            try:
                origin = importlib.util.find_spec(name).origin
                wanted.extend(_imports(ast.parse(Path(origin).read_text(encoding="utf-8"))))
            except (ImportError, AttributeError, OSError, SyntaxError, ValueError):
                pass
    return modules


class _Grader:
    def __init__(self, options: Options, course: Course, out: Path, scratch: Path):
        self.options, self.course, self.out, self.scratch = options, course, out, scratch
        self.assignment = options.assignment
        self.notebook = course.notebook_name(self.assignment)
        self.source = nbformat.read(course.source_notebook(self.assignment), as_version=4)
        self.lock = threading.Lock()
        self.timeout = course.config.Execute.get("timeout", 30)  # nbgrader's default when not configured
        self.source_fp = course.source_fingerprint(
            self.assignment, {"timeout": self.timeout, "memory_limit": options.memory_limit,
                              "sandbox": options.sandbox})
        self.states = States(out / "state")
        self.server = self.pool = self.cluster = self.ledger = None
        self.kernel_manager_class = self.fallback_kernel_manager_class = None
        self.confinement = "confined (bwrap)" if options.sandbox else "UNCONFINED (--no-sandbox)"

    # --- set-up -----------------------------------------------------------------

    def register(self) -> None:
        released = self.course.register_assignment(self.assignment, self.scratch / "release")
        release = nbformat.read(released, as_version=4)
        # Every check module is imported now, before the grading threads start (verdicts look up
        # exercises across the course): an import in a thread parses with ast under pytest's assertion
        # rewriting, which can race with another thread's parse (see cells.parse_source).
        for exercise in registry.exercises(self.assignment):
            registry.checks_of(exercise)
        self.spec = Assignment(self.assignment, self.notebook, self.source, release, frozenset(grade_ids(self.source)),
                               frozenset(test_cell_ids(self.source)), nbgrader_steps.hidden_lines(self.source, release),
                               self.timeout, self.options.memory_limit)
        if self.cluster is not None:
            from autograder.grading.cluster import Ledger

            self.cluster.share(self.course, self.spec, self.scratch / "template")
            self.ledger = Ledger(self.course, self.spec)
        else:
            self.grader = SubmissionGrader(self.course, self.spec, self.lock, self.engine,
                                           nbgrader_steps.Feedback(self.course, self.assignment))

    def start_cluster(self) -> None:
        """Connect to the Dask cluster (or start the local one) and check its workers."""
        from autograder.grading.cluster import Cluster

        preload = _preload(self.source, self.assignment) if self.options.warm_kernels else []
        self.cluster = Cluster(self.options.scheduler, self.options.sandbox, preload, self.course.log)
        self.confinement += f", on {self.cluster.description}"

    def start_kernels(self, workers: int = 1) -> None:
        from autograder.grading.kernels import kernel_manager_class

        if self.cluster is not None:  # the workers have their own
            return
        if self.options.sandbox:  # confined kernels: one sandboxed fork server per grading thread
            from autograder.grading.sandbox import Pool

            preload = _preload(self.source, self.assignment) if self.options.warm_kernels else []
            self.pool = Pool(self.scratch / "slots", workers, preload)
            self.kernel_manager_class = kernel_manager_class(
                None, memory_limit=self.options.memory_limit, extra_env={"NBGRADER_EXECUTION": "autograde"},
                pool=self.pool)
            return
        server = None
        if self.options.warm_kernels and hasattr(os, "fork") and hasattr(os, "pidfd_open"):  # Linux
            from autograder.grading.forkserver import ForkServer

            try:
                server = ForkServer(_preload(self.source, self.assignment))
            except Exception as error:  # then every kernel starts the usual way
                self.course.log.warning("the warm kernel server did not start (%s); starting kernels normally", error)
        self.server = server
        settings = dict(memory_limit=self.options.memory_limit, log_dir=str(self.scratch),
                        extra_env={"NBGRADER_EXECUTION": "autograde"})
        self.kernel_manager_class = kernel_manager_class(server, **settings)
        self.fallback_kernel_manager_class = kernel_manager_class(None, **settings) if server else None

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
        if self.pool is not None:
            self.pool.close()
        if self.ledger is not None:
            self.ledger.close()
        if self.cluster is not None:
            self.cluster.close()

    # --- state --------------------------------------------------------------------

    def up_to_date(self, submission: Submission, fingerprint: str, in_gradebook: set[str]) -> StudentResult | None:
        saved = self.states.load(submission.student)
        if saved is None or saved.fingerprint != fingerprint or saved.source != self.source_fp:
            return None
        if submission.student not in in_gradebook or saved.status == "failed":
            return None
        autograded = self.course.folder("autograded") / submission.student / self.assignment / f"{self.notebook}.ipynb"
        if not autograded.exists():
            return None
        if saved.feedback and not Path(saved.feedback).exists():
            return None
        return saved

    # --- one submission -------------------------------------------------------------

    def grade_one(self, submission: Submission, fingerprint: str) -> StudentResult:
        started = time.perf_counter()
        student = submission.student
        dest = self.course.folder("submitted") / student / self.assignment
        try:
            collected = collect(submission, dest, self.notebook, self.spec.release, self.spec.source_ids)
        except Exception as error:  # an unreadable file system entry, ...
            collected = Collected(student, dest / f"{self.notebook}.ipynb",
                                  f"the submission could not be copied ({type(error).__name__}: {error})")
            dest.mkdir(parents=True, exist_ok=True)
            kept = collected.notebook.with_name(collected.notebook.name + ".original")
            if collected.notebook.exists() and not kept.exists():  # graded in place: the student's own file
                shutil.copyfile(collected.notebook, kept)
            nbformat.write(placeholder(self.spec.release, collected.placeholder), collected.notebook)
        if self.cluster is None:
            graded = self.grader.grade(collected)
        else:
            graded = self._grade_on_cluster(collected, dest)
        result = StudentResult(student, **asdict(graded))
        result.fingerprint, result.source = fingerprint, self.source_fp
        result.seconds = round(time.perf_counter() - started, 2)
        result.kernel_seconds = round(result.kernel_seconds, 2)
        self.states.save(result)
        return result

    def _grade_on_cluster(self, collected: Collected, dest: Path) -> Graded:
        """Send the submission to a worker and record what comes back, here, once."""
        outcome = self.cluster.grade(collected, dest)
        if outcome.graded.status == "failed" and outcome.lost:  # the cluster's fault: graded again next run
            self.course.log.error("the cluster could not grade %s: %s", collected.student, outcome.lost)
            return outcome.graded
        with self.lock:
            return self.ledger.record(collected.student, outcome)

    def engine(self, student: str) -> Engine:
        return grading_engine(self.timeout, self.kernel_manager_class, self.fallback_kernel_manager_class, self.lock,
                              self.scratch / "kernels" / student)


def _grading_source(options: Options, course: Course, scratch: Path) -> Path:
    """Where to read the class from. The course's own ``submitted/`` (where ``nbgrader collect``
    puts a class that came through the exchange) is graded in place: from a snapshot, since
    grading writes each submission back there."""
    submitted = course.folder("submitted").resolve()
    path = options.submissions
    if path == submitted:
        return snapshot_submitted(submitted, options.assignment, scratch / "submitted")
    if submitted in path.parents or path in submitted.parents:
        raise LayoutError(f"{path} overlaps the course's {submitted.name}/ folder, which grading writes into: "
                          f"pass {submitted} itself (grading it in place), or a folder outside the course.")
    return path


class States:
    """One JSON file per student in ``folder``: the result of the last grading, to resume from."""

    def __init__(self, folder: Path):
        self.folder = folder

    def path(self, student: str) -> Path:
        return self.folder / f"{student}.json"

    def load(self, student: str) -> StudentResult | None:
        try:
            result = StudentResult(**json.loads(self.path(student).read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None
        return result if result.state_version == STATE_VERSION else None

    def save(self, result: StudentResult) -> None:
        path = self.path(result.student)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(result), indent=1), encoding="utf-8")
        os.replace(tmp, path)

    def everyone(self) -> dict[str, StudentResult]:
        """Every student graded so far (also by earlier runs, e.g. with --student)."""
        found = {}
        for path in sorted(self.folder.glob("*.json")):
            result = self.load(path.stem)
            if result is not None:
                found[path.stem] = result
        return found


def _logger(out: Path) -> logging.Logger:
    log = logging.getLogger(f"autograder.grading.{out}")
    log.setLevel(logging.INFO)
    log.propagate = False
    if not log.handlers:
        handler = logging.FileHandler(out / "grading.log", encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
    return log


def grade_class(options: Options) -> ClassResult:
    """Grade ``options.submissions`` for ``options.assignment`` in the nbgrader course ``options.course``."""
    root = Path(options.course).resolve()
    options = Options(**{**asdict(options), "submissions": Path(options.submissions).resolve(), "course": root,
                         "out": Path(options.out or root / "exports" / options.assignment).resolve()})
    with nbgrader_steps.environment(), working_directory(root), warnings.catch_warnings():  # every path is absolute
        # nbgrader's own noise (SQLAlchemy autoflush notes, nbformat's missing cell ids) is not the instructor's
        warnings.simplefilter("ignore")
        return _grade_class(options)


def _grade_class(options: Options) -> ClassResult:
    started = time.perf_counter()
    from autograder.grading.course import CourseError

    root, out = options.course, options.out
    if options.sandbox and not options.scheduler:  # stop before anything is written when kernels cannot be confined (workers are checked when they connect)
        from autograder.grading.sandbox import problem

        if problem():
            raise GradingError(problem())
    out.mkdir(parents=True, exist_ok=True)
    log = _logger(out)
    overrides = Config()
    if options.timeout is not None:
        overrides.Execute.timeout = int(options.timeout)
    try:
        course = Course.load(root, overrides, log)
        course.source_notebook(options.assignment)
    except CourseError as error:
        raise GradingError(str(error)) from None
    scratch = Path(tempfile.mkdtemp(prefix="autograder-grade-"))
    grader = _Grader(options, course, out, scratch)
    try:
        try:
            source = _grading_source(options, course, scratch)
            submissions = discover(source, options.assignment, grader.notebook, scratch)
        except LayoutError as error:
            raise GradingError(str(error)) from None
        if options.student is not None:
            chosen = [s for s in submissions if s.student == options.student]
            if not chosen:
                raise GradingError(f"no submission of student {options.student!r} in {options.submissions}; found: "
                                   f"{', '.join(s.student for s in submissions[:20])}{' ...' if len(submissions) > 20 else ''}")
            submissions = chosen
        in_gradebook = nbgrader_steps.graded_students(course, options.assignment)
        results: dict[str, StudentResult] = {}
        todo: list[tuple[Submission, str]] = []
        for submission in submissions:
            fingerprint = submission.fingerprint()
            saved = None if options.force else grader.up_to_date(submission, fingerprint, in_gradebook)
            if saved is not None:
                results[submission.student] = saved
            else:
                todo.append((submission, fingerprint))
        resumed = sorted(results)
        if todo:
            if options.scheduler:
                from autograder.grading.cluster import ClusterError

                try:
                    grader.start_cluster()
                except ClusterError as error:
                    raise GradingError(str(error)) from None
                # enough notebooks in flight to keep every worker busy, also workers that join later
                # (a waiting thread here costs little: its notebook queues at the scheduler)
                jobs = options.jobs or max(32, 2 * grader.cluster.threads)
            else:
                jobs = options.jobs or os.cpu_count() or 1
            # the server imports while nbgrader registers the assignment
            grader.start_kernels(max(1, min(jobs, len(todo))))
            try:
                grader.register()
            except CourseError as error:
                raise GradingError(str(error)) from None
            from tqdm import tqdm

            with tqdm(total=len(todo), unit="notebook", desc=f"grading {options.assignment}",
                      disable=not options.progress, dynamic_ncols=True) as bar, \
                    ThreadPoolExecutor(max_workers=max(1, min(jobs, len(todo)))) as pool:
                futures = {pool.submit(grader.grade_one, sub, fp): sub.student for sub, fp in todo}
                for future in as_completed(futures):
                    student = futures[future]
                    try:
                        results[student] = future.result()
                    except Exception as error:  # a bug of ours must not cost the other students
                        log.exception("grading %s failed", student)
                        results[student] = StudentResult(student, 0.0, 0.0, "failed",
                                                         [f"grading failed: {type(error).__name__}: {error}"])
                    bar.set_postfix_str(student, refresh=False)
                    bar.update()
        with grader.lock:
            files = reporting.write_exports(course, options.assignment, out, {**grader.states.everyone(), **results},
                                            grader.confinement)
        return ClassResult(options.assignment, out, [results[s] for s in sorted(results)],
                           graded=sorted(s.student for s, _ in todo), resumed=resumed,
                           seconds=round(time.perf_counter() - started, 1), files=files)
    finally:
        grader.close()
        shutil.rmtree(scratch, ignore_errors=True)
