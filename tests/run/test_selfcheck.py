"""`autograder check`: a learner alone finds out what is right and wrong in a
notebook, and why. Bad input gets a clear message and the rest still runs;
the verdicts are nbgrader's own; no traceback ever reaches the learner."""

import shutil
import subprocess
import sys
from unittest import mock

import nbformat
import pytest
from nbgrader.utils import determine_grade

from autograder import registry, selfcheck
from autograder.execute import NotebookRun, cell_label
from autograder.verdicts import CellVerdict
from autograder.results import CheckResult
from support import COURSE, block, check, exercise_line, flat, planted, release_path, solution_path

NB = "03_nn_module"

# One notebook, five outcomes: an exercise that passes, a wrong answer the
# visible test catches (W starts at zeros), one that passes the visible test but
# not the hidden one (the notebook's circle written in by hand), a cell that
# raises before it defines its exercise, and code that raises while checked.
MIXED = {
    "ManualLogisticModule": '''class ManualLogisticModule(nn.Module):
    def __init__(self, num_features):
        super().__init__()
        self.W = nn.Parameter(torch.zeros(num_features, 1))
        self.b = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return torch.sigmoid(x @ self.W + self.b)
''',
    "CircleClassifier": '''class CircleClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(1, 1)

    def forward(self, x):
        return torch.sigmoid(self.linear(((x - torch.tensor([0.3, -0.2])) ** 2).sum(dim=1, keepdim=True)))
''',
    "count_parameters": '''from torchinfo import sumary

def count_parameters(model, trainable_only=True):
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
''',
    "load_manual_weights": '''def load_manual_weights(model, W, b):
    with torch.no_grad():
        model.linear.weights.copy_(W.T)
        model.linear.bias.copy_(b)
''',
}

SOLVED_COUNT = '''def count_parameters(model, trainable_only=True):
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
'''


# --- bad input: no kernel needed -----------------------------------------------


@pytest.mark.parametrize("content, expected", [
    ("{ this is not json", "not a readable notebook"),
    ("", "the file is empty"),
    (nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)")])),
     "is not one of the course's notebooks"),
])
def test_a_file_that_is_not_a_course_notebook_gets_one_clear_sentence(tmp_path, content, expected):
    path = tmp_path / "mine.ipynb"
    path.write_text(content)
    status, output, _ = check(path)
    assert status == 1
    assert flat(output).startswith(f"✘ {path}")
    assert expected in flat(output)
    assert "Traceback" not in output


def test_a_path_that_is_no_notebook_is_named(tmp_path):
    status, output, _ = check(tmp_path / "missing.ipynb", tmp_path)
    assert status == 1
    assert "missing.ipynb: no such file" in flat(output)
    assert "not a notebook (expected a .ipynb file)" in flat(output)


def test_an_unexpected_failure_is_one_line_and_the_next_notebook_still_runs(tmp_path):
    broken = tmp_path / "broken.ipynb"
    shutil.copy(release_path(NB), broken)
    with mock.patch.object(selfcheck, "run", side_effect=[RuntimeError("no kernel"), OSError("disk full")]):
        status, output, reports = check(broken, broken)
    assert status == 1 and len(reports) == 2
    assert "the notebook could not be run (RuntimeError: no kernel)" in flat(output)
    assert "(OSError: disk full)" in flat(output)
    assert "Traceback" not in output


