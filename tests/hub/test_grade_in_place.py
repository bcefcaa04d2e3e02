"""Grading the course's own submitted/ in place, as an instructor does after `nbgrader collect`.

`autograder grade` writes each submission into nbgrader's submitted/ID/ASSIGNMENT/, replacing what
was there. When the class it grades *is* that folder, it grades from a snapshot and swaps each
student's folder in only once the new copy is complete: every file a student handed in is still
there afterwards (a notebook that cannot be graded stays beside its placeholder as .original),
students who handed in only other assignments are left out and alone, and a second run has nothing
to redo.
"""

from __future__ import annotations

import shutil

import nbformat
import pytest

from autograder import registry
from autograder.grading.pipeline import GradingError, Options, grade_class
from support import course_copy, release_path

pytestmark = pytest.mark.slow

A = registry.notebooks()[0]
OTHER = registry.notebooks()[1]


def snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_grading_the_courses_own_submitted_folder_in_place_keeps_every_students_work(tmp_path):
    course = course_copy(tmp_path / "course", A).root
    submitted = course / "submitted"
    # as `nbgrader collect` leaves them: the notebook, timestamp.txt and the submission's secret
    alice = submitted / "alice" / A
    alice.mkdir(parents=True)
    shutil.copy(release_path(A), alice / f"{A}.ipynb")
    (alice / "timestamp.txt").write_text("2026-12-07 10:00:00.000000 UTC")
    (alice / "submission_secret.txt").write_text("s3cret")
    (alice / "notes.txt").write_text("my own notes")
    bob = submitted / "bob" / A
    bob.mkdir(parents=True)
    (bob / f"{A}.ipynb").write_text('{"cells": [')  # cut short: cannot be graded
    (bob / "timestamp.txt").write_text("2026-12-07 11:00:00.000000 UTC")
    carol = submitted / "carol" / OTHER  # handed in only another assignment
    carol.mkdir(parents=True)
    shutil.copy(release_path(OTHER), carol / f"{OTHER}.ipynb")
    handed_in = {"alice": snapshot(alice), "bob": snapshot(bob), "carol": snapshot(carol)}

    options = Options(A, submitted, course, jobs=1, timeout=30, memory_limit=2 * 2**30, progress=False)
    result = grade_class(options)
    students = {s.student: s for s in result.students}
    assert sorted(students) == ["alice", "bob"], "carol handed in no work for this assignment"
    assert students["alice"].status == "graded" and students["alice"].score == 0
    assert students["bob"].status == "not graded" and "not valid JSON" in " ".join(students["bob"].faults)

    after = {"alice": snapshot(alice), "bob": snapshot(bob), "carol": snapshot(carol)}
    assert after["alice"] == handed_in["alice"], "alice's submission changed"
    assert after["carol"] == handed_in["carol"], "carol's other assignment was touched"
    # bob's notebook became a placeholder that scores zero; what he handed in is kept beside it
    assert after["bob"][f"{A}.ipynb.original"] == handed_in["bob"][f"{A}.ipynb"]
    assert after["bob"]["timestamp.txt"] == handed_in["bob"]["timestamp.txt"]
    nbformat.reads(after["bob"][f"{A}.ipynb"].decode(), as_version=4)
    assert not [p for p in (submitted / "alice").iterdir() if p.name != A], "a half-done copy was left behind"
    # nbgrader's autograded/ and feedback/ carry the files that release_feedback needs
    assert (course / "feedback" / "alice" / A / "timestamp.txt").exists()
    assert (course / "feedback" / "alice" / A / "submission_secret.txt").read_text() == "s3cret"

    again = grade_class(options)
    assert again.graded == [] and again.resumed == ["alice", "bob"]
    assert {"alice": snapshot(alice), "bob": snapshot(bob)} == {"alice": after["alice"], "bob": after["bob"]}

    # a folder inside submitted/ (or around it) is refused rather than graded half in place
    with pytest.raises(GradingError, match="overlaps"):
        grade_class(Options(**{**options.__dict__, "submissions": submitted / "alice"}))
