"""The nbgrader steps of grading one submission: autograde, feedback, and reading the gradebook.

Each step is nbgrader's own converter, configured from the course, with one
substitution: in autograde, nbgrader's ``Execute`` preprocessor is replaced by the
course's own steps (:meth:`autograder.execute.Engine.preprocessors`: ``RunCells``,
a subclass of ``Execute``, and the steps after it), configured by the grading
:class:`~autograder.execute.Engine`. Sanitizing,
restoring test cells, ``IgnorePattern``, ``LimitOutput``, ``SaveAutoGrades``,
late penalties and the files written are nbgrader's, so the gradebook holds
what ``nbgrader autograde`` would record and formgrader works on it as usual.
"""

from __future__ import annotations

import contextlib
import copy
import html
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from autograder.course import Course, CourseError, working_directory
from autograder.execute import Engine
from autograder.preprocessors import RunLog


class StepFailed(RuntimeError):
    pass


@contextlib.contextmanager
def environment():
    """What nbgrader's steps need of the process while they grade, put back afterwards."""
    import nbgrader.utils

    saved = {key: os.environ.get(key) for key in ("PATH", "NBGRADER_EXECUTION")}
    # nbgrader runs `alembic` by name when it creates a gradebook: it must come from this environment.
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    # nbgrader's autograde sets this around each execution and then deletes it (utils.setenv, which
    # never restores a previous value): with several threads that deletion fails. Set it once for the
    # run instead, and make setenv leave it alone while we grade.
    os.environ["NBGRADER_EXECUTION"] = "autograde"
    original = nbgrader.utils.setenv
    nbgrader.utils.setenv = _setenv_once
    try:
        yield
    finally:
        nbgrader.utils.setenv = original
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def _setenv_once(**settings):
    for key, value in settings.items():
        os.environ[key] = value
    yield


def _with_engine(preprocessors: list, engine: Engine) -> list:
    """nbgrader's autograde steps with its Execute replaced by the engine's steps."""
    from nbgrader.preprocessors import Execute

    steps, swapped = [], False
    for pp in preprocessors:
        name = pp if isinstance(pp, str) else f"{pp.__module__}.{pp.__qualname__}"
        if pp is Execute or name in ("nbgrader.preprocessors.Execute", "nbgrader.preprocessors.execute.Execute"):
            steps.extend(engine.preprocessors())
            swapped = True
        else:
            steps.append(pp)
    if not swapped:
        raise StepFailed("the course's Autograde.autograde_preprocessors has no Execute step to run the notebooks")
    return steps


def _autograde_class():
    from nbgrader.converters import Autograde

    class LoggedAutograde(Autograde):
        """nbgrader's Autograde, keeping what its run produced: the executed notebook and the RunLog its
        steps wrote (nbconvert hands preprocessors a copy of the resources, so the log is taken from
        what comes out)."""

        run_log: RunLog | None = None
        executed: NotebookNode | None = None

        def write_single_notebook(self, output, resources):
            found = resources.get("autograder")
            if isinstance(found, RunLog):
                self.run_log = found
            self.executed = nbformat.reads(output, as_version=4)
            return super().write_single_notebook(output, resources)

    return LoggedAutograde


_AUTOGRADE = []  # the class above, made once, on first use (importing nbgrader's converters takes a while)


def autograde(course: Course, assignment: str, student: str, engine: Engine) -> tuple[RunLog, NotebookNode | None]:
    """``nbgrader autograde ASSIGNMENT --student STUDENT --force``, in this process, with ``engine``
    running the notebook; returns what the run found and the notebook as it ran (None: no notebook ran)."""
    if not _AUTOGRADE:
        _AUTOGRADE.append(_autograde_class())
    coursedir = course.coursedir(assignment_id=assignment, student_id=student)
    config = copy.deepcopy(course.config)  # Config() would share its sections with the course
    config.merge(engine.config())
    converter = _AUTOGRADE[0](coursedir=coursedir, config=config, log=course.log)
    converter.force = True
    converter.create_student = True
    converter.run_log = RunLog()
    converter.autograde_preprocessors = _with_engine(list(converter.autograde_preprocessors), engine)
    with working_directory(course.root):
        try:
            converter.start()
        except Exception as error:  # NbGraderException after nbgrader logged the cause
            raise StepFailed(f"nbgrader autograde failed for {student}: {type(error).__name__}: {error}") from error
    return converter.run_log, converter.executed


