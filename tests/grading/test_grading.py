"""`autograder grade` on one shared synthetic class that holds every kind of submission an
instructor meets: good work, mistakes, broken files, runaway code and tampering. The class is
graded once (in parallel, from a zip) into a throwaway nbgrader course; each test then reads what
that run left: scores, faults, the per-exercise breakdown, feedback, nbgrader's gradebook. A
subset is also graded by nbgrader's own commands alone, once, in a throwaway course (a real nbgrader
round trip: release, autograde, feedback, export) to prove the grades identical."""

import csv
import shutil
import subprocess
import sys
import zipfile

import nbformat
import pytest

from autograder.grading import nbgrader_steps
from autograder.grading.pipeline import Options, grade_class
from autograder.grading.sample import FAULTS, TAMPERING, write_class
from autograder.release import tool_env
from support import ROOT, course_copy, release_path, solution_path

pytestmark = pytest.mark.slow

A = "02_manual_model"
TIMEOUT = 15  # seconds per cell: long enough for any real cell under load, short for the endless loops
KINDS = ["correct", "blank", "mistake_1", "warnings", "syntax_error", "edited_test_cell", "deleted_test_cell",
         *FAULTS, *TAMPERING]
# What each kind earns out of 19 (init_params 3, forward 3, bce_loss 3, sgd_step 3, train_manual 4,
# fit_raw_measurements 3).
EXPECTED = {
    "correct": 19, "blank": 0, "mistake_1": 16, "warnings": 19, "edited_test_cell": 19,
    # forward broken: its 3 points, and train_manual's 4 and fit_raw_measurements' 3, which use it, are lost
    "syntax_error": 9, "deleted_test_cell": 9,
    "endless_loop": 19, "memory_bomb": 19, "flood_output": 19,  # stopped in an ungraded cell; nothing else lost
    "stubborn_loop": 3,  # runs after init_params' tests; its kernel is shut down, later tests score zero
    # the kernel dies in a cell of no exercise, after forward's tests: a new kernel grades the rest
    "os_exit": 19, "segfault": 19,
    "renamed": 19, "missing": 0, "invalid_json": 0, "empty_file": 0, "foreign_notebook": 0,
    "deleted_exercise": 9,  # init_params (3), and train_manual (4) and fit_raw_measurements (3), which need it
    "kill_parent": 19,  # kills whoever started its kernel (confined: the sandbox's pid 1, which ignores it)
    "tamper_check": 0, "tamper_registry": 0, "tamper_traceback": 0,  # blank work that tries to pass anyway
    "tamper_torch": 9, "always_equal": 9,  # the same as the honest mistakes underneath
}
# Each fault (report.json) or note must say what happened: (kind, words).
SAYS = {
    "endless_loop": "ran longer than 15 s", "stubborn_loop": "did not stop when interrupted",
    "os_exit": "exited with code 1", "segfault": "SIGSEGV", "memory_bomb": "RLIMIT_AS",
    "syntax_error": "syntax error", "invalid_json": "not valid JSON", "empty_file": "empty file",
    "missing": "no notebook was handed in", "foreign_notebook": "not a copy of",
    "renamed": "renamed notebook", "flood_output": "more than nbgrader keeps", "warnings": "printed warnings",
    "edited_test_cell": "edited test cells", "deleted_test_cell": "deleted test cells",
}
# Compared with plain nbgrader autograde: everything it can grade, and one trick that fools it.
WITH_NBGRADER = ["correct", "blank", "mistake_1", "warnings", "deleted_test_cell", "tamper_check"]


def make_course(where, assignment=A):
    return course_copy(where, assignment).root


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("grading")
    course = make_course(tmp / "course")
    students = write_class(ROOT, A, tmp / "class.zip", kinds=KINDS, layout="zip")
    options = Options(A, tmp / "class.zip", course, jobs=2, timeout=TIMEOUT, memory_limit=2 * 2**30, progress=False)
    result = grade_class(options)
    by_kind = {kind: student for student, kind in students.items()}
    return {"tmp": tmp, "course": course, "options": options, "result": result, "by_kind": by_kind,
            "students": {s.student: s for s in result.students}}