def test_from_a_shell_a_broken_notebook_prints_no_traceback(tmp_path):
    (tmp_path / "broken.ipynb").write_text('{"cells": [')
    done = subprocess.run([sys.executable, "-m", "autograder", "check", "broken.ipynb"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert done.returncode == 1
    assert "broken.ipynb: not a readable notebook" in flat(done.stdout)
    assert "Traceback" not in done.stdout + done.stderr


def test_a_missing_workspace_is_explained_and_nothing_is_created(tmp_path):
    status, output, _ = check("--dir", tmp_path / "my-work")
    assert status == 1
    assert (f"There is no workspace at {tmp_path / 'my-work'}/ yet: `autograder workspace --dir {tmp_path / 'my-work'}` "
            "creates it.") in output
    assert not (tmp_path / "my-work").exists()


# --- the student pack: a course with the release only -------------------------------


PACKED = "02_manual_model"


def _pack_like_course(where):
    """A course as the student pack holds it: the configuration and the release of PACKED, no source."""
    shutil.copy(COURSE.root / "nbgrader_config.py", where / "nbgrader_config.py")
    shutil.copytree(release_path(PACKED).parent, where / COURSE.release.relative_to(COURSE.root) / PACKED)
    return where


def _stakes_of(notebook):
    """Per exercise, (public points, hidden points), read from the instructor's notebook: a test cell is
    hidden where its source marks hidden tests."""
    stakes = {}
    for cell in nbformat.read(solution_path(notebook), as_version=4).cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            exercise = registry.exercise_of_grade_id(meta["grade_id"], notebook)
            public, hidden = stakes.get(exercise, (0, 0))
            if "### BEGIN HIDDEN TESTS" in cell.source:
                hidden += meta["points"]
            else:
                public += meta["points"]
            stakes[exercise] = (public, hidden)
    return stakes


@pytest.fixture
def pack_course(tmp_path, monkeypatch):
    monkeypatch.delenv("AUTOGRADER_COURSE", raising=False)
    monkeypatch.chdir(_pack_like_course(tmp_path))
    return tmp_path


def test_in_a_fresh_pack_check_sets_up_the_workspace_and_shows_the_stakes(pack_course):
    stakes = _stakes_of(PACKED)
    public, hidden = (sum(points[i] for points in stakes.values()) for i in (0, 1))
    assert hidden > 0, "02 has hidden tests: the test would prove nothing"
    with mock.patch.object(selfcheck, "run", side_effect=AssertionError("nothing should run")):
        status, output, _ = check()
    assert status == 0, "work not started yet is a report, not an error"
    mine = pack_course / "my-work" / PACKED / f"{PACKED}.ipynb"
    assert mine.read_bytes() == release_path(PACKED).read_bytes()
    assert f"new in your workspace: {pack_course / 'my-work' / PACKED}" in output
    row = flat(next(line for line in output.splitlines() if line.startswith(PACKED)))
    assert row == (f"{PACKED} 0/{public:g} public · {hidden:g} more in hidden tests · graded out of "
                   f"{public + hidden:g} not started everything"), output
    assert "There is no workspace" not in output

    # Set up once: a learner's copy is never overwritten. --strict fails on unfinished work.
    nb = nbformat.read(mine, as_version=4)
    nb.cells[0].source += "\n\nmy own note"
    nbformat.write(nb, mine)
    with mock.patch.object(selfcheck, "run", side_effect=AssertionError("nothing should run")):
        status, output, _ = check("--strict")
    assert status == 1
    assert "new in your workspace" not in output
    assert "my own note" in mine.read_text()


def test_in_the_pack_each_exercise_shows_its_public_points_and_what_its_hidden_tests_hold(pack_course):
    """The release keeps each hidden test cell's points though not its tests: those points are shown,
    never earned here. (The run is the release, unexecuted: every public test cell counts as passed.)"""
    from autograder.verdicts import cell_verdicts

    def unexecuted(prepared, engine):
        verdicts = cell_verdicts(prepared.notebook, exercise_of=lambda gid: registry.exercise_of_grade_id(gid, PACKED))
        return NotebookRun(prepared.assignment, prepared.path, prepared.notebook, verdicts, [])

    stakes = _stakes_of(PACKED)
    public, hidden = (sum(points[i] for points in stakes.values()) for i in (0, 1))
    with mock.patch.object(selfcheck, "run", unexecuted):
        status, output, [report] = check(pack_course / release_path(PACKED).relative_to(COURSE.root))
    assert status == 0
    assert output.startswith(f"{PACKED}: {public:g}/{public:g} public · {hidden:g} more in hidden tests · "
                             f"graded out of {public + hidden:g}")
    assert (report.score, report.max_score, report.graded_max) == (public, public, public + hidden)
    for exercise, (mine, theirs) in stakes.items():
        line = " ".join(exercise_line(output, exercise).split())
        expected = f"✔ {exercise} {mine:g}/{mine:g} public" + (f" · {theirs:g} more in hidden tests" if theirs else "")
        assert line == expected
    assert "Everything passes the public tests." in output
    assert "More tests run when your instructor grades your work" in flat(output)


def test_a_workspace_without_work_shows_every_notebook_not_started(tmp_path):
    workspace = tmp_path / "my-work"
    (workspace / "02_manual_model").mkdir(parents=True)
    (workspace / "02_manual_model" / "02_manual_model.ipynb").write_text("{ oops")
    with mock.patch.object(selfcheck, "run", side_effect=AssertionError("nothing should run")):
        status, output, _ = check("--dir", workspace)
    assert status == 1
    table = output.splitlines()
    assert ["notebook", "score", "state", "left", "to", "do"] in [line.split() for line in table]
    for notebook in registry.notebooks():
        row = next(line for line in table if line.startswith(notebook))
        if notebook == "02_manual_model":
            assert "could not be checked" in row and "not a readable notebook" in row
        else:
            assert "not copied yet" in row
            assert f"0/{sum(selfcheck.course_points(notebook).values()):g}" in row
    assert (workspace / "progress.png").read_bytes().startswith(b"\x89PNG")
    assert f"Your progress as a picture: {workspace / 'progress.png'}" in output


def test_a_renamed_exercise_is_reported_as_never_defined(tmp_path):
    nb = nbformat.read(solution_path(NB), as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "count_parameters")
    cell.source = "def count_params(model, trainable_only=True):\n    return 0\n"
    result = CheckResult(notebook=NB, exercise="count_parameters", check="counts", status="not_defined",
                         code="not_defined", message="`count_parameters` is not defined. Run the cell that defines it.")
    verdict = CellVerdict("test_count_parameters", "count_parameters", 0.0, 2.0, "ChecksFailed: ...", [result])
    [report] = selfcheck.exercise_reports(NotebookRun(NB, tmp_path / "mine.ipynb", nb, [verdict], []))
    assert report.status == selfcheck.WRONG
    assert report.message == ("`count_parameters` is not defined anywhere in your notebook, though every cell ran. "
                              "The tests look for exactly this name: did you rename it in cell 20?")


def test_a_test_cell_stopped_by_the_timeout_says_so(tmp_path):
    nb = nbformat.read(solution_path(NB), as_version=4)
    error = "CellTimeoutError: this cell ran longer than 60 s and was stopped. Look for a loop that never ends."
    verdicts = [CellVerdict("test_count_parameters", "count_parameters", 2.0, 2.0),
                CellVerdict("test_count_parameters_hidden", "count_parameters", 0.0, 1.0, error)]
    [report] = selfcheck.exercise_reports(NotebookRun(NB, tmp_path / "mine.ipynb", nb, verdicts, []))
    assert (report.status, report.code, report.points, report.max_points) == (selfcheck.WRONG, "timeout", 2, 3)
    assert report.message == "the test cell ran longer than 60 s and was stopped. Look for a loop that never ends."


def test_a_cell_that_printed_a_warning_is_noted_and_costs_nothing(tmp_path):
    """nbgrader scores only test cells: a warning elsewhere is a note, in a learner's check as in grading."""
    nb = nbformat.read(solution_path(NB), as_version=4)
    index = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "nbgrader" not in c.metadata)
    nb.cells[index].outputs = [nbformat.v4.new_output("stream", name="stderr", text="UserWarning: " + "careful " * 200)]
    found = selfcheck.faults(NotebookRun(NB, tmp_path / "mine.ipynb", nb, [], []))
    assert found.faults == []
    assert found.notes == [f"{cell_label(nb, index, NB)} printed warnings (they cost no points)"]


def test_what_went_wrong_outside_the_tests_is_one_rule_for_checking_and_grading(tmp_path):
    """Cells outside the tests that raised are faults, named for what they raised; an exercise's own cell
    is marked with its exercise (a learner's check shows it there); test cells are left to their verdicts."""
    from autograder.cells import error_output, grade_id, is_test_cell
    from autograder.faults import find_faults

    nb = nbformat.read(solution_path(NB), as_version=4)
    demo = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "nbgrader" not in c.metadata)
    exercise = next(i for i, c in enumerate(nb.cells) if grade_id(c) == "count_parameters")
    test = next(i for i, c in enumerate(nb.cells) if is_test_cell(c))
    nb.cells[demo].outputs = [error_output("MemoryError", "")]
    nb.cells[exercise].outputs = [error_output("SyntaxError", "invalid syntax (<cell>, line 2)")]
    nb.cells[test].outputs = [error_output("ValueError", "a test's own failure")]
    found = find_faults(nb, NB, ["cell 40 ran longer than 60 s and was stopped"], {demo: 2_500_000}, 2**30)
    assert found.faults == [
        "cell 40 ran longer than 60 s and was stopped",
        f"{cell_label(nb, demo, NB)} ran out of memory: each notebook may use at most 1 GiB (RLIMIT_AS on its "
        "kernel process)",
        f"cell {exercise + 1} (exercise count_parameters) has a syntax error: invalid syntax (<cell>, line 2)"]
    assert found.outside_exercises() == found.faults[:2]
    assert found.notes == [f"{cell_label(nb, demo, NB)} printed 2.5 MB more than nbgrader keeps; the rest was dropped"]
    unlimited = find_faults(nb, NB).faults
    assert unlimited[0] == f"{cell_label(nb, demo, NB)} ran out of memory"


