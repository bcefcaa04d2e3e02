"""A real nbgrader round trip in a throwaway course: release an assignment,
collect three submissions (complete, blank, one exercise wrong), autograde,
write feedback and export the grades, all with nbgrader's own commands."""

import copy
import csv
import shutil
import subprocess
import sys

import nbformat
import pytest

from autograder.release import tool_env
from support import ROOT, nbgrader_meta, solution_path

pytestmark = pytest.mark.slow

ASSIGNMENT = "02_manual_model"

# A realistic slip: the loss works, but lets an (N,) target broadcast against (N, 1) probabilities.
BROADCASTING_BCE = '''def bce_loss(probs, targets, eps=1e-7):
    p = probs.clamp(eps, 1 - eps)
    return -(targets * torch.log(p) + (1 - targets) * torch.log(1 - p)).mean()
'''


def nbgrader(course, *args):
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=tool_env(),
                          capture_output=True, text=True)
    assert done.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done


def completed(release, answers):
    """The released notebook with each solution cell filled in as ``answers`` says."""
    nb = copy.deepcopy(release)
    for cell in nb.cells:
        grade_id = nbgrader_meta(cell).get("grade_id")
        if nbgrader_meta(cell).get("solution") and grade_id in answers:
            cell.source = answers[grade_id]
    return nb


@pytest.fixture(scope="module")
def graded_course(tmp_path_factory):
    course = tmp_path_factory.mktemp("course")
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copytree(solution_path(ASSIGNMENT).parent, course / "source" / ASSIGNMENT)
    # The throwaway course keeps nbgrader's default folder names, except for the release.
    settings = ["--CourseDirectory.source_directory=source", "--CourseDirectory.release_directory=release"]
    nbgrader(course, "generate_assignment", ASSIGNMENT, "--force", *settings)

    release = nbformat.read(course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    solutions = {nbgrader_meta(c)["grade_id"]: c.source
                 for c in nbformat.read(solution_path(ASSIGNMENT), as_version=4).cells if nbgrader_meta(c).get("solution")}
    submissions = {
        "complete": completed(release, solutions),
        "blank": release,
        "one_wrong": completed(release, {**solutions, "bce_loss": BROADCASTING_BCE}),
    }
    for student, nb in submissions.items():
        folder = course / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{ASSIGNMENT}.ipynb")

    nbgrader(course, "autograde", ASSIGNMENT, "--create", *settings)
    nbgrader(course, "generate_feedback", ASSIGNMENT, *settings)
    nbgrader(course, "export", "--to", "grades.csv", *settings)
    with open(course / "grades.csv", newline="") as stream:
        scores = {row["student_id"]: (float(row["score"]), float(row["max_score"])) for row in csv.DictReader(stream)}
    return course, scores, solutions


def course_points() -> float:
    return sum(cell.metadata.nbgrader.get("points", 0) for cell in nbformat.read(solution_path(ASSIGNMENT), as_version=4).cells
               if cell.get("metadata", {}).get("nbgrader", {}).get("grade"))


def test_a_complete_submission_earns_full_marks(graded_course):
    _, scores, _ = graded_course
    score, max_score = scores["complete"]
    assert score == max_score == course_points() > 0


def test_a_blank_release_earns_nothing(graded_course):
    _, scores, _ = graded_course
    assert scores["blank"] == (0.0, course_points())


def test_one_wrong_exercise_loses_exactly_its_points(graded_course):
    _, scores, _ = graded_course
    # bce_loss is worth 2 visible + 1 hidden points; train_manual still works with it.
    assert scores["one_wrong"] == (course_points() - 3, course_points())


def test_feedback_shows_the_diagnosis_but_never_the_hidden_tests(graded_course):
    course, _, _ = graded_course
    html = (course / "feedback" / "one_wrong" / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text(encoding="utf-8")
    assert "BEGIN HIDDEN TESTS" not in html
    assert "num_features=13" not in html, "a hidden test's inputs reached the feedback"
    assert "broadcast" in html, "the feedback should carry the diagnosis of the broadcasting mistake"