def grades_csv(path):
    with open(path, newline="") as stream:
        return {row["student_id"]: row for row in csv.DictReader(stream)}


def test_every_student_gets_a_grade_and_nothing_breaks_the_run(graded):
    result = graded["result"]
    assert sorted(result.graded) == sorted(graded["by_kind"].values()) and result.resumed == []
    rows = grades_csv(result.files["grades"])
    assert sorted(rows) == sorted(graded["by_kind"].values()), "one row per student in grades.csv"
    assert all(s.status != "failed" for s in result.students)
    scores = {kind: float(rows[student]["score"]) for kind, student in graded["by_kind"].items()}
    assert scores == {kind: float(EXPECTED[kind]) for kind in KINDS}
    assert all(row["max_score"] == "19.0" and row["assignment"] == A for row in rows.values())


@pytest.mark.parametrize("kind", sorted(SAYS))
def test_each_fault_gets_a_reason(graded, kind):
    student = graded["students"][graded["by_kind"][kind]]
    said = " | ".join(student.faults + student.notes)
    assert SAYS[kind] in said, f"{kind}: {said}"


def test_faults_that_cost_points_are_reported_and_honest_work_has_none(graded):
    students, by_kind = graded["students"], graded["by_kind"]
    for kind in ("correct", "blank", "mistake_1", "warnings", "renamed"):
        assert students[by_kind[kind]].faults == [], kind
    for kind in ("endless_loop", "stubborn_loop", "os_exit", "segfault", "memory_bomb", "invalid_json", "missing"):
        assert students[by_kind[kind]].faults, kind
    assert "os.kill" in " ".join(students[by_kind["kill_parent"]].tamper)


def test_tampering_is_flagged_and_does_not_pay(graded):
    students, by_kind = graded["students"], graded["by_kind"]
    for kind in TAMPERING:
        assert students[by_kind[kind]].tamper, f"{kind} was not flagged"
    for kind in ("correct", "blank", "mistake_1", "warnings", "endless_loop", "flood_output"):
        assert students[by_kind[kind]].tamper == [], f"{kind} was flagged: {students[by_kind[kind]].tamper}"
    found = " ".join(students[by_kind["tamper_check"]].tamper)
    assert "autograder.check" in found and "put back" in found
    assert "internals" in " ".join(students[by_kind["tamper_registry"]].tamper)
    assert "torch.allclose" in " ".join(students[by_kind["tamper_torch"]].tamper)
    assert "showtraceback" in " ".join(students[by_kind["tamper_traceback"]].tamper)
    assert "__eq__" in " ".join(students[by_kind["always_equal"]].tamper)


def test_the_exercise_breakdown_names_each_mistake(graded):
    with open(graded["result"].files["exercises"], newline="") as stream:
        rows = {(r["student_id"], r["exercise"]): r for r in csv.DictReader(stream)}
    by_kind = graded["by_kind"]
    assert len(rows) == 6 * len(by_kind)
    assert rows[(by_kind["correct"], "train_manual")]["status"] == "passed"
    bce = rows[(by_kind["mistake_1"], "bce_loss")]
    assert (bce["points"], bce["max_points"], bce["status"], bce["code"]) == ("0", "3", "failed", "broadcast_shape")
    assert "broadcast" in bce["reason"].lower()
    assert rows[(by_kind["blank"], "forward")]["code"] == "not_implemented"
    assert rows[(by_kind["stubborn_loop"], "bce_loss")]["code"] == "kernel_stopped"
    assert rows[(by_kind["invalid_json"], "init_params")]["code"] == "not_graded"
    assert rows[(by_kind["tamper_check"], "init_params")]["code"] == "not_implemented"


