"""The notebook benchmark (`make bench`) finds every solution notebook and
reads cell timings from what nbclient records; running it is a measurement,
not part of the test suite."""

import importlib.util

import nbformat

from support import NOTEBOOKS, ROOT

spec = importlib.util.spec_from_file_location("bench", ROOT / "benchmarks" / "notebooks.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def test_it_times_every_notebook_in_solutions_and_can_pick_some():
    assert [p.stem for p in bench.solution_notebooks([])] == NOTEBOOKS
    assert [p.stem for p in bench.solution_notebooks(["03", "02_manual"])] == ["02_manual_model", "03_nn_module"]


def test_cell_times_come_from_the_recorded_timestamps():
    timed = nbformat.v4.new_code_cell("x = 1", metadata={
        "nbgrader": {"grade_id": "setup"},
        "execution": {"iopub.execute_input": "2024-01-01T10:00:00.000000Z",
                      "shell.execute_reply": "2024-01-01T10:00:02.500000Z"}})
    untimed = nbformat.v4.new_code_cell("y = 2")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# title"), timed, untimed])
    assert bench.cell_times(nb) == [("setup", 2.5)]


def test_a_cell_timed_with_other_timestamps_is_timed_by_the_closest_pair():
    busy_to_reply = nbformat.v4.new_code_cell("x = 1", metadata={"execution": {
        "iopub.status.busy": "2024-01-01T10:00:00.000000Z", "shell.execute_reply": "2024-01-01T10:00:01.250000Z"}})
    input_to_idle = nbformat.v4.new_code_cell("y = 2", metadata={"execution": {
        "iopub.status.busy": "2024-01-01T10:00:00.000000Z", "iopub.execute_input": "2024-01-01T10:00:00.500000Z",
        "iopub.status.idle": "2024-01-01T10:00:03.000000Z"}})
    no_end = nbformat.v4.new_code_cell("z = 3", metadata={"execution": {"iopub.status.busy": "2024-01-01T10:00:00Z"}})
    assert [bench.cell_seconds(c) for c in (busy_to_reply, input_to_idle, no_end)] == [1.25, 2.5, None]


def test_the_grading_benchmark_compares_cells_and_names_the_slower_ones(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_grade", ROOT / "benchmarks" / "bench_grade.py")
    grading = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(grading)

    def autograded(course, student, seconds):
        cells = [nbformat.v4.new_code_cell(metadata={"nbgrader": {"grade_id": name}, "execution": {
            "iopub.execute_input": "2024-01-01T10:00:00Z", "shell.execute_reply": f"2024-01-01T10:00:{took:06.3f}Z"}})
            for name, took in seconds.items()]
        path = course / "autograded" / student / "02_manual_model" / "02_manual_model.ipynb"
        path.parent.mkdir(parents=True)
        nbformat.write(nbformat.v4.new_notebook(cells=cells), path)

    for student, fit in (("a", 1.0), ("b", 3.0), ("c", 2.0)):
        autograded(tmp_path / "theirs", student, {"setup": 3.0, "test_fit": 0.5, "test_tiny": 0.01})
        autograded(tmp_path / "ours", student, {"setup": 0.1, "test_fit": fit, "test_tiny": 0.02})
    theirs = grading.cell_medians(tmp_path / "theirs", "02_manual_model", ["a", "b", "c"])
    ours = grading.cell_medians(tmp_path / "ours", "02_manual_model", ["a", "b", "c"])
    assert ours == {"setup": 0.1, "test_fit": 2.0, "test_tiny": 0.02}, "the median of the three"
    table = grading.compare_cells(theirs, ours)
    assert [line.split()[0] for line in table[1:3]] == ["setup", "test_fit"], "slowest first"
    assert table[2].endswith("4.00x  slower") and not table[1].endswith("slower"), table
    assert not grading.slower(0.01, 0.02), "a few milliseconds on a shared machine is noise"


def test_the_coordinator_run_replays_each_recorded_submission_with_its_own_outcome(tmp_path):
    """Instant workers answer for a copy of a graded submission with that submission's outcome: the same
    kind is not the same submission (which exercise a deleted test cell belonged to varies)."""
    spec = importlib.util.spec_from_file_location("bench_grade", ROOT / "benchmarks" / "bench_grade.py")
    grading = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(grading)
    for student in ("a", "b", "c"):
        (tmp_path / "class" / student / "A").mkdir(parents=True)
        (tmp_path / "class" / student / "A" / "A.ipynb").write_text(f"notebook of {student}")
    replayed = grading.replay(tmp_path / "class", tmp_path / "big", 7, "A", [("a", 1), ("b", 2), ("c", 3)])
    assert len(replayed) == 7 and sorted(set(replayed.values())) == [1, 2, 3]
    for student, outcome in replayed.items():
        original = "abc"[outcome - 1]
        assert (tmp_path / "big" / student / "A" / "A.ipynb").read_text() == f"notebook of {original}"
