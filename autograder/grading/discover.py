"""Find each student's submission in a folder or zip of a class, or say clearly why not.

``--submissions`` may be a folder or a ``.zip`` of a folder, laid out in one of
these ways (they may be mixed; ``ID`` is a student id):

=====================================  ==============================================
``ID.ipynb``                           one notebook per student, named by student id
``ID/<any name>.ipynb`` (+ other files) one folder per student
``ID/ASSIGNMENT/<notebook>.ipynb``     nbgrader's ``submitted/`` layout (its
                                       ``timestamp.txt`` is kept for late penalties)
=====================================  ==============================================

A zip may wrap all of this in one top-level folder. Hidden files,
``.ipynb_checkpoints`` and ``__MACOSX`` are ignored. Student ids are letters,
digits and ``. _ - @ +``, starting with a letter or digit.

Inside a student's folder the notebook is the one named like the assignment's
notebook; failing that the only notebook there (a renamed copy); failing that
the one whose graded cells belong to the assignment. A student with no notebook
at all is still listed, so that the student gets a zero with a reason.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from autograder.cells import grade_ids

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]*$")
IGNORED = {"__MACOSX", ".ipynb_checkpoints", "__pycache__", "Thumbs.db"}
MAX_UNZIPPED = 4 * 2**30  # a class's notebooks are megabytes; this refuses zip bombs


class LayoutError(ValueError):
    """The submissions cannot be read as a class; the message says what to fix."""


@dataclass
class Submission:
    student: str
    folder: Path | None  # the student's own folder (layouts 2 and 3); None for a lone notebook
    notebook: Path | None  # the notebook to grade; None when the student handed in none
    notes: list[str] = field(default_factory=list)

    def files(self) -> list[Path]:
        """Every file the student handed in (the notebook first)."""
        if self.folder is None:
            return [self.notebook] if self.notebook else []
        found = [p for p in sorted(self.folder.rglob("*")) if p.is_file() and not _ignored(p, self.folder)]
        if self.notebook in found:
            found.remove(self.notebook)
            found.insert(0, self.notebook)
        return found

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for path in self.files():
            name = path.name if self.folder is None else path.relative_to(self.folder).as_posix()
            digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
        if self.notebook is not None:
            digest.update(b"graded:" + self.notebook.name.encode())
        return digest.hexdigest()[:16]


def _ignored(path: Path, root: Path) -> bool:
    return any(part in IGNORED or part.startswith(".") for part in path.relative_to(root).parts)


def _entries(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name not in IGNORED and not p.name.startswith("."))


def extract_zip(archive: Path, into: Path) -> Path:
    """Unpack ``archive`` safely (no absolute paths, no ``..``, no links, bounded size) into ``into``."""
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as error:
        raise LayoutError(f"{archive} is not a readable zip file ({error}).") from None
    with zf:
        members = zf.infolist()
        total = sum(m.file_size for m in members)
        if total > MAX_UNZIPPED:
            raise LayoutError(f"{archive} would unpack to {total / 2**30:.1f} GiB; refusing (limit "
                              f"{MAX_UNZIPPED / 2**30:.0f} GiB).")
        if into.exists():
            shutil.rmtree(into)
        into.mkdir(parents=True)
        for member in members:
            name = PurePosixPath(member.filename.replace("\\", "/"))
            if name.is_absolute() or ".." in name.parts:
                raise LayoutError(f"{archive} holds an unsafe path, {member.filename!r}; refusing to unpack it.")
            if stat.S_ISLNK(member.external_attr >> 16):
                raise LayoutError(f"{archive} holds a symbolic link, {member.filename!r}; refusing to unpack it.")
            target = into.joinpath(*name.parts)
            if member.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(member) as source, open(target, "wb") as out:
                shutil.copyfileobj(source, out)
    return into


def _unwrap(root: Path) -> Path:
    """A zip often wraps the class in one folder: look inside it when it holds several students."""
    entries = _entries(root)
    while len(entries) == 1 and entries[0].is_dir():
        inner = _entries(entries[0])
        if entries[0].name != "submitted" and len(inner) < 2:
            break
        root, entries = entries[0], inner
    return root


def discover(path: str | Path, assignment: str, notebook: str, staging: Path) -> list[Submission]:
    """The class's submissions of ``assignment`` (whose notebook is ``notebook``.ipynb), by student id."""
    path = Path(path)
    if not path.exists():
        raise LayoutError(f"{path}: no such file or folder. Pass the folder (or .zip) that holds the class's submissions.")
    if path.is_file():
        if path.suffix.lower() != ".zip":
            raise LayoutError(f"{path} is a file, but not a .zip: pass a folder of submissions or a zip of one.")
        root = _unwrap(extract_zip(path, staging / "unzipped"))
    else:
        root = path
    entries = _entries(root)
    if not entries:
        raise LayoutError(f"{path} holds no submissions.")
    submissions: dict[str, Submission] = {}
    unexpected, bad_ids = [], []
    for entry in entries:
        if entry.is_dir():
            student = entry.name
            found = _in_folder(entry, assignment, notebook, student)
        elif entry.suffix == ".ipynb":
            student = entry.stem
            found = Submission(student, None, entry)
        else:
            unexpected.append(entry.name)
            continue
        if not STUDENT_ID.match(student):
            bad_ids.append(entry.name)
            continue
        if student in submissions:
            raise LayoutError(f"student {student!r} appears twice in {path} (a folder and a notebook, or two "
                              "notebooks): keep one.")
        submissions[student] = found
    problems = []
    if unexpected:
        problems.append(f"these entries are neither a student's folder nor a <student id>.ipynb notebook: "
                        f"{', '.join(unexpected[:10])}{' ...' if len(unexpected) > 10 else ''}")
    if bad_ids:
        problems.append("these names are not valid student ids (letters, digits and . _ - @ +, starting with "
                        f"a letter or digit): {', '.join(bad_ids[:10])}")
    if problems:
        raise LayoutError(f"{path} is not laid out as the grader expects: " + "; ".join(problems) + ". "
                          "Expected one entry per student: ID.ipynb, or a folder ID/ with the notebook, or "
                          f"nbgrader's ID/{assignment}/{notebook}.ipynb.")
    if not submissions:
        raise LayoutError(f"{path} holds no submissions.")
    return [submissions[student] for student in sorted(submissions)]


