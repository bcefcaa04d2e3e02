"""What grading found, in the files instructors load: grades, per-exercise breakdown, report.

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
import re
from dataclasses import asdict
from pathlib import Path

from nbformat import NotebookNode

from autograder import registry
from autograder.cells import cell_label, is_test_cell
from autograder.verdicts import RUN_ERRORS, cell_verdicts, exercise_verdicts

MEMORY = re.compile(r"(?i)can't allocate memory|cannot allocate memory|std::bad_alloc|out of memory|not enough memory")
WARNING = re.compile(r"(?i)warn")
SYNTAX = ("SyntaxError", "IndentationError", "TabError")


def _label(nb: NotebookNode, index: int) -> str:
    return cell_label(nb, index, registry.exercise_of_grade_id)


def _size(chars: int) -> str:
    return f"{chars / 1e6:.1f} MB" if chars >= 1e5 else f"{chars / 1e3:.0f} kB"


def faults(executed: NotebookNode, log, memory_limit: int | None) -> tuple[list[str], list[str]]:
    """(what went wrong and cost points, facts that cost nothing) in an autograded notebook: the run's
    own faults (timeouts, a dead or stuck kernel), then what the cells' outputs show."""
    found, notes = list(log.faults), []
    for index, cell in enumerate(executed.cells):
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            if output.output_type == "error" and output.get("ename") not in RUN_ERRORS:  # those are the run's faults
                ename, evalue = output.get("ename", ""), output.get("evalue", "")
                if ename == "MemoryError" or MEMORY.search(evalue):
                    limit = f"{memory_limit / 2**30:g} GiB" if memory_limit else "the machine's memory"
                    found.append(f"{_label(executed, index)} ran out of memory: each notebook may use at most {limit} "
                                 "(RLIMIT_AS on its kernel process)")
                elif ename in SYNTAX:
                    found.append(f"{_label(executed, index)} has a syntax error: {evalue}")
            elif (output.output_type == "stream" and output.get("name") == "stderr"
                  and WARNING.search(output.get("text", "")) and not is_test_cell(cell)):
                notes.append(f"{_label(executed, index)} printed warnings (they cost no points)")
    for index, dropped in sorted(log.truncated.items()):
        where = _label(executed, index) if index < len(executed.cells) else f"cell {index + 1}"
        notes.append(f"{where} printed {_size(dropped)} more than nbgrader keeps; the rest was dropped")
    return list(dict.fromkeys(found)), list(dict.fromkeys(notes))


def exercise_rows(assignment: str, student: str, cells: list, executed: NotebookNode | None,
                  records: dict[int, list]) -> list[dict]:
    """One row per exercise: points and maximum summed over its test cells (as the gradebook holds them),
    and the first diagnosis (see autograder.verdicts)."""
    points = {grade.grade_id: (grade.points, grade.max_points) for grade in cells}
    verdicts = cell_verdicts(executed, records, points, registry.exercise_of_grade_id)
    rows = []
    for verdict in exercise_verdicts(executed or NotebookNode(cells=[]), verdicts, _exercise_order(assignment)):
        rows.append({"assignment": assignment, "student_id": student, "exercise": verdict.exercise,
                     "points": verdict.points, "max_points": verdict.max_points, "status": verdict.outcome,
                     "code": str(verdict.code), "reason": f"{verdict.grade_id}: {verdict.message}" if verdict.code else ""})
    return rows


def _exercise_order(assignment: str) -> list[str]:
    try:
        return registry.exercises(assignment)
    except KeyError:
        return []


EXERCISE_COLUMNS = ["assignment", "student_id", "exercise", "points", "max_points", "status", "code", "reason"]


def write_exports(course, assignment: str, out: Path, everyone: dict, confinement: str = "") -> dict[str, Path]:
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
            for row in student.exercises:
                writer.writerow({**row, "points": f"{row['points']:g}", "max_points": f"{row['max_points']:g}"})
    files["json"].write_text(json.dumps({"assignment": assignment, "confinement": confinement,
                                         "students": [asdict(s) for s in students]}, indent=1), encoding="utf-8")
    text = markdown(assignment, students, course)
    if confinement:
        note = ("Student code ran confined (bwrap): read-only system, no network, its own processes, "
                "only its working copy writable." if not confinement.startswith("UNCONFINED") else
                "**Student code ran UNCONFINED (--no-sandbox)**, with the rights of whoever graded: it could "
                "read and write what they can, and reach the network.")
        text = text.replace("\n\n", f"\n\n{note}\n\n", 1)
    files["report"].write_text(text, encoding="utf-8")
    return files


def markdown(assignment: str, students: list, course) -> str:
    lines = [f"# Grading report: {assignment}", ""]
    graded = [s for s in students if s.status == "graded"]
    lines.append(f"{len(students)} students: {len(graded)} graded, "
                 f"{sum(s.status == 'not graded' for s in students)} not gradable (scored zero), "
                 f"{sum(s.status == 'failed' for s in students)} failed; "
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
    lines += ["", f"Feedback (hidden tests removed): `{course.folder('feedback')}/<student>/{assignment}/`.",
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
    trouble = [s for s in students if s.faults or s.status != "graded"]
    if trouble:
        lines.append(f"{len(trouble)} with faults (scored, with the faults in the report): "
                     + ", ".join(s.student for s in trouble[:12]) + (" ..." if len(trouble) > 12 else ""))
    flagged = [s for s in students if s.tamper]
    if flagged:
        lines.append(f"{len(flagged)} flagged for tampering: " + ", ".join(s.student for s in flagged[:12])
                     + (" ..." if len(flagged) > 12 else ""))
    failed = [s for s in students if s.status == "failed"]
    if failed:
        lines.append(f"{len(failed)} could not be graded at all, see the report: " + ", ".join(s.student for s in failed))
    lines.append("Outputs:")
    for label, key in (("grades (one row per student, for your LMS)", "grades"),
                       ("per-exercise breakdown", "exercises"), ("report", "report"), ("log", "log")):
        lines.append(f"  {label}: {result.files[key]}")
    feedback = next((s.feedback for s in students if s.feedback), "")
    if feedback:
        lines.append(f"  feedback (no hidden tests): {Path(feedback).parent.parent.parent}/<student>/{result.assignment}/")
    lines.append("  gradebook: nbgrader's (open formgrader from JupyterLab's Nbgrader menu)")
    return "\n".join(lines)
