"""The nbgrader course a class is graded in: its configuration, folders and gradebook.

Grading never leaves nbgrader's world: the configuration is read the way the
``nbgrader`` command reads it (``nbgrader_config.py`` in the course directory,
plus Jupyter's config paths), and every grade is written to the course's own
gradebook by nbgrader's own converters, so formgrader shows the results.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from traitlets.config import Config

import autograder
from autograder.course import CONFIG_FILE, CourseLayout, load_config, working_directory

# Everything that can change a grade: the runner, the results, the checks (public and instructor),
# the executor, the guard, the kernels, the grading steps. Only the package's Python files count.
PACKAGE_DIR = Path(autograder.__file__).resolve().parent


class CourseError(RuntimeError):
    """The course directory cannot be graded in (no config, no such assignment, ...)."""


@dataclass
class Course:
    root: Path
    config: Config
    log: logging.Logger

    @classmethod
    def load(cls, root: str | os.PathLike, overrides: Config | None = None,
             log: logging.Logger | None = None) -> "Course":
        root = Path(root).resolve()
        if not (root / CONFIG_FILE).exists():
            raise CourseError(f"{root} is not an nbgrader course directory: it has no {CONFIG_FILE}. "
                              "Run the command in the course's folder, or pass --course DIR.")
        return cls(root, load_config(root, overrides), log or logging.getLogger("autograder.grading"))

    def coursedir(self, **settings):
        """A fresh nbgrader CourseDirectory (one per converter: they are not shared between threads)."""
        from nbgrader.coursedir import CourseDirectory

        coursedir = CourseDirectory(config=self.config)
        coursedir.root = str(self.root)
        for name, value in settings.items():
            setattr(coursedir, name, value)
        return coursedir

    @property
    def db_url(self) -> str:
        return self.coursedir().db_url

    def folder(self, kind: str) -> Path:
        """One of nbgrader's folders: source, release, submitted, autograded, feedback."""
        return self.root / getattr(self.coursedir(), f"{kind}_directory")

    @property
    def layout(self) -> CourseLayout:
        return CourseLayout(self.root, self.folder("source"), self.folder("release"))

    def source_notebook(self, assignment: str) -> Path:
        folder = self.folder("source") / assignment
        notebooks = sorted(folder.glob("*.ipynb"))
        if not notebooks:
            known = sorted(p.name for p in self.folder("source").glob("*") if p.is_dir())
            raise CourseError(f"{assignment!r} is not an assignment of this course (no notebook in {folder}); "
                              f"the assignments are: {', '.join(known) or 'none'}.")
        if len(notebooks) > 1:
            raise CourseError(f"{folder} holds {len(notebooks)} notebooks; grading expects one notebook per assignment.")
        return notebooks[0]

    def notebook_name(self, assignment: str) -> str:
        return self.source_notebook(assignment).stem

    def source_fingerprint(self, assignment: str, settings: dict | None = None) -> str:
        """Changes whenever anything that can change a grade changes: the assignment's source, the
        autograder's code, or the grading ``settings`` (time limit, memory limit). Grades are then redone."""
        digest = hashlib.sha256(self.source_notebook(assignment).read_bytes())
        digest.update(code_fingerprint().encode())
        digest.update(repr(sorted((settings or {}).items())).encode())
        return digest.hexdigest()[:16]

    def register_assignment(self, assignment: str, scratch: Path) -> Path:
        """Make sure the gradebook knows the assignment, its notebook and its graded cells, as
        ``nbgrader generate_assignment`` records them; return the released notebook.

        The release is written to ``scratch`` (the course's own release is left alone)."""
        from nbgrader.converters import GenerateAssignment

        self.source_notebook(assignment)  # a clear error for an unknown assignment
        scratch.mkdir(parents=True, exist_ok=True)
        config = copy.deepcopy(self.config)  # Config() would share its sections with the course
        config.CourseDirectory.release_directory = str(scratch)
        coursedir = self.coursedir(assignment_id=assignment)
        coursedir.release_directory = str(scratch)
        converter = GenerateAssignment(coursedir=coursedir, config=config, log=self.log)
        converter.force = True
        with working_directory(self.root):
            try:
                converter.start()
            except Exception as error:
                raise CourseError(f"nbgrader could not register {assignment} in the gradebook: {error}") from error
        released = scratch / assignment / f"{self.notebook_name(assignment)}.ipynb"
        if not released.exists():
            raise CourseError(f"nbgrader generate_assignment did not produce {released}")
        return released


def code_fingerprint(package: Path = PACKAGE_DIR) -> str:
    """A digest of every Python file of the autograder package, its subpackages included."""
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        if "__pycache__" not in path.parts:
            digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]
