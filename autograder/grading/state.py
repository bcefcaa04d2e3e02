"""What a grading run remembers, so that the next one redoes only what changed.

One state file per student holds that student's last :class:`~.result.SubmissionResult`,
with two fingerprints: of the student's files, and of everything else that can
change a grade (the assignment's source, the autograder's own code, the grading
settings). A run skips a student whose two fingerprints are unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import autograder
from autograder.course import Course
from autograder.grading.result import SubmissionResult

# Everything that can change a grade: the runner, the results, the checks (public and instructor),
# the executor, the guard, the kernels, the grading steps. Only the package's Python files count.
PACKAGE_DIR = Path(autograder.__file__).resolve().parent


def code_fingerprint(package: Path = PACKAGE_DIR) -> str:
    """A digest of every Python file of the autograder package, its subpackages included."""
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        if "__pycache__" not in path.parts:
            digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def source_fingerprint(course: Course, assignment: str, settings: dict | None = None) -> str:
    """Changes whenever anything that can change a grade changes: the assignment's source, the
    autograder's code, or the grading ``settings`` (time limit, memory limit). Grades are then redone."""
    digest = hashlib.sha256(course.source_notebook(assignment).read_bytes())
    digest.update(code_fingerprint().encode())
    digest.update(repr(sorted((settings or {}).items())).encode())
    return digest.hexdigest()[:16]


class States:
    """One JSON file per student in ``folder``: the result of the last grading, to resume from."""

    def __init__(self, folder: Path):
        self.folder = folder

    def path(self, student: str) -> Path:
        return self.folder / f"{student}.json"

    def load(self, student: str) -> SubmissionResult | None:
        """The student's last result; None when there is none, or none this version can read."""
        try:
            return SubmissionResult.from_json(json.loads(self.path(student).read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError, KeyError):
            return None

    def save(self, result: SubmissionResult) -> None:
        path = self.path(result.student)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(result.to_json(), indent=1), encoding="utf-8")
        os.replace(tmp, path)

    def everyone(self) -> dict[str, SubmissionResult]:
        """Every student graded so far (also by earlier runs, e.g. with --student)."""
        found = {}
        for path in sorted(self.folder.glob("*.json")):
            result = self.load(path.stem)
            if result is not None:
                found[path.stem] = result
        return found
