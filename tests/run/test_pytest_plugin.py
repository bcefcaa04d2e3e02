"""`pytest --nbcheck NOTEBOOK` grades a notebook with one pytest test per graded cell."""

import subprocess
import sys

import pytest

import nbformat

from autograder.cells import is_test_cell
from support import release_path, solution_path

pytestmark = pytest.mark.slow
NOTEBOOK = "03_nn_module"


def graded_cells(path) -> int:
    return sum(is_test_cell(cell) for cell in nbformat.read(path, as_version=4).cells)


def nbcheck(path, tmp_path):
    done = subprocess.run([sys.executable, "-m", "pytest", "--nbcheck", str(path), "-q", "-p", "no:cacheprovider",
                           "--rootdir", str(tmp_path)], cwd=tmp_path, capture_output=True, text=True)
    return done.returncode, done.stdout


def test_a_solution_passes_every_graded_cell(tmp_path):
    code, out = nbcheck(solution_path(NOTEBOOK), tmp_path)
    assert code == 0, out
    assert f"{graded_cells(solution_path(NOTEBOOK))} passed" in out


def test_a_blank_release_fails_every_graded_cell_and_says_why(tmp_path):
    code, out = nbcheck(release_path(NOTEBOOK), tmp_path)
    assert code == 1
    assert f"{graded_cells(release_path(NOTEBOOK))} failed" in out
    assert "not written yet" in out
    assert "test_count_parameters_hidden" in out, "hidden tests must run, restored from the course's source"


def test_a_file_that_is_not_a_notebook_is_a_clear_collection_error(tmp_path):
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{ this is not json")
    code, out = nbcheck(broken, tmp_path)
    assert code != 0
    assert "not a readable notebook" in out
