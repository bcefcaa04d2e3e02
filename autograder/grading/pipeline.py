"""Grade a class: discover, collect, autograde, feedback, export, in parallel, resumably.

:func:`grade_class` composes the steps of this package::

    discover.discover      the class's submissions, validated          (discover.py)
    collect.collect        each into nbgrader's submitted/ folder      (collect.py)
    Backend.grade          one submission: tamper scan, nbgrader's autograde
                           (running the notebook with the course's steps,
                           autograder/preprocessors.py), verdicts, feedback:
                           a SubmissionResult                          (backend.py, submission.py)
    report.*               grades.csv, exercises.csv, report.md/json   (report.py)

Where submissions are graded is the backend's business (:mod:`.backend`): here,
by ``jobs`` threads whose kernels are forked from warm servers, each confined
with bubblewrap (:class:`~.backend.LocalBackend`), or on the workers of a Dask
cluster, which record each outcome here, once (:class:`~.cluster.DaskBackend`).
A submission whose grading goes wrong in any way is graded zero with the reason;
the others never notice.

A state file per student remembers what was graded (:mod:`.state`): a re-run
skips students whose files, assignment source, autograder code (checks, runner,
executor, guard, ...) and grading settings are unchanged (``force`` regrades).
"""

from __future__ import annotations

import ast
import logging
import shutil
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import nbformat
from traitlets.config import Config

from autograder import registry
from autograder.cells import grade_ids, test_cell_ids
from autograder.course import Course, CourseError, working_directory
from autograder.grading import nbgrader_steps, report as reporting
from autograder.grading.backend import Backend, BackendError, LocalBackend
from autograder.grading.collect import Collected, collect, placeholder, snapshot_submitted
from autograder.grading.discover import LayoutError, Submission, discover
from autograder.grading.result import SubmissionResult, SubmissionStatus
from autograder.grading.state import States, source_fingerprint
from autograder.grading.submission import Assignment

DEFAULT_MEMORY_LIMIT = 4 * 2**30


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
class ClassResult:
    assignment: str
    out: Path
    students: list[SubmissionResult]
    graded: list[str]  # graded in this run
    resumed: list[str]  # skipped: already graded and unchanged
    seconds: float
    files: dict[str, Path]
    feedback: Path | None = None  # the feedback folder, with <student> for the student's id


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


def backend_for(options: Options, scratch: Path) -> Backend:
    """Where ``options`` say to grade: on a Dask cluster (``scheduler``), else here."""
    if options.scheduler:
        from autograder.grading.cluster import DaskBackend

        return DaskBackend(options.scheduler, options.sandbox, scratch)
    return LocalBackend(options.sandbox, options.memory_limit, scratch)


class _Grader:
    """One run: the assignment, its state files, and the backend that grades each submission."""

    def __init__(self, options: Options, course: Course, out: Path, scratch: Path, backend: Backend):
        self.options, self.course, self.out, self.scratch, self.backend = options, course, out, scratch, backend
        self.assignment = options.assignment
        self.notebook = course.notebook_name(self.assignment)
        self.source = nbformat.read(course.source_notebook(self.assignment), as_version=4)
        self.timeout = course.config.Execute.get("timeout", 30)  # nbgrader's default when not configured
        self.source_fp = source_fingerprint(
            course, self.assignment, {"timeout": self.timeout, "memory_limit": options.memory_limit,
                                      "sandbox": options.sandbox})
        self.states = States(out / "state")

    def open(self, todo: int) -> int:
        """Start the backend (the fork servers import while nbgrader registers the assignment); how
        many notebooks to grade at once."""
        preload = _preload(self.source, self.assignment) if self.options.warm_kernels else None
        return self.backend.open(self.course, preload, self.options.jobs, todo)

    @property
    def confinement(self) -> str:
        how = "confined (bwrap)" if self.options.sandbox else "UNCONFINED (--no-sandbox)"
        return f"{how}, {self.backend.where}" if self.backend.where else how

    def register(self) -> None:
        """Record the assignment in the gradebook and tell the backend what grading it needs."""
        released = nbgrader_steps.register_assignment(self.course, self.assignment, self.scratch / "release")
        release = nbformat.read(released, as_version=4)
        # Every check module is imported now, before the grading threads start (verdicts look up
        # exercises across the course): an import in a thread parses with ast under pytest's assertion
        # rewriting, which can race with another thread's parse (see cells.parse_source).
        for exercise in registry.exercises(self.assignment):
            registry.checks_of(exercise)
        self.spec = Assignment(self.assignment, self.notebook, self.source, release, frozenset(grade_ids(self.source)),
                               frozenset(test_cell_ids(self.source)), nbgrader_steps.hidden_lines(self.source, release),
                               self.timeout, self.options.memory_limit)
        self.backend.share(self.spec)

    def up_to_date(self, submission: Submission, fingerprint: str, in_gradebook: set[str]) -> SubmissionResult | None:
        saved = self.states.load(submission.student)
        if saved is None or saved.fingerprint != fingerprint or saved.source != self.source_fp:
            return None
        if submission.student not in in_gradebook or saved.status == SubmissionStatus.FAILED:
            return None
        if not self.course.notebook("autograded", self.assignment, submission.student, name=self.notebook).exists():
            return None
        if saved.feedback and not Path(saved.feedback).exists():
            return None
        return saved

    def grade_one(self, submission: Submission, fingerprint: str) -> SubmissionResult:
        started = time.perf_counter()
        student = submission.student
        dest = self.course.assignment_folder("submitted", self.assignment, student)
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
        result = self.backend.grade(collected)
        result.fingerprint, result.source = fingerprint, self.source_fp
        result.seconds = round(time.perf_counter() - started, 2)
        result.kernel_seconds = round(result.kernel_seconds, 2)
        self.states.save(result)
        return result


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


