"""The nbgrader course a class is graded in: its configuration, folders and gradebook.

Grading never leaves nbgrader's world: the configuration is read the way the
``nbgrader`` command reads it (``nbgrader_config.py`` in the course directory,
plus Jupyter's config paths), and every grade is written to the course's own
gradebook by nbgrader's own converters, so formgrader shows the results.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from traitlets.config import Config


class CourseError(RuntimeError):
    """The course directory cannot be graded in (no config, no such assignment, ...)."""


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
    app.log.setLevel(logging.ERROR)  # "no nbgrader_config.py" is reported by Course.load, in our words
    with working_directory(root):
        app.load_config_file()
    config = Config(app.config)
    if overrides:
        config.merge(overrides)
    config.CourseDirectory.root = str(root)
    return config


@dataclass
class Course:
    root: Path
    config: Config
    log: logging.Logger

    @classmethod
    def load(cls, root: str | os.PathLike, overrides: Config | None = None,
             log: logging.Logger | None = None) -> "Course":
        root = Path(root).resolve()
        if not (root / "nbgrader_config.py").exists():
            raise CourseError(f"{root} is not an nbgrader course directory: it has no nbgrader_config.py. "
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

    def source_fingerprint(self, assignment: str) -> str:
        """Changes whenever the assignment's source or the checks change: grades must then be redone."""
        digest = hashlib.sha256(self.source_notebook(assignment).read_bytes())
        checks = Path(__file__).resolve().parent.parent / "checks"
        for path in sorted(checks.glob("*.py")):
            digest.update(path.name.encode() + path.read_bytes())
        return digest.hexdigest()[:16]

    def register_assignment(self, assignment: str, scratch: Path) -> Path:
        """Make sure the gradebook knows the assignment, its notebook and its graded cells, as
        ``nbgrader generate_assignment`` records them; return the released notebook.

        The release is written to ``scratch`` (the course's own release is left alone)."""
        from nbgrader.converters import GenerateAssignment

        self.source_notebook(assignment)  # a clear error for an unknown assignment
        scratch.mkdir(parents=True, exist_ok=True)
        config = Config(self.config)
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
