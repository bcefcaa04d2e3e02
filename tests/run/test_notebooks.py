"""Every solution notebook earns full marks and runs cleanly; every release
notebook earns nothing, and only its test cells fail. The notebooks run in a
real kernel, with the test cells restored from the source as nbgrader does."""

import pytest

from autograder.execute import run_notebook
from autograder.faults import find_faults
from autograder.nbgrader_hooks import is_test_cell
from support import NOTEBOOKS, release_path, solution_path

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_the_solution_runs_cleanly_and_earns_full_marks(notebook):
    run = run_notebook(solution_path(notebook))
    assert run.faults == []
    found = find_faults(run.notebook, notebook)
    assert (found.faults, found.notes) == ([], []), "cells other than tests raised errors or warned"
    lost = [(v.grade_id, v.error) for v in run.verdicts if not v.passed]
    assert lost == [], f"the solution loses points: {lost}"
    assert run.score == run.max_score > 0
    # nbgrader reads a value a test cell displays (Out[n]) as a partial score.
    displayed = [cell.metadata.nbgrader.grade_id for cell in run.notebook.cells
                 if is_test_cell(cell) and any(o.output_type == "execute_result" for o in cell.outputs)]
    assert displayed == [], "test cells display a value after their verdict"


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_the_release_earns_nothing_and_only_its_test_cells_fail(notebook):
    run = run_notebook(release_path(notebook), source=solution_path(notebook))
    assert run.faults == []
    found = find_faults(run.notebook, notebook)
    assert (found.faults, found.notes) == ([], []), "cells other than tests raised errors or warned in the release"
    assert run.score == 0
    for verdict in run.verdicts:
        assert verdict.error.startswith("ChecksFailed"), f"{verdict.grade_id} failed for another reason: {verdict.error}"
        assert "not written yet" in verdict.error