def test_what_a_check_printed_to_stderr_is_cut_at_a_word():
    from autograder.probe import learner_notes

    [note] = learner_notes([], "deprecated " * 100)
    assert note.startswith("printed to stderr: deprecated") and note.endswith("deprecated …"), note[-40:]


# --- notebooks that run ----------------------------------------------------------


@pytest.fixture(scope="module")
def workspace_run(tmp_path_factory):
    """A workspace with 02 copied but never touched, and 03 worked on (MIXED)."""
    workspace = tmp_path_factory.mktemp("learner") / "my-work"
    (workspace / "02_manual_model").mkdir(parents=True)
    shutil.copy(release_path("02_manual_model"), workspace / "02_manual_model")
    path = planted(NB, workspace, **MIXED)
    status, output, reports = check("--dir", workspace)
    return workspace, status, output, reports, path


@pytest.mark.slow
def test_the_workspace_table_gives_each_notebooks_score_and_what_is_left(workspace_run):
    workspace, status, output, reports, _ = workspace_run
    assert status == 0, "work in progress is a report, not a failure of the command"
    assert [r.notebook for r in reports] == [NB], "only the notebook the learner worked on runs"
    rows = {line.split()[0]: line for line in output.splitlines() if line.startswith(("02_", "03_", "total"))}
    assert rows["02_manual_model"].split()[1:3] == ["0/19", "not"] and "not started" in rows["02_manual_model"]
    assert "10/21" in rows[NB] and "in progress" in rows[NB]
    assert rows[NB].endswith("ManualLogisticModule, count_parameters, load_manual_weights, "
                             "CircleClassifier, cells that raise or never end"), "its demo cells raise too"
    course_points = sum(cell.metadata.nbgrader.get("points", 0)
                        for notebook in registry.notebooks()
                        for cell in nbformat.read(solution_path(notebook), as_version=4).cells
                        if cell.get("metadata", {}).get("nbgrader", {}).get("grade"))
    assert f"10/{course_points:g}" in rows["total"], "the total counts every notebook of the course"
    html = (workspace / "progress.html").read_text(encoding="utf-8")
    assert "data:image/png;base64," in html, "the page carries its picture"
    assert "W starts as all zeros" in html and "sumary" in html
    assert (workspace / "progress.png").stat().st_size > 10_000


