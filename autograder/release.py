"""Generate the student release (``notebooks/``) from the instructor source (``solutions/``).

nbgrader does the work (solution regions become stubs, hidden tests vanish,
cells are locked and checksummed); this module only makes it one step that
replaces the whole release at once, so a notebook removed from ``solutions/``
cannot linger in ``notebooks/``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from autograder.course import Course


def tool_env() -> dict[str, str]:
    """The environment for nbgrader's subprocesses: it calls tools such as
    ``alembic`` by name, so this interpreter's scripts folder must be on PATH
    even when the virtual environment was never activated."""
    scripts = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": os.pathsep.join([scripts, os.environ.get("PATH", "")])}


class ReleaseError(RuntimeError):
    pass


def generate_release(course_dir: Path | None = None, release_dir: Path | None = None) -> Path:
    """Write the release of every assignment of the course's source folder (``solutions/``) to
    ``release_dir`` (default: the course's release folder, ``notebooks/``), replacing what was there.
    The course is the one in ``course_dir``, by default the one around the working directory."""
    course = Course.find(course_dir)
    if course is None:
        raise ReleaseError(f"{Path(course_dir or Path.cwd()).resolve()} is not in a course: no nbgrader_config.py.")
    course_dir = course.root
    release_dir = Path(release_dir or course.release).resolve()
    if not course.source.is_dir():
        raise ReleaseError(f"{course_dir} has no {course.source.name}/ folder to release.")
    with tempfile.TemporaryDirectory(prefix="release-") as scratch:
        staged = Path(scratch) / "notebooks"
        command = [
            sys.executable, "-m", "nbgrader", "generate_assignment", "*", "--force",
            f"--CourseDirectory.release_directory={staged}",
            # Releasing needs a gradebook only in passing; the instructor's own is left alone.
            f"--CourseDirectory.db_url=sqlite:///{Path(scratch) / 'release.db'}",
        ]
        done = subprocess.run(command, cwd=course_dir, capture_output=True, text=True, env=tool_env())
        if done.returncode != 0:
            raise ReleaseError(f"nbgrader generate_assignment failed:\n{done.stdout}{done.stderr}")
        if release_dir.exists():
            shutil.rmtree(release_dir)
        shutil.copytree(staged, release_dir)
    return release_dir