def test_the_journal_explains_each_score_check_by_check(graded):
    """exports/ASSIGNMENT/explain/ID.txt (printed by --explain): every check the judge ran, in its cell,
    with its verdict; the mistake where it was found; what the guard found in a tampering notebook."""
    from autograder.grading.report import journal_path

    out, by_kind = graded["result"].out, graded["by_kind"]
    correct = journal_path(out, by_kind["correct"]).read_text(encoding="utf-8")
    assert correct.startswith(f"{A}, {by_kind['correct']}: 19 / 19")
    assert "judge: bce_loss (hidden tests)" in correct and ": failed" not in correct
    mistake = journal_path(out, by_kind["mistake_1"]).read_text(encoding="utf-8")
    assert "judge: bce_loss" in mistake and "failed broadcast_shape" in mistake
    tampered = journal_path(out, by_kind["tamper_torch"]).read_text(encoding="utf-8")
    assert "guard:" in tampered and "torch.allclose" in tampered


def test_feedback_for_everyone_never_shows_hidden_tests(graded):
    course = graded["course"]
    source = nbformat.read(solution_path(A), as_version=4)
    release = nbformat.read(release_path(A), as_version=4)
    hidden = nbgrader_steps.hidden_lines(source, release)
    assert hidden, "the assignment has hidden tests to protect"
    for student in graded["students"].values():
        html = (course / "feedback" / student.student / A / f"{A}.html").read_text(encoding="utf-8")
        assert nbgrader_steps.leaked(html, hidden) == [], student.student
        assert "num_features=13" not in html
    mistake = graded["students"][graded["by_kind"]["mistake_1"]]
    assert "broadcast" in open(mistake.feedback, encoding="utf-8").read()


def test_the_gradebook_is_nbgraders_and_formgrader_reads_it(graded):
    from nbgrader.apps import NbGraderAPI

    from autograder.course import Course, working_directory

    course = graded["course"]
    loaded = Course.load(course)
    api = NbGraderAPI(coursedir=loaded.coursedir(), config=loaded.config)
    with working_directory(course):
        submissions = {s["student"]: s for s in api.get_submissions(A)}
    rows = grades_csv(graded["result"].files["grades"])
    assert sorted(submissions) == sorted(rows)
    for student, submission in submissions.items():
        assert submission["autograded"] and submission["score"] == float(rows[student]["score"])


def test_a_second_run_resumes_and_gives_the_same_grades(graded):
    before = graded["result"].files["grades"].read_text()
    again = grade_class(graded["options"])
    assert again.graded == [] and sorted(again.resumed) == sorted(graded["by_kind"].values())
    assert again.files["grades"].read_text() == before


def test_a_changed_submission_is_regraded_and_force_regrades_one_student(graded, tmp_path):
    tmp, by_kind = graded["tmp"], graded["by_kind"]
    # A copy of the graded course: the shared one stays as the other tests expect it.
    course = tmp_path / "course"
    shutil.copytree(graded["course"], course)
    changed = tmp_path / "class-changed.zip"
    blank, correct = by_kind["blank"], by_kind["correct"]
    with zipfile.ZipFile(tmp / "class.zip") as old, zipfile.ZipFile(changed, "w") as new:
        correct_work = old.read(f"class/{correct}/{A}.ipynb")
        for item in old.infolist():
            new.writestr(item, correct_work if item.filename == f"class/{blank}/{A}.ipynb" else old.read(item))
    options = Options(**{**graded["options"].__dict__, "course": course, "out": None})
    result = grade_class(Options(**{**options.__dict__, "submissions": changed}))
    assert result.graded == [blank]
    assert {s.student: s.score for s in result.students}[blank] == 19
    forced = grade_class(Options(**{**options.__dict__, "submissions": changed, "student": correct, "force": True}))
    assert forced.graded == [correct] and forced.students[0].score == 19
    assert len(grades_csv(forced.files["grades"])) == len(by_kind), "the export still covers the whole class"


