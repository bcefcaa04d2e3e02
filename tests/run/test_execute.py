"""The notebook runner survives what learners' notebooks do: cells that never
end are stopped and the run goes on, and a kernel that dies loses no verdict
already known, while the test cells it never ran earn nothing."""

import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from autograder.execute import Engine, cell_label, execute
from autograder.verdicts import cell_verdicts

pytestmark = pytest.mark.slow


def graded_cell(source, grade_id, points=2):
    cell = new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "grade_id": grade_id, "points": points}
    return cell


def solution_cell(source, grade_id):
    cell = new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade": False, "solution": True, "locked": False, "grade_id": grade_id}
    return cell


# Small notebooks without torch, so each runs in a second or two.
ENDLESS = new_notebook(cells=[
    new_markdown_cell("# endless loops"),
    new_code_cell("x = 1"),
    new_code_cell("n = 0\nwhile n < 10:\n    x = x + 0  # n never grows"),
    graded_cell("assert x == 1", "test_forward"),
    graded_cell("import time\nwhile True:\n    time.sleep(0.05)", "test_forward_hidden"),
    graded_cell("assert x == 1", "test_bce_loss"),
])

DYING = new_notebook(cells=[
    new_code_cell("x = 1"),
    graded_cell("assert x == 1", "test_forward"),
    solution_cell("import os\nos._exit(1)", "bce_loss"),
    graded_cell("assert x == 1", "test_bce_loss"),
    new_code_cell("y = 2"),
    graded_cell("assert x == 1", "test_sgd_step", points=3),
])


def test_a_cell_that_never_ends_is_stopped_and_the_run_goes_on(tmp_path):
    nb, log = execute(ENDLESS, tmp_path, Engine(timeout=2))
    faults = log.faults
    assert faults == [
        'cell 3 ("n = 0") ran longer than 2 s and was stopped; the run went on with the next cell',
        "cell 5 (the test of forward) ran longer than 2 s and was stopped; the run went on with the next cell",
    ]
    verdicts = {v.grade_id: v for v in cell_verdicts(nb)}
    assert verdicts["test_forward"].passed and verdicts["test_bce_loss"].passed, "the cells after a timeout must run"
    stopped = verdicts["test_forward_hidden"]
    assert stopped.points == 0
    assert stopped.error.startswith("CellTimeoutError: this cell ran longer than 2 s"), stopped.error


def test_a_dead_kernel_keeps_known_verdicts_and_gives_nothing_for_cells_that_never_ran(tmp_path):
    nb, log = execute(DYING, tmp_path, Engine(timeout=30))
    faults = log.faults
    assert len(faults) == 1
    assert faults[0].startswith("the kernel (the Python process that runs the notebook) died while running "
                                "cell 3 (exercise bce_loss)"), faults[0]
    verdicts = {v.grade_id: (v.points, v.max_points) for v in cell_verdicts(nb)}
    assert verdicts == {"test_forward": (2, 2), "test_bce_loss": (0, 2), "test_sgd_step": (0, 3)}
    assert nb.cells[2].outputs[-1].ename == "KernelDied"
    assert [o.ename for o in nb.cells[5].outputs] == ["NotRun"]
    assert nb.cells[4].outputs == [], "only test cells are marked as not run"


STUBBORN = new_notebook(cells=[
    new_code_cell("x = 1"),
    graded_cell("assert x == 1", "test_forward"),
    solution_cell("import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    time.sleep(0.05)",
                  "bce_loss"),
    graded_cell("assert x == 1", "test_bce_loss"),
    new_code_cell("y = 2"),
    graded_cell("assert x == 1", "test_sgd_step", points=3),
])


def test_a_cell_that_ignores_the_interrupt_ends_the_run_instead_of_stalling_every_later_cell(tmp_path):
    nb, log = execute(STUBBORN, tmp_path, Engine(timeout=2))
    faults = log.faults
    assert len(faults) == 1
    assert faults[0].startswith("cell 3 (exercise bce_loss) ran longer than 2 s and did not stop when interrupted"), \
        faults[0]
    verdicts = {v.grade_id: (v.points, v.max_points) for v in cell_verdicts(nb)}
    assert verdicts == {"test_forward": (2, 2), "test_bce_loss": (0, 2), "test_sgd_step": (0, 3)}
    assert nb.cells[2].outputs[-1].ename == "CellTimeoutError"
    assert [o.ename for o in nb.cells[5].outputs] == ["NotRun"]
    assert "as it would not stop, in cell 3" in nb.cells[5].outputs[0].evalue


def test_cells_are_named_by_position_and_exercise():
    assert cell_label(DYING, 1) == "cell 2 (the test of forward)"
    assert cell_label(DYING, 2) == "cell 3 (exercise bce_loss)"
    assert cell_label(DYING, 4) == 'cell 5 ("y = 2")'
    assert cell_label(ENDLESS, 0) == 'cell 1 ("# endless loops")'