@pytest.fixture(scope="module")
def mixed(workspace_run):
    *_, reports, path = workspace_run
    report = reports[0]
    return report, selfcheck.format_notebook(report)


@pytest.mark.slow
def test_a_passing_exercise_is_marked_passed(mixed):
    _, output = mixed
    assert exercise_line(output, "SimpleModel").split() == ["✔", "SimpleModel", "3/3"]


@pytest.mark.slow
def test_a_wrong_answer_gets_its_diagnosis_even_when_only_hidden_tests_catch_it(mixed):
    _, output = mixed
    assert "0/3  failed: zero_init (cell 15)" in exercise_line(output, "ManualLogisticModule")
    assert "W starts as all zeros" in block(output, "ManualLogisticModule")
    assert "1/3  failed: below_target (cell 53)" in exercise_line(output, "CircleClassifier")
    assert "hidden tests: on another circle" in block(output, "CircleClassifier")


@pytest.mark.slow
def test_a_cell_that_raises_before_defining_its_exercise_is_named_with_its_error(mixed):
    _, output = mixed
    assert "0/3  your code raised an error (cell 20)" in exercise_line(output, "count_parameters")
    text = block(output, "count_parameters")
    assert "cell 20 raised ImportError: cannot import name 'sumary' from 'torchinfo'" in text
    assert "so `count_parameters` was never defined. Fix that error first." in text