@pytest.fixture(scope="module")
def plain_nbgrader(graded, tmp_path_factory):
    """The WITH_NBGRADER submissions, as the graded course collected them, in a throwaway course
    graded by nbgrader's own commands alone, one after the other: generate_assignment (the release),
    autograde, generate_feedback, export."""
    tmp = tmp_path_factory.mktemp("plain-nbgrader")
    course = make_course(tmp / "nbgrader-course")
    by_kind = graded["by_kind"]
    for kind in WITH_NBGRADER:
        shutil.copytree(graded["course"] / "submitted" / by_kind[kind], course / "submitted" / by_kind[kind])
    settings = [f"--Execute.timeout={TIMEOUT}", f"--CourseDirectory.release_directory={tmp / 'release'}"]
    for command in (["generate_assignment", A, "--force"], ["autograde", A], ["generate_feedback", A],
                    ["export", "--to", str(tmp / "grades.csv")]):
        done = subprocess.run([sys.executable, "-m", "nbgrader", *command, *settings], cwd=course, env=tool_env(),
                              capture_output=True, text=True)
        assert done.returncode == 0, f"nbgrader {' '.join(command)} failed:\n{done.stdout}\n{done.stderr[-2000:]}"
    rows = grades_csv(tmp / "grades.csv")
    scores = {kind: (float(rows[by_kind[kind]]["score"]), float(rows[by_kind[kind]]["max_score"]))
              for kind in WITH_NBGRADER}
    return {"course": course, "scores": scores}


def test_grades_equal_plain_nbgrader_autograde(graded, plain_nbgrader):
    """The same submitted notebooks, graded by nbgrader's own command, one after the other."""
    by_kind = graded["by_kind"]

    def cells(root):
        from nbgrader.api import Gradebook

        with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
            return {(kind, grade.name): grade.score for kind in WITH_NBGRADER
                    for grade in gb.find_submission_notebook(A, A, by_kind[kind]).grades}

    ours, theirs = cells(graded["course"]), cells(plain_nbgrader["course"])
    honest = {key: score for key, score in ours.items() if key[0] != "tamper_check"}
    assert honest == {key: score for key, score in theirs.items() if key[0] != "tamper_check"}
    # nbgrader's test cells import the replaced `check` and pass; ours import the real one.
    assert sum(s for (kind, _), s in theirs.items() if kind == "tamper_check") == 19
    assert sum(s for (kind, _), s in ours.items() if kind == "tamper_check") == 0


# --- the course with nbgrader alone: a real round trip ----------------------------------------------
# (released, autograded, fed back and exported by nbgrader's commands, in plain_nbgrader's course)


def course_points() -> float:
    return sum(cell.metadata.nbgrader.get("points", 0) for cell in nbformat.read(solution_path(A), as_version=4).cells
               if cell.get("metadata", {}).get("nbgrader", {}).get("grade"))


def test_a_complete_submission_earns_full_marks(plain_nbgrader):
    score, max_score = plain_nbgrader["scores"]["correct"]
    assert score == max_score == course_points() > 0


def test_a_blank_release_earns_nothing(plain_nbgrader):
    assert plain_nbgrader["scores"]["blank"] == (0.0, course_points())


def test_one_wrong_exercise_loses_exactly_its_points(plain_nbgrader):
    # mistake_1 lets an (N,) target broadcast against (N, 1) probabilities in bce_loss: worth 2 visible
    # + 1 hidden points; train_manual still works with it.
    assert plain_nbgrader["scores"]["mistake_1"] == (course_points() - 3, course_points())


def test_feedback_shows_the_diagnosis_but_never_the_hidden_tests(graded, plain_nbgrader):
    student = graded["by_kind"]["mistake_1"]
    html = (plain_nbgrader["course"] / "feedback" / student / A / f"{A}.html").read_text(encoding="utf-8")
    assert "BEGIN HIDDEN TESTS" not in html
    assert "num_features=13" not in html, "a hidden test's inputs reached the feedback"
    assert "broadcast" in html, "the feedback should carry the diagnosis of the broadcasting mistake"