def _in_folder(folder: Path, assignment: str, notebook: str, student: str) -> Submission:
    inner = folder / assignment
    if inner.is_dir():
        folder = inner  # nbgrader's submitted/ layout
    candidates = [p for p in sorted(folder.glob("*.ipynb")) if p.is_file()]
    where = ""
    if not candidates:
        candidates = [p for p in sorted(folder.rglob("*.ipynb")) if p.is_file() and not _ignored(p, folder)]
        where = " (found in a subfolder)" if candidates else ""
    expected = f"{notebook}.ipynb"
    exact = [p for p in candidates if p.name == expected]
    if exact:
        chosen, notes = exact[0], []
    elif len(candidates) == 1:
        chosen = candidates[0]
        notes = [f"renamed notebook: `{chosen.relative_to(folder)}` was graded as {expected}{where}"]
    elif candidates:
        chosen = max(candidates, key=lambda p: (_belongs(p, notebook), p.stat().st_mtime))
        others = ", ".join(f"`{p.relative_to(folder)}`" for p in candidates if p != chosen)
        notes = [f"several notebooks: graded `{chosen.relative_to(folder)}` (the one that matches {expected}); "
                 f"not graded: {others}"]
    else:
        chosen, notes = None, []
    return Submission(student, folder, chosen, notes)


def _belongs(path: Path, notebook: str) -> int:
    """How many of the notebook's cells carry nbgrader ids (a rough match when several notebooks compete)."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
        return len(grade_ids(nb))
    except (OSError, ValueError, AttributeError):
        return -1
