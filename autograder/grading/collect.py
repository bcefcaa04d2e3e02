"""Put one submission into nbgrader's ``submitted/ID/ASSIGNMENT/`` folder, ready for autograde.

A notebook that can be read is copied byte for byte under the assignment's
notebook name (a renamed copy gets the right name). One that cannot (an empty
file, invalid JSON, a notebook of another assignment, no notebook at all) is
kept next to it as ``<name>.original`` and replaced by a placeholder: the
released notebook, marked so that grading records zero for every test with the
reason, without running anything. Either way nbgrader's gradebook gets a
complete submission, so no student is left without a grade.
"""

from __future__ import annotations

import copy
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from autograder.cells import grade_id, grade_ids, is_test_cell
from autograder.grading.discover import LayoutError, Submission
from autograder.preprocessors import NOT_GRADED_KEY


@dataclass
class Collected:
    student: str
    notebook: Path  # in submitted/
    placeholder: str = ""  # why the submission could not be graded (placeholder written); "" when it can
    notes: list[str] = field(default_factory=list)  # facts for the report (renamed, edited test cells, ...)
    nb: NotebookNode | None = None  # the student's notebook as read, when readable


def read_problem(path: Path) -> tuple[NotebookNode | None, str]:
    """The notebook at ``path``, or why it cannot be graded."""
    data = path.read_bytes()
    if not data.strip():
        return None, f"the notebook `{path.name}` is an empty file"
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        return None, f"the notebook `{path.name}` is not valid JSON ({type(error).__name__}: {error}); it may be truncated"
    if not isinstance(raw, dict) or not isinstance(raw.get("cells"), list):
        return None, f"`{path.name}` is JSON but not a notebook (it has no list of cells)"
    try:
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
    except Exception as error:  # an nbformat version it cannot convert, malformed cells, ...
        return None, f"the notebook `{path.name}` cannot be read as a notebook ({type(error).__name__}: {error})"
    return nb, ""


def changed_test_cells(nb: NotebookNode, release: NotebookNode) -> list[str]:
    """Which of the release's test cells the student deleted or edited (nbgrader restores both)."""
    released = {grade_id(cell): cell.source for cell in release.cells if is_test_cell(cell)}
    present = {grade_id(cell): cell.get("source", "") for cell in nb.cells if grade_id(cell) in released}
    notes = []
    deleted = [gid for gid in released if gid not in present]
    edited = [gid for gid, source in present.items() if source != released[gid]]
    if deleted:
        notes.append(f"deleted test cells, put back and run: {', '.join(deleted)}")
    if edited:
        notes.append(f"edited test cells, restored to the original: {', '.join(edited)}")
    return notes


def placeholder(release: NotebookNode, reason: str) -> NotebookNode:
    nb = copy.deepcopy(release)
    nb.metadata[NOT_GRADED_KEY] = f"this submission could not be graded: {reason}."
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(
        f"**Not graded:** {reason}. Every test of this assignment scores zero. "
        "Ask your instructor if you believe you handed in a working notebook."))
    return nb


def snapshot_submitted(submitted: Path, assignment: str, into: Path) -> Path:
    """What the students handed in for ``assignment``, copied from nbgrader's ``submitted/``
    (``ID/ASSIGNMENT/``, as ``nbgrader collect`` leaves them), to grade from: grading writes each
    submission back into ``submitted/``, so it must not read from there while it does. A placeholder
    that an earlier run wrote is replaced by the original it kept, so that what is graded, and its
    fingerprint, are the student's. Students with no folder for this assignment are not part of
    it, as in ``nbgrader autograde``."""
    into.mkdir(parents=True)
    for student in sorted(p for p in submitted.iterdir() if p.is_dir() and not p.name.startswith(".")):
        folder = student / assignment
        if not folder.is_dir():
            continue
        copy = into / student.name / assignment
        shutil.copytree(folder, copy, symlinks=True)
        for kept in copy.glob("*.ipynb.original"):
            ours = kept.with_suffix("")
            if ours.is_file() and _is_placeholder(ours):
                kept.replace(ours)
    if not any(into.iterdir()):
        raise LayoutError(f"{submitted} holds no submissions of {assignment} (no {submitted.name}/ID/{assignment}/ "
                          f"folder): collect them first (nbgrader collect {assignment}).")
    return into


def _is_placeholder(path: Path) -> bool:
    try:
        return NOT_GRADED_KEY in json.loads(path.read_text(encoding="utf-8")).get("metadata", {})
    except (OSError, ValueError, AttributeError):
        return False


def collect(submission: Submission, dest: Path, notebook: str, release: NotebookNode,
            source_ids: set[str]) -> Collected:
    """Write ``submission`` into ``dest`` (``submitted/ID/ASSIGNMENT``), replacing what was there.

    The new copy is written beside ``dest`` and swapped in only when it is complete, so that a
    run stopped half-way never leaves a student without a submission there."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fresh = dest.with_name(f".{dest.name}.collecting")
    if fresh.exists():
        shutil.rmtree(fresh)
    fresh.mkdir()
    collected = _collect_into(submission, fresh, notebook, release, source_ids)
    old = dest.with_name(f".{dest.name}.replaced")
    if old.exists():
        shutil.rmtree(old)
    if dest.exists():
        dest.rename(old)
    fresh.rename(dest)
    shutil.rmtree(old, ignore_errors=True)
    collected.notebook = dest / collected.notebook.name
    return collected


def _collect_into(submission: Submission, dest: Path, notebook: str, release: NotebookNode,
                  source_ids: set[str]) -> Collected:
    target = dest / f"{notebook}.ipynb"
    notes = list(submission.notes)
    for path in submission.files():
        if path == submission.notebook:
            continue
        relative = path.name if submission.folder is None else path.relative_to(submission.folder)
        out = dest / relative
        if out.suffix == ".ipynb":  # another notebook the student handed in: kept, never graded
            out = out.with_name(out.name + ".not-graded")
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, out)
    if submission.notebook is None:
        reason = f"no notebook was handed in (expected {notebook}.ipynb)"
        nbformat.write(placeholder(release, reason), target)
        return Collected(submission.student, target, reason, notes)
    nb, problem = read_problem(submission.notebook)
    if not problem:
        if not set(grade_ids(nb)) & source_ids:
            problem = (f"`{submission.notebook.name}` is not a copy of {notebook} (none of its cells belongs to the "
                       "assignment)")
    if problem:
        shutil.copyfile(submission.notebook, dest / f"{submission.notebook.name}.original")
        nbformat.write(placeholder(release, problem), target)
        return Collected(submission.student, target, problem, notes)
    shutil.copyfile(submission.notebook, target)
    notes.extend(changed_test_cells(nb, release))
    return Collected(submission.student, target, "", notes, nb)