def test_an_untouched_release_that_plots_is_never_flagged(tmp_path):
    """matplotlib changes the kernel on first use (the first figure registers the inline backend's
    hooks). In 09 the given cells plot before the first test cell: none of it is tampering, even when
    nothing is written yet. (The solution and its alternatives, which also train, so that the first
    optimizer rewraps torch.manual_seed and its class's step: test_honest_work.py.)"""
    assignment = "09_capstone"
    course = make_course(tmp_path / "course", assignment)
    write_class(ROOT, assignment, tmp_path / "class", kinds=["blank"], layout="folders")
    result = grade_class(Options(assignment, tmp_path / "class", course, jobs=1, timeout=60, progress=False))
    assert [(s.tamper, s.faults) for s in result.students] == [([], [])]
    assert result.students[0].max_score > 0


# --- grading on a Dask cluster (autograder/grading/cluster.py) --------------------------------------

# The kinds that take each path of a worker: honest work, nbgrader's own retry (deleted test cells),
# a placeholder, a dead kernel, a killed fork server, tampering.
ON_CLUSTER = ["correct", "blank", "mistake_1", "deleted_test_cell", "invalid_json", "os_exit", "kill_parent",
              "tamper_check"]
PROBE = "probe-099"  # honest work that also tries to read the course from its worker


def _gradebook_rows(course, students):
    """Every gradebook row of the students ({student: label}), keyed by label."""
    from nbgrader.api import Gradebook

    rows = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for student, label in students.items():
            notebook = gb.find_submission_notebook(A, A, student)
            rows[label] = ({g.name: (g.auto_score, g.needs_manual_grade) for g in notebook.grades},
                           {c.name: c.auto_comment for c in notebook.comments}, notebook.late_submission_penalty)
    return rows


def _descendants(process):
    try:
        return process.children(recursive=True)
    except Exception:
        return []


def _kill_a_worker_mid_notebook(stop, killed):
    """Wait until a worker of this process's LocalCluster is running a notebook (its sandbox holds a
    fork server and a kernel forked from it), then kill that worker outright."""
    import os
    import signal
    import time

    import psutil

    me = psutil.Process(os.getpid())
    while not stop.is_set():
        for process in _descendants(me):
            try:
                if process.name() != "bwrap":
                    continue
                pythons = [p for p in _descendants(process) if p.name().startswith("python")]
                if len(pythons) >= 2:  # the fork server and a kernel
                    worker = process.parent()
                    time.sleep(1.0)  # well into the notebook
                    os.kill(worker.pid, signal.SIGKILL)
                    killed.append(worker.pid)
                    return
            except psutil.Error:
                continue
        time.sleep(0.2)