def _logger(out: Path) -> logging.Logger:
    log = logging.getLogger(f"autograder.grading.{out}")
    log.setLevel(logging.INFO)
    log.propagate = False
    if not log.handlers:
        handler = logging.FileHandler(out / "grading.log", encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
    return log


def grade_class(options: Options, backend: Callable[[Options, Path], Backend] = backend_for) -> ClassResult:
    """Grade ``options.submissions`` for ``options.assignment`` in the nbgrader course ``options.course``,
    on the backend that ``backend(options, scratch)`` makes (by default: here, or on ``options.scheduler``)."""
    root = Path(options.course).resolve()
    options = Options(**{**asdict(options), "submissions": Path(options.submissions).resolve(), "course": root,
                         "out": Path(options.out or root / "exports" / options.assignment).resolve()})
    scratch = Path(tempfile.mkdtemp(prefix="autograder-grade-"))
    chosen = backend(options, scratch)
    try:
        with nbgrader_steps.environment(), working_directory(root), warnings.catch_warnings():  # every path is absolute
            # nbgrader's own noise (SQLAlchemy autoflush notes, nbformat's missing cell ids) is not the instructor's
            warnings.simplefilter("ignore")
            return _grade_class(options, chosen, scratch)
    finally:
        chosen.close()
        shutil.rmtree(scratch, ignore_errors=True)


def _grade_class(options: Options, backend: Backend, scratch: Path) -> ClassResult:
    started = time.perf_counter()
    root, out = options.course, options.out
    problem = backend.problem()  # e.g. kernels cannot be confined: said before anything is written
    if problem:
        raise GradingError(problem)
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
    grader = _Grader(options, course, out, scratch, backend)
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
    results: dict[str, SubmissionResult] = {}
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
        try:
            jobs = max(1, min(grader.open(len(todo)), len(todo)))
            grader.register()
        except (BackendError, CourseError) as error:
            raise GradingError(str(error)) from None
        from tqdm import tqdm

        with tqdm(total=len(todo), unit="notebook", desc=f"grading {options.assignment}",
                  disable=not options.progress, dynamic_ncols=True) as bar, \
                ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(grader.grade_one, sub, fp): sub.student for sub, fp in todo}
            for future in as_completed(futures):
                student = futures[future]
                try:
                    results[student] = future.result()
                except Exception as error:  # a bug of ours must not cost the other students
                    log.exception("grading %s failed", student)
                    results[student] = SubmissionResult.failed(student,
                                                               f"grading failed: {type(error).__name__}: {error}")
                bar.set_postfix_str(student, refresh=False)
                bar.update()
    files = reporting.write_exports(course, options.assignment, out, {**grader.states.everyone(), **results},
                                    grader.confinement)
    return ClassResult(options.assignment, out, [results[s] for s in sorted(results)],
                       graded=sorted(s.student for s, _ in todo), resumed=resumed,
                       seconds=round(time.perf_counter() - started, 1), files=files,
                       feedback=course.assignment_folder("feedback", options.assignment, "<student>"))
