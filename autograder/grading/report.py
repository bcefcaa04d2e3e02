"""What grading found, in the files instructors load: grades, per-exercise breakdown, report.

Everything here renders each :class:`~.result.SubmissionResult` as it is; nothing is judged again.

- ``grades.csv``: nbgrader's own export (``nbgrader export``) for the assignment,
  one row per student: the file an LMS import takes.
- ``exercises.csv``: one row per student and exercise: points, maximum, status,
  and for anything short of full marks the diagnosis code and the reason.
- ``report.md`` / ``report.json``: per student, the score, what went wrong
  (timeouts, dead kernels, memory, unreadable files, ...) and any tampering.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from autograder.grading.result import SubmissionResult, SubmissionStatus
from autograder.verdicts import ExerciseVerdict

EXERCISE_COLUMNS = ["assignment", "student_id", "exercise", "points", "max_points", "status", "code", "reason"]


def exercise_row(assignment: str, student: str, verdict: ExerciseVerdict) -> dict:
    """One exercise of one student, as exercises.csv and report.json show it."""
    return {"assignment": assignment, "student_id": student, "exercise": verdict.exercise,
            "points": verdict.points, "max_points": verdict.max_points, "status": verdict.outcome,
            "code": str(verdict.code), "reason": f"{verdict.grade_id}: {verdict.message}" if verdict.code else ""}


def student_json(assignment: str, result: SubmissionResult) -> dict:
    """A student's entry in report.json: the result, its exercises as exercises.csv has them."""
    return {**result.to_json(), "exercises": [exercise_row(assignment, result.student, verdict)
                                              for verdict in result.exercises]}


def write_exports(course, assignment: str, out: Path, everyone: dict[str, SubmissionResult],
                  confinement: str = "") -> dict[str, Path]:
    """Write grades.csv (nbgrader's export), exercises.csv, report.md and report.json into ``out``,
    for ``everyone`` (student id -> result); ``confinement`` says how student code ran."""
    from autograder.grading import nbgrader_steps

    students = [everyone[s] for s in sorted(everyone)]
    files = {"grades": out / "grades.csv", "exercises": out / "exercises.csv",
             "report": out / "report.md", "json": out / "report.json", "log": out / "grading.log"}
    nbgrader_steps.export_grades(course, assignment, files["grades"])
    with open(files["exercises"], "w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, EXERCISE_COLUMNS)
        writer.writeheader()
        for student in students:
            for verdict in student.exercises:
                row = exercise_row(assignment, student.student, verdict)
                writer.writerow({**row, "points": f"{row['points']:g}", "max_points": f"{row['max_points']:g}"})
    files["json"].write_text(json.dumps({"assignment": assignment, "confinement": confinement,
                                         "students": [student_json(assignment, s) for s in students]}, indent=1),
                             encoding="utf-8")
    text = markdown(assignment, students, course)
    if confinement:
        note = ("Student code ran confined (bwrap): read-only system, no network, its own processes, "
                "only its working copy writable." if not confinement.startswith("UNCONFINED") else
                "**Student code ran UNCONFINED (--no-sandbox)**, with the rights of whoever graded: it could "
                "read and write what they can, and reach the network.")
        text = text.replace("\n\n", f"\n\n{note}\n\n", 1)
    files["report"].write_text(text, encoding="utf-8")
    files["explain"] = out / "explain"
    files["explain"].mkdir(exist_ok=True)
    for student in students:
        journal_path(out, student.student).write_text(journal_text(assignment, student), encoding="utf-8")
    return files


def journal_path(out: Path, student: str) -> Path:
    return out / "explain" / f"{student}.txt"


def journal_text(assignment: str, result: SubmissionResult) -> str:
    """Why a student got their score, cell by cell: every check the judge ran with its verdict and time,
    and what the guard saw; then the faults, the tampering evidence and the notes."""
    lines = [f"{assignment}, {result.student}: {result.score:g} / {result.max_score:g} ({result.status})", ""]
    lines += result.journal or ["(no test cell was judged: the notebook did not run)"]
    for title, items in (("faults", result.faults), ("tampering", result.tamper), ("notes", result.notes)):
        if items:
            lines += ["", f"{title}:"] + [f"- {item}" for item in items]
    return "\n".join(lines) + "\n"


def markdown(assignment: str, students: list, course) -> str:
    lines = [f"# Grading report: {assignment}", ""]
    graded = [s for s in students if s.status == SubmissionStatus.GRADED]
    lines.append(f"{len(students)} students: {len(graded)} graded, "
                 f"{sum(s.status == SubmissionStatus.NOT_GRADED for s in students)} not gradable (scored zero), "
                 f"{sum(s.status == SubmissionStatus.FAILED for s in students)} failed; "
                 f"{sum(bool(s.faults) for s in students)} with faults, "
                 f"{sum(bool(s.tamper) for s in students)} flagged for tampering.")
    lines += ["", "| student | score | status | faults | tampering |", "|---|---|---|---|---|"]
    for s in students:
        lines.append(f"| {s.student} | {s.score:g} / {s.max_score:g} | {s.status} | {len(s.faults)} | "
                     f"{'yes' if s.tamper else ''} |")
    for s in students:
        if not (s.faults or s.tamper or s.notes):
            continue
        lines += ["", f"## {s.student}: {s.score:g} / {s.max_score:g}", ""]
        lines += [f"- fault: {f}" for f in s.faults]
        lines += [f"- **tampering:** {t}" for t in s.tamper]
        lines += [f"- note: {n}" for n in s.notes]
    lines += ["", f"Feedback (hidden tests removed): `{course.assignment_folder('feedback', assignment, '<student>')}/`.",
              "Gradebook: nbgrader's, shown in formgrader.", ""]
    return "\n".join(lines)


def summary(result) -> str:
    """What the instructor reads at the end of ``autograder grade``."""
    students = result.students
    lines = [f"{result.assignment}: {len(result.graded)} graded, {len(result.resumed)} already graded and unchanged "
             f"(use --force to regrade), in {result.seconds:g} s."]
    if students:
        scores = sorted(s.score for s in students)
        top = max(s.max_score for s in students)
        lines.append(f"Scores out of {top:g}: median {scores[len(scores) // 2]:g}, "
                     f"{sum(s.score == s.max_score and s.max_score > 0 for s in students)} full marks, "
                     f"{sum(s.score == 0 for s in students)} zero.")
    trouble = [s for s in students if s.faults or s.status != SubmissionStatus.GRADED]
    if trouble:
        lines.append(f"{len(trouble)} with faults (scored, with the faults in the report): "
                     + ", ".join(s.student for s in trouble[:12]) + (" ..." if len(trouble) > 12 else ""))
    flagged = [s for s in students if s.tamper]
    if flagged:
        lines.append(f"{len(flagged)} flagged for tampering: " + ", ".join(s.student for s in flagged[:12])
                     + (" ..." if len(flagged) > 12 else ""))
    failed = [s for s in students if s.status == SubmissionStatus.FAILED]
    if failed:
        lines.append(f"{len(failed)} could not be graded at all, see the report: " + ", ".join(s.student for s in failed))
    lines.append("Outputs:")
    for label, key in (("grades (one row per student, for your LMS)", "grades"),
                       ("per-exercise breakdown", "exercises"), ("report", "report"), ("log", "log")):
        lines.append(f"  {label}: {result.files[key]}")
    if result.feedback is not None and any(s.feedback for s in students):
        lines.append(f"  feedback (no hidden tests): {result.feedback}/")
    lines.append("  gradebook: nbgrader's (open formgrader from JupyterLab's Nbgrader menu)")
    return "\n".join(lines)
