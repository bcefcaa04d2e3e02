"""The nbgrader course: its configuration, and every path in it, as ``nbgrader_config.py`` says.

The course directory is the folder with ``nbgrader_config.py``; its
``CourseDirectory`` settings name the instructor's source (``solutions/``), the
student release (``notebooks/``) and the folders grading writes (``submitted/``,
``autograded/``, ``feedback/``). The configuration is read the way the ``nbgrader``
command reads it, and every path is nbgrader's own ``CourseDirectory.format_path``,
so a course that changes ``directory_structure`` is read correctly everywhere.

Every command finds the course the same way, from the notebook it is given or
the working directory, never from where the ``autograder`` package is installed
(a non-editable install puts the package far from the course). This module is
part of the student pack: it knows nothing of grading.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path

from traitlets.config import Config

CONFIG_FILE = "nbgrader_config.py"
COURSE_ENV = "AUTOGRADER_COURSE"  # names the course directory where no folder above says
WORKSPACE = "my-work"  # a learner's own copies of the release (see autograder.workspace)
HERE = "."  # nbgrader's student id for the source and the release, which belong to no student


class CourseError(RuntimeError):
    """The course cannot do what was asked (no configuration, no such assignment, ...)."""


class CourseNotFound(CourseError):
    """No course directory where one was looked for."""


@contextlib.contextmanager
def working_directory(path: Path):
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def load_config(root: Path, overrides: Config | None = None) -> Config:
    """nbgrader's configuration for the course in ``root``, as ``nbgrader`` would load it there."""
    from nbgrader.apps.baseapp import NbGrader

    app = NbGrader()
    app.log.setLevel(logging.ERROR)  # "no nbgrader_config.py" is reported by the caller, in our words
    with working_directory(root):
        app.load_config_file()
    config = Config(app.config)
    if overrides:
        config.merge(overrides)
    config.CourseDirectory.root = str(root)
    return config


