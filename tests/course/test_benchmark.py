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