@pytest.fixture(scope="module")
def dask_scheduler():
    """A LocalCluster of two one-thread worker processes, shared by the cluster tests (through
    --scheduler, as a real cluster is used; --cluster N starts one the same way)."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=40) as local:
        yield local.scheduler_address


@pytest.fixture(scope="module")
def on_cluster(tmp_path_factory, dask_scheduler):
    """A part of the class graded on a LocalCluster of two workers, one of them killed mid-notebook."""
    import threading

    from autograder.grading.sample import Assignment as SampleAssignment, build

    tmp = tmp_path_factory.mktemp("cluster")
    course = make_course(tmp / "course")
    students = write_class(ROOT, A, tmp / "class", kinds=ON_CLUSTER, layout="folders")
    nb = nbformat.reads(build(SampleAssignment(ROOT, A), "correct")[1].decode(), as_version=4)
    targets = [course / "gradebook.db", course / solution_path(A).relative_to(ROOT), course / "submitted",
               course / "nbgrader_config.py", tmp / "class"]
    nb.cells.append(nbformat.v4.new_code_cell(
        "import os\n"
        f"for target in {[str(t) for t in targets]!r}:\n"
        "    try:\n"
        "        os.listdir(target) if os.path.isdir(target) else open(target, 'rb').read(1)\n"
        "        print('READ', target)\n"
        "    except OSError as error:\n"
        "        print('DENIED', target, type(error).__name__)\n"
        "print('HERE', sorted(name for name in os.listdir('.') if not name.startswith('.')))\n"))
    (tmp / "class" / PROBE).mkdir()
    nbformat.write(nb, tmp / "class" / PROBE / f"{A}.ipynb")
    options = Options(A, tmp / "class", course, timeout=TIMEOUT, memory_limit=2 * 2**30, progress=False,
                      scheduler=dask_scheduler)
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_a_worker_mid_notebook, args=(stop, killed), daemon=True)
    killer.start()
    try:
        result = grade_class(options)
    finally:
        stop.set()
    return {"course": course, "options": options, "result": result, "killed": killed,
            "students": {**students, PROBE: "correct"}}


def test_a_cluster_grades_exactly_as_local_grading_even_when_a_worker_dies(graded, on_cluster):
    assert on_cluster["killed"], "no worker was killed while it ran a notebook"
    result = on_cluster["result"]
    assert result.resumed == [] and sorted(result.graded) == sorted(on_cluster["students"])
    assert all(s.status != "failed" for s in result.students), [s.faults for s in result.students]
    theirs = {student: kind for student, kind in on_cluster["students"].items() if student != PROBE}
    ours = {graded["by_kind"][kind]: kind for kind in ON_CLUSTER}
    assert _gradebook_rows(on_cluster["course"], theirs) == _gradebook_rows(graded["course"], ours)
    local = {graded["by_kind"][kind]: s for s in graded["result"].students for kind in ON_CLUSTER
             if s.student == graded["by_kind"][kind]}
    for s in result.students:
        if s.student == PROBE:
            continue
        twin = local[graded["by_kind"][on_cluster["students"][s.student]]]
        assert (s.score, s.max_score, s.status, bool(s.tamper)) == (twin.score, twin.max_score, twin.status,
                                                                     bool(twin.tamper)), s.student
        assert [e.points for e in s.exercises] == [e.points for e in twin.exercises], s.student
        assert s.feedback and open(s.feedback, encoding="utf-8").read(), s.student
    # nothing graded twice: each outcome was recorded in the gradebook once
    log = (on_cluster["course"] / "exports" / A / "grading.log").read_text(encoding="utf-8")
    for student in on_cluster["students"]:
        assert log.count(f"recorded {student} ") == 1, student


def test_student_code_on_a_worker_cannot_read_the_course(on_cluster):
    course = on_cluster["course"]
    executed = nbformat.read(course / "autograded" / PROBE / A / f"{A}.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for o in executed.cells[-1].outputs)
    assert "READ" not in printed and printed.count("DENIED") == 5, printed
    assert "HERE ['02_manual_model.ipynb']" in printed, printed  # its own working copy, nothing else
    probe = next(s for s in on_cluster["result"].students if s.student == PROBE)
    assert probe.score == 19


def test_a_second_cluster_run_resumes_without_starting_a_cluster(on_cluster):
    again = grade_class(Options(**{**on_cluster["options"].__dict__, "scheduler": "tcp://127.0.0.1:9"}))
    assert again.graded == [] and sorted(again.resumed) == sorted(on_cluster["students"])


def test_a_graders_manual_score_survives_a_cluster_regrade_and_shows_in_the_feedback(on_cluster, dask_scheduler,
                                                                                     tmp_path):
    from nbgrader.api import Gradebook

    course = tmp_path / "course"
    shutil.copytree(on_cluster["course"], course)
    student = next(s for s, kind in on_cluster["students"].items() if kind == "mistake_1")
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        grade = gb.find_grade("test_forward", A, A, student)
        grade.manual_score = 2.75
        gb.db.commit()
    options = Options(**{**on_cluster["options"].__dict__, "course": course, "out": None, "student": student,
                         "force": True, "scheduler": dask_scheduler})
    result = grade_class(options)
    assert result.graded == [student] and result.students[0].status == "graded"
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        grade = gb.find_grade("test_forward", A, A, student)
        assert (grade.manual_score, grade.needs_manual_grade) == (2.75, True)  # as nbgrader's SaveAutoGrades
    assert "2.75" in open(result.students[0].feedback, encoding="utf-8").read()
