"""Where the course's notebooks live, as its ``nbgrader_config.py`` says.

The course directory is the folder with ``nbgrader_config.py``; its
``CourseDirectory`` settings name the instructor's source (``solutions/``)
and the student release (``notebooks/``). Every command finds the course the
same way, from the notebook it is given or the working directory, never from
where the ``autograder`` package is installed (a non-editable install puts
the package far from the course).
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from traitlets.config import Config

CONFIG_FILE = "nbgrader_config.py"
COURSE_ENV = "AUTOGRADER_COURSE"  # names the course directory where no folder above says
WORKSPACE = "my-work"  # a learner's own copies of the release (see autograder.workspace)


class CourseNotFound(RuntimeError):
    pass


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
class CourseLayout:
    root: Path
    source: Path  # nbgrader's source_directory: the instructor's notebooks, with solutions and hidden tests
    release: Path  # nbgrader's release_directory: the learners' notebooks

    @classmethod
    def at(cls, root: str | os.PathLike) -> "CourseLayout":
        root = Path(root).resolve()
        return _read(root)

    @classmethod
    def find(cls, *starts: str | os.PathLike | None) -> "CourseLayout | None":
        """The course that holds the first of ``starts`` (a notebook or folder) inside it, else the one
        named by $AUTOGRADER_COURSE, else the one around the working directory; None when there is none."""
        for start in [*starts, os.environ.get(COURSE_ENV), Path.cwd()]:
            root = _course_root(start) if start else None
            if root is not None:
                return _read(root)
        return None

    @classmethod
    def here(cls, start: str | os.PathLike | None = None) -> "CourseLayout":
        layout = cls.find(start)
        if layout is None:
            raise CourseNotFound(f"no course here: neither {Path(start or Path.cwd()).resolve()} nor a folder above it "
                                 f"has {CONFIG_FILE}. Run this in the course's folder, or set ${COURSE_ENV}.")
        return layout

    def source_notebook(self, assignment: str) -> Path:
        return self.source / assignment / f"{assignment}.ipynb"

    def release_notebook(self, assignment: str) -> Path:
        return self.release / assignment / f"{assignment}.ipynb"

    def authoritative(self, assignment: str) -> Path | None:
        """The notebook whose test cells count for ``assignment``: the instructor's source (with hidden
        tests) where the course has it, else the release, else None."""
        for candidate in (self.source_notebook(assignment), self.release_notebook(assignment)):
            if candidate.exists():
                return candidate
        return None

    @property
    def workspace(self) -> Path:
        return self.root / WORKSPACE


def _course_root(start: str | os.PathLike) -> Path | None:
    path = Path(start).resolve()
    for folder in [path, *path.parents]:
        if (folder / CONFIG_FILE).is_file():
            return folder
    return None


@lru_cache(maxsize=8)
def _read(root: Path) -> CourseLayout:
    coursedir = load_config(root).CourseDirectory
    return CourseLayout(root, root / coursedir.get("source_directory", "source"),
                        root / coursedir.get("release_directory", "release"))