def create_gradebook(db_url: str) -> None:
    """Create the gradebook at ``db_url`` if it has no tables yet, exactly as nbgrader's ``Gradebook``
    would (its tables, and the schema's revision in ``alembic_version``). nbgrader finds that revision
    by running ``alembic heads`` in a subprocess, which imports nbgrader again: 3 s for every new
    gradebook. Here nbgrader is loaded already, and alembic reads the same revision in milliseconds."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from nbgrader.api import Base
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(db_url, future=True)
    try:
        if inspect(engine).get_table_names():
            return
        config = Config()
        config.set_main_option("script_location", str(Path(sys.modules["nbgrader"].__file__).parent / "alembic"))
        head = ScriptDirectory.from_config(config).get_current_head()
        Base.metadata.create_all(bind=engine)
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
            connection.execute(text("INSERT INTO alembic_version (version_num) VALUES (:head)"), {"head": head})
    finally:
        engine.dispose()


@contextlib.contextmanager
def gradebook(course: Course):
    """The course's nbgrader gradebook, open (created first if it is new: :func:`create_gradebook`)."""
    from nbgrader.api import Gradebook

    create_gradebook(course.db_url)
    with Gradebook(course.db_url, course.coursedir().course_id) as gb:
        yield gb


def register_assignment(course: Course, assignment: str, scratch: Path) -> Path:
    """Make sure the gradebook knows the assignment, its notebook and its graded cells, as
    ``nbgrader generate_assignment`` records them; return the released notebook.

    The release is written to ``scratch`` (the course's own release is left alone)."""
    import nbgrader  # noqa: F401  (create_gradebook finds its migrations through it)
    from nbgrader.converters import GenerateAssignment

    create_gradebook(course.db_url)
    course.source_notebook(assignment)  # a clear error for an unknown assignment
    scratch.mkdir(parents=True, exist_ok=True)
    config = copy.deepcopy(course.config)  # Config() would share its sections with the course
    config.CourseDirectory.release_directory = str(scratch)
    coursedir = course.coursedir(assignment_id=assignment)
    coursedir.release_directory = str(scratch)
    converter = GenerateAssignment(coursedir=coursedir, config=config, log=course.log)
    converter.force = True
    with working_directory(course.root):
        try:
            converter.start()
        except Exception as error:
            raise CourseError(f"nbgrader could not register {assignment} in the gradebook: {error}") from error
    released = Path(coursedir.format_path(str(scratch), ".", assignment)) / f"{course.notebook_name(assignment)}.ipynb"
    if not released.exists():
        raise CourseError(f"nbgrader generate_assignment did not produce {released}")
    return released


class Feedback:
    """``nbgrader generate_feedback ASSIGNMENT --student STUDENT --force``, always with ClearHiddenTests.

    One nbgrader converter serves the whole class, and keeps its HTML exporter (templates, CSS)
    from one student to the next: building those is most of the cost of a feedback page. Not
    thread-safe: the pipeline calls it under its bookkeeping lock."""

    def __init__(self, course: Course, assignment: str):
        from nbgrader.converters import GenerateFeedback
        from nbgrader.preprocessors import ClearHiddenTests, GetGrades

        class _ReusingFeedback(GenerateFeedback):
            _exporter = None

            def start(self) -> None:  # BaseConverter.start, creating the exporter only once
                from nbconvert.writers import FilesWriter

                self.init_notebooks()
                self.writer = FilesWriter(parent=self, config=self.config)
                if self._exporter is None:
                    self._exporter = self.exporter_class(parent=self, config=self.config)
                    for pp in self.preprocessors:
                        self._exporter.register_preprocessor(pp)
                self.exporter = self._exporter
                with working_directory(self.coursedir.root):
                    self.convert_notebooks()

        self.course = course
        self.converter = _ReusingFeedback(coursedir=course.coursedir(assignment_id=assignment),
                                          config=copy.deepcopy(course.config), log=course.log)
        self.converter.force = True
        preprocessors = list(self.converter.preprocessors)
        if ClearHiddenTests not in preprocessors:
            position = preprocessors.index(GetGrades) + 1 if GetGrades in preprocessors else 0
            preprocessors.insert(position, ClearHiddenTests)
        self.converter.preprocessors = preprocessors

    def __call__(self, student: str) -> None:
        self.converter.coursedir.student_id = student
        try:
            self.converter.start()
        except Exception as error:
            raise StepFailed(f"nbgrader generate_feedback failed for {student}: {type(error).__name__}: {error}") from error


def hidden_lines(source: NotebookNode, release: NotebookNode) -> list[str]:
    """Lines of hidden tests that appear nowhere in the release: what feedback must never show."""
    public = _flat("\n".join(cell.source for cell in release.cells))
    lines = []
    for cell in source.cells:
        inside = False
        for line in cell.source.splitlines():
            if "BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "END HIDDEN TESTS" in line:
                inside = False
            elif inside and line.strip() and not line.strip().startswith("#") and _flat(line) not in public:
                lines.append(_flat(line))
    return lines