@dataclass(frozen=True)
class Course:
    root: Path
    config: Config = field(repr=False)
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("autograder.course"), repr=False,
                                compare=False)

    # --- finding and loading ----------------------------------------------------

    @classmethod
    def load(cls, root: str | os.PathLike, overrides: Config | None = None,
             log: logging.Logger | None = None) -> "Course":
        """The course in ``root`` exactly (grading names it with --course), ``overrides`` put over its
        configuration."""
        root = Path(root).resolve()
        if not (root / CONFIG_FILE).exists():
            raise CourseNotFound(f"{root} is not an nbgrader course directory: it has no {CONFIG_FILE}. "
                                 "Run the command in the course's folder, or pass --course DIR.")
        course = cls(root, load_config(root, overrides))
        return course if log is None else course.logging_to(log)

    @classmethod
    def find(cls, *starts: str | os.PathLike | None) -> "Course | None":
        """The course that holds the first of ``starts`` (a notebook or folder) inside it, else the one
        named by $AUTOGRADER_COURSE, else the one around the working directory; None when there is none."""
        for start in [*starts, os.environ.get(COURSE_ENV), Path.cwd()]:
            root = _course_root(start) if start else None
            if root is not None:
                return _loaded(root)
        return None

    @classmethod
    def here(cls, start: str | os.PathLike | None = None) -> "Course":
        course = cls.find(start)
        if course is None:
            raise CourseNotFound(f"no course here: neither {Path(start or Path.cwd()).resolve()} nor a folder above "
                                 f"it has {CONFIG_FILE}. Run this in the course's folder, or set ${COURSE_ENV}.")
        return course

    def logging_to(self, log: logging.Logger) -> "Course":
        """The same course, with nbgrader's converters logging to ``log``."""
        return Course(self.root, self.config, log)

    # --- paths ------------------------------------------------------------------

    def coursedir(self, **settings):
        """A fresh nbgrader CourseDirectory (one per converter: they are not shared between threads)."""
        from nbgrader.coursedir import CourseDirectory

        coursedir = CourseDirectory(config=self.config)
        coursedir.root = str(self.root)
        for name, value in settings.items():
            setattr(coursedir, name, value)
        return coursedir

    @cached_property
    def _paths(self):
        return self.coursedir()  # only read: formats paths for every thread

    @property
    def db_url(self) -> str:
        return self._paths.db_url

    def folder(self, step: str) -> Path:
        """The folder of one of nbgrader's steps: source, release, submitted, autograded, feedback."""
        return self.root / getattr(self._paths, f"{step}_directory")

    @property
    def source(self) -> Path:
        """nbgrader's source: the instructor's notebooks, with solutions and hidden tests."""
        return self.folder("source")

    @property
    def release(self) -> Path:
        """nbgrader's release: the learners' notebooks."""
        return self.folder("release")

    @property
    def workspace(self) -> Path:
        return self.root / WORKSPACE

    def assignment_folder(self, step: str, assignment: str, student: str = HERE) -> Path:
        """Where ``step`` keeps ``assignment`` (of ``student``: submitted, autograded, feedback)."""
        paths = self._paths
        return Path(paths.format_path(getattr(paths, f"{step}_directory"), student, assignment))

    def notebook_name(self, assignment: str) -> str:
        """The assignment's notebook, without .ipynb: the one notebook in its source folder, or in its
        release folder where the course has no source (the student pack)."""
        for step in ("source", "release"):
            folder = self.assignment_folder(step, assignment)
            notebooks = sorted(folder.glob("*.ipynb"))
            if len(notebooks) > 1:
                raise CourseError(f"{folder} holds {len(notebooks)} notebooks; grading expects one notebook per "
                                  "assignment.")
            if notebooks:
                return notebooks[0].stem
        known = sorted(p.name for p in self.source.glob("*") if p.is_dir())
        raise CourseError(f"{assignment!r} is not an assignment of this course (no notebook in "
                          f"{self.assignment_folder('source', assignment)}); the assignments are: "
                          f"{', '.join(known) or 'none'}.")

    def notebook(self, step: str, assignment: str, student: str = HERE, name: str | None = None,
                 suffix: str = ".ipynb") -> Path:
        """The assignment's notebook at ``step`` (feedback: ``suffix='.html'``); ``name`` spares looking
        it up where the caller knows it (a cluster worker's course has no source notebook)."""
        name = name or self.notebook_name(assignment)
        return self.assignment_folder(step, assignment, student) / f"{name}{suffix}"

    def source_notebook(self, assignment: str) -> Path:
        """The instructor's notebook of ``assignment``; a clear error when the course has none."""
        path = self.notebook("source", assignment)
        if not path.exists():
            known = sorted(p.name for p in self.source.glob("*") if p.is_dir())
            raise CourseError(f"{assignment!r} is not an assignment of this course (no notebook in {path.parent}); "
                              f"the assignments are: {', '.join(known) or 'none'}.")
        return path

    def release_notebook(self, assignment: str) -> Path:
        return self.notebook("release", assignment)

    def authoritative(self, assignment: str) -> Path | None:
        """The notebook whose test cells count for ``assignment``: the instructor's source (with hidden
        tests) where the course has it, else the release, else None."""
        try:
            candidates = (self.notebook("source", assignment), self.notebook("release", assignment))
        except CourseError:
            return None
        return next((candidate for candidate in candidates if candidate.exists()), None)

    # --- a throwaway copy ---------------------------------------------------------

    def copy(self, to: str | os.PathLike, assignments: list[str] | None = None) -> "Course":
        """A new course in ``to`` with this one's configuration, source and release (of ``assignments``,
        default all): for demos, tests and benchmarks, which must never touch the real gradebook."""
        to = Path(to)
        to.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.root / CONFIG_FILE, to / CONFIG_FILE)
        for step in ("source", "release"):
            folders = [self.folder(step)] if assignments is None else [
                self.assignment_folder(step, assignment) for assignment in assignments]
            for folder in folders:
                if folder.is_dir():
                    shutil.copytree(folder, to / folder.relative_to(self.root), dirs_exist_ok=True)
        return Course.load(to)


def _course_root(start: str | os.PathLike) -> Path | None:
    path = Path(start).resolve()
    for folder in [path, *path.parents]:
        if (folder / CONFIG_FILE).is_file():
            return folder
    return None


@lru_cache(maxsize=8)
def _loaded(root: Path) -> Course:
    return Course(root, load_config(root))
