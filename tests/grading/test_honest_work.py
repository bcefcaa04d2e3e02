"""Honest work gets every point, through the real grader.

For every notebook, the instructor's solution typed into the release as a student would (each answer
cell filled in, nothing else changed) and every correct alternative the course keeps
(autograder/cases) are graded with `autograder grade`, confined (the default); the solution also
unconfined and on a Dask cluster (test_honest_work_elsewhere.py). Each scores full marks with no fault,
no note of trouble and nothing flagged by the guard: a false accusation is the worst bug a grader can have.
"""

from __future__ import annotations

import json

import nbformat
import pytest

from autograder import cases, registry
from autograder.cells import grade_id, is_solution_cell
from autograder.grading import sandbox
from autograder.grading.pipeline import Options, grade_class
from support import course_copy, release_path

pytestmark = [pytest.mark.slow]
NOTEBOOKS = registry.notebooks()
CONFINED = pytest.mark.skipif(bool(sandbox.problem()), reason=f"no confinement here: {sandbox.problem()}")


def _typed_in(code: str) -> str:
    """An answer cell as a student leaves it: the instructor's code without nbgrader's markers."""
    return "\n".join(line for line in code.splitlines()
                     if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION")) + "\n"


def submissions(notebook: str, with_alternatives: bool) -> dict[str, nbformat.NotebookNode]:
    """The release with the solution typed in; with alternatives, one more notebook per round of them
    (the k-th alternative of every exercise that has one, the solution elsewhere)."""
    release = nbformat.read(release_path(notebook), as_version=4)
    answers = {name: _typed_in(code) for name, code in cases.solution_cells(notebook).items()}
    variants = {"solution": {}}
    if with_alternatives:
        by_exercise: dict[str, list] = {}
        for case in cases.cases_of(notebook):
            if isinstance(case, cases.Alternative):
                by_exercise.setdefault(case.exercise, []).append(case)
        for k in range(max((len(v) for v in by_exercise.values()), default=0)):
            chosen = [found[k] for found in by_exercise.values() if k < len(found)]
            variants[f"alternative-{k + 1}"] = {name: code for case in chosen
                                                for name, code in {case.exercise: case.code, **case.cells}.items()}
    made = {}
    for student, replaced in variants.items():
        nb = nbformat.from_dict(json.loads(json.dumps(release)))
        for cell in nb.cells:
            if is_solution_cell(cell) and grade_id(cell) in answers:
                cell.source = replaced.get(grade_id(cell), answers[grade_id(cell)])
        made[student] = nb
    return made


def grade(tmp, notebook: str, students: dict, **options):
    course = course_copy(tmp / "course", notebook).root
    folder = tmp / "class"
    folder.mkdir()
    for student, nb in students.items():
        nbformat.write(nb, folder / f"{student}.ipynb")
    return grade_class(Options(notebook, folder, course, jobs=2, progress=False, **options))


def assert_full_marks_and_nothing_flagged(result, how: str) -> None:
    for student in result.students:
        lost = [f"{v.exercise}: {v.grade_id}: {v.message}" for v in student.exercises if v.points < v.max_points]
        assert student.score == student.max_score > 0, f"{how}, {student.student}: {student.score}/{student.max_score}: {lost}"
        assert student.tamper == [], f"{how}, {student.student} was flagged: {student.tamper}"
        assert student.faults == [], f"{how}, {student.student}: {student.faults}"
        assert student.notes == [], f"{how}, {student.student}: {student.notes}"


@CONFINED
@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_the_solution_and_every_alternative_get_full_marks_confined_and_unflagged(notebook, tmp_path):
    result = grade(tmp_path, notebook, submissions(notebook, with_alternatives=True))
    assert len(result.students) >= 2, "every notebook keeps correct alternatives"
    assert_full_marks_and_nothing_flagged(result, "confined")