def _flat(text: str) -> str:
    return re.sub(r"\s+", "", text)


def leaked(feedback_html: str, hidden: list[str]) -> list[str]:
    """The hidden-test lines (or markers) that a feedback page shows."""
    text = _flat(html.unescape(re.sub(r"<[^>]+>", "", feedback_html)))
    found = [line for line in hidden if line in text]
    if "BEGINHIDDENTESTS" in text:
        found.append("### BEGIN HIDDEN TESTS")
    return found


@dataclass
class CellGrade:
    grade_id: str
    points: float
    max_points: float


def gradebook_scores(course: Course, assignment: str, notebook: str, student: str) -> tuple[float, float, list[CellGrade]]:
    """The submission's score, maximum and per-cell grades, as nbgrader's gradebook holds them."""

    with gradebook(course) as gb:
        submission = gb.find_submission_notebook(notebook, assignment, student)
        cells = [CellGrade(g.name, float(g.score or 0.0), float(g.max_score)) for g in submission.grades]
        return float(submission.score or 0.0), float(submission.max_score), cells


def graded_students(course: Course, assignment: str) -> set[str]:
    from nbgrader.api import MissingEntry

    with gradebook(course) as gb:
        try:
            return {s.student.id for s in gb.find_assignment(assignment).submissions}
        except MissingEntry:
            return set()


def feedback_path(course: Course, assignment: str, notebook: str, student: str) -> Path:
    return course.notebook("feedback", assignment, student, name=notebook, suffix=".html")


def export_grades(course: Course, assignment: str, to: Path) -> None:
    """nbgrader's CSV export (``nbgrader export``), for this assignment: one row per student."""
    from nbgrader.plugins import CsvExportPlugin

    plugin = CsvExportPlugin(config=copy.deepcopy(course.config), log=course.log)
    plugin.to = str(to)
    plugin.assignment = [assignment]
    with gradebook(course) as gb:
        plugin.export(gb)



def submission_rows(course: Course, assignment: str, notebook: str, student: str) -> dict:
    """What nbgrader's autograde recorded for one submission (scores, comments, timestamp, late penalty),
    to be recorded again in another gradebook by :func:`record_rows`."""

    with gradebook(course) as gb:
        submission = gb.find_submission(assignment, student)
        graded = gb.find_submission_notebook(notebook, assignment, student)
        return {"timestamp": submission.timestamp,
                "grades": {grade.name: grade.auto_score for grade in graded.grades},
                "comments": {comment.name: comment.auto_comment for comment in graded.comments},
                "late_penalty": graded.late_submission_penalty}


def record_rows(gb, assignment: str, notebook: str, student: str, rows: dict) -> bool:
    """Write ``rows`` (from :func:`submission_rows`) into the open gradebook ``gb`` as nbgrader's autograde
    would: the student and submission created or updated, each auto score set (a cell with a manual
    grade, or without an auto score, needs manual grading, as SaveAutoGrades decides), the comments and
    the late penalty. True when a grader's manual score or comment is there too (from before)."""
    from nbgrader.api import Comment, Grade, MissingEntry

    try:
        gb.find_student(student)  # update_or_create_student would commit even when nothing changes
    except MissingEntry:
        gb.add_student(student)
    if rows["timestamp"] is not None:
        gb.update_or_create_submission(assignment, student, timestamp=rows["timestamp"])
    else:
        gb.update_or_create_submission(assignment, student)
    from sqlalchemy.orm import joinedload

    # One flush at the commit, and each row's cell (its name) loaded with it: otherwise every read
    # flushes and every name is a query of its own, most of the coordinator's cost per notebook.
    manual = False
    with gb.db.no_autoflush:
        graded = gb.find_submission_notebook(notebook, assignment, student)
        for table, column, values in ((Grade, "auto_score", rows["grades"]), (Comment, "auto_comment", rows["comments"])):
            for row in gb.db.query(table).options(joinedload(table.cell)).filter(table.notebook_id == graded.id):
                manual = manual or getattr(row, "manual_score" if table is Grade else "manual_comment") is not None
                if row.name in values:
                    setattr(row, column, values[row.name])
                    if table is Grade:  # as SaveAutoGrades decides
                        row.needs_manual_grade = row.manual_score is not None or row.auto_score is None
        graded.late_submission_penalty = rows["late_penalty"]
    gb.db.commit()
    return manual