@pytest.mark.slow
def test_an_exception_in_the_learners_code_names_cell_exercise_and_error_and_the_rest_goes_on(mixed):
    report, output = mixed
    assert "0/3  your code raised an error (cell 34)" in exercise_line(output, "load_manual_weights")
    assert ("your code raised AttributeError: 'Linear' object has no attribute 'weights' "
            "(in `load_manual_weights`, at `model.linear.weights.copy_(W.T)`)") in block(output, "load_manual_weights")
    assert [e.exercise for e in report.exercises] == registry.exercises(NB), "every exercise gets a verdict"
    problems = flat(output.split("Problems while running the notebook:")[1])
    assert "! cell 38 (\"with skip_if_unfinished():\") raised AttributeError" in problems
    assert "cell 15" not in problems and "cell 20 " not in problems, "an exercise's own cell is reported with it"


def assert_verdicts_are_nbgraders(report, output):
    executed = [cell for cell in report.run.notebook.cells
                if cell.cell_type == "code" and cell.execution_count is not None
                and cell.get("metadata", {}).get("nbgrader", {}).get("grade")]
    assert executed, "some graded cells ran"
    by_id = {v.grade_id: v for v in report.run.verdicts}
    for cell in executed:
        points, max_points = determine_grade(cell)
        verdict = by_id[cell.metadata.nbgrader.grade_id]
        assert (verdict.points, verdict.max_points) == (points, max_points), cell.metadata.nbgrader.grade_id
    for exercise in report.exercises:
        cells = [v for v in report.run.verdicts if v.exercise == exercise.exercise]
        assert exercise.points == sum(v.points for v in cells)
        assert f" {exercise.points:g}/{exercise.max_points:g}" in exercise_line(output, exercise.exercise)


@pytest.mark.slow
def test_the_per_cell_verdicts_are_nbgraders_determine_grade_on_the_executed_cells(mixed):
    report, output = mixed
    assert_verdicts_are_nbgraders(report, output)
    assert (report.score, report.max_score) == (10, 21)


@pytest.mark.slow
def test_a_complete_notebook_passes_with_exit_status_0(tmp_path):
    status, output, _ = check(solution_path(NB))
    assert status == 0, output
    assert output.startswith(f"{NB}: 21 of 21 points")
    assert output.rstrip().endswith("Everything passes.")
    assert all(exercise_line(output, e).lstrip().startswith("✔") for e in registry.exercises(NB))


@pytest.mark.slow
def test_bad_files_do_not_stop_the_good_one_after_them(tmp_path):
    (tmp_path / "empty.ipynb").write_text("")
    status, output, reports = check(tmp_path / "empty.ipynb", release_path(NB))
    assert status == 1
    assert f"✘ {tmp_path / 'empty.ipynb'}: the file is empty." in flat(output)
    assert f"{NB}: 0 of 21 points" in output
    assert all("not written yet" in exercise_line(output, e) for e in registry.exercises(NB))


@pytest.mark.slow
def test_an_endless_loop_is_stopped_after_the_timeout_and_the_next_cells_run(tmp_path):
    looping = SOLVED_COUNT + '''
n = 0
while n < 3:
    count_parameters(nn.Linear(3, 1))  # n never grows
'''
    path = planted(NB, tmp_path, count_parameters=looping)
    status, output, _ = check("--strict", "--timeout", 15, path)
    assert status == 1, "in strict mode, a cell that had to be stopped is a problem to fix"
    assert ("! cell 20 (exercise count_parameters) ran longer than 15 s and was stopped; the run went on with "
            "the next cell") in flat(output)
    assert all(exercise_line(output, e).lstrip().startswith("✔") for e in registry.exercises(NB))


@pytest.mark.slow
def test_a_dead_kernel_is_reported_and_the_verdicts_before_it_are_kept(tmp_path):
    path = planted(NB, tmp_path, count_parameters=SOLVED_COUNT + "\nimport os\nos._exit(1)\n")
    status, output, [report] = check(path)
    assert status == 0, "the learner's code killed the kernel: reported, and not an error of the check"
    assert ("! the kernel (the Python process that runs the notebook) died while running cell 20 (exercise "
            "count_parameters); the cells after it did not run") in flat(output)
    assert exercise_line(output, "SimpleModel").lstrip().startswith("✔")
    assert exercise_line(output, "ManualLogisticModule").lstrip().startswith("✔")
    for exercise in ("count_parameters", "load_manual_weights"):
        assert " 0/3  not run (cell " in exercise_line(output, exercise)
        assert "the kernel died earlier, in cell 20 (exercise count_parameters)" in block(output, exercise)
    assert report.score == 6
    assert_verdicts_are_nbgraders(report, output)
