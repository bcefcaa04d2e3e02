"""The course's notebooks follow the contract: one assignment per notebook,
solution cells named after their exercises, visible and hidden test cells for
every exercise, clean solution notebooks, and a release in step with them."""

import ast
import inspect
import re

import nbformat
import pytest

from autograder import registry
from autograder.cells import judged_calls
from autograder.nbgrader_hooks import RAISES_EXCEPTION, is_test_cell
from autograder.release import generate_release
from support import NOTEBOOKS, RELEASE, ROOT, SOLUTIONS, nbgrader_meta, release_path, solution_path


def cells(path):
    return nbformat.read(path, as_version=4).cells


def test_every_notebook_has_checks_a_solution_and_a_release():
    assert NOTEBOOKS, "no check modules found in autograder/checks"
    assert sorted(p.name for p in SOLUTIONS.iterdir() if p.is_dir()) == NOTEBOOKS
    assert sorted(p.name for p in RELEASE.iterdir() if p.is_dir()) == NOTEBOOKS
    for notebook in NOTEBOOKS:
        assert solution_path(notebook).exists() and release_path(notebook).exists()


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_solution_notebooks_carry_no_outputs(notebook):
    dirty = [i for i, cell in enumerate(cells(solution_path(notebook)))
             if cell.cell_type == "code" and (cell.outputs or cell.execution_count)]
    assert dirty == [], f"cells {dirty} of {notebook} have outputs; clear them before committing"


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_each_exercise_has_one_solution_cell_that_defines_it(notebook):
    exercises = registry.exercises(notebook)
    solution_cells = [c for c in cells(solution_path(notebook)) if nbgrader_meta(c).get("solution")]
    ids = [nbgrader_meta(c)["grade_id"] for c in solution_cells]
    assert sorted(ids) == sorted(exercises)
    for cell in solution_cells:
        name = nbgrader_meta(cell)["grade_id"]
        defined = {node.name for node in ast.parse(cell.source).body
                   if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
        assert name in defined, f"the solution cell {name} does not define {name}"
        assert "### BEGIN SOLUTION" in cell.source and "### END SOLUTION" in cell.source


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_each_exercise_has_locked_visible_and_hidden_test_cells(notebook):
    tests = [c for c in cells(solution_path(notebook)) if nbgrader_meta(c).get("grade")]
    by_exercise = {}
    for cell in tests:
        meta = nbgrader_meta(cell)
        exercise = registry.exercise_of_grade_id(meta["grade_id"])
        assert exercise in registry.exercises(notebook), f"{meta['grade_id']} names no exercise of {notebook}"
        assert meta.get("locked") and meta.get("points", 0) > 0
        hidden = meta["grade_id"].endswith("_hidden")
        call = rf"check{'.hidden' if hidden else ''}\(\"{exercise}\""
        assert re.search(call, cell.source), f"{meta['grade_id']} does not check {exercise}"
        by_exercise.setdefault(exercise, []).append("### BEGIN HIDDEN TESTS" in cell.source)
    for exercise in registry.exercises(notebook):
        kinds = by_exercise.get(exercise, [])
        assert False in kinds, f"{exercise} has no visible test cell"
        assert True in kinds, f"{exercise} has no hidden tests"


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_every_test_cell_is_check_calls_the_judge_can_run_outside_the_kernel(notebook):
    for cell in cells(solution_path(notebook)):
        if is_test_cell(cell):
            calls = judged_calls(cell.source)
            assert calls, f"{nbgrader_meta(cell)['grade_id']}: only check(...) / check.hidden(...) calls with literal inputs"
            hidden = "### BEGIN HIDDEN TESTS" in cell.source
            assert all(call.hidden == hidden for call in calls), \
                f"{nbgrader_meta(cell)['grade_id']}: hidden tests call check.hidden(...), visible ones check(...)"


def _defaults(exercise: str) -> dict[str, list]:
    """Each input of the exercise's checks, with the default value each check that takes it gives it."""
    found: dict[str, list] = {}
    for check in registry.checks_of(exercise):
        for name, parameter in inspect.signature(check.func).parameters.items():
            if parameter.default is not inspect.Parameter.empty:
                found.setdefault(name, []).append(parameter.default)
    return found


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_every_hidden_input_reaches_a_check_and_every_hidden_test_tries_something_new(notebook):
    """A hidden input that no check takes, or a hidden test that runs the visible test's inputs again and
    nothing else, would grade nothing new: a model that ignores its `hidden` argument would pass."""
    for cell in cells(solution_path(notebook)):
        if not is_test_cell(cell) or "### BEGIN HIDDEN TESTS" not in cell.source:
            continue
        grade_id = nbgrader_meta(cell)["grade_id"]
        for call in judged_calls(cell.source):
            defaults = _defaults(call.exercise)
            unknown = sorted(set(call.inputs) - set(defaults))
            assert not unknown, f"{grade_id}: no check of {call.exercise} takes {unknown}"
            fresh = [name for name, value in call.inputs.items() if any(value != d for d in defaults[name])]
            instructor = any(check.instructor for check in registry.checks_of(call.exercise))
            assert fresh or instructor, (f"{grade_id} runs {call.exercise}'s checks on the visible test's inputs "
                                         "again, and no instructor check: it tests nothing new")


def test_grade_ids_of_tests_belong_to_the_longest_matching_exercise():
    assert registry.exercise_of_grade_id("test_init_params_hidden") == "init_params"
    assert registry.exercise_of_grade_id("test_SimpleModel") == "SimpleModel"
    assert registry.exercise_of_grade_id("test_nothing_at_all") is None
    assert registry.exercise_of_grade_id("setup") is None


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_the_release_hides_solutions_and_hidden_tests(notebook):
    text = release_path(notebook).read_text(encoding="utf-8")
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS"):
        assert marker not in text
    hidden_calls = [line for c in cells(solution_path(notebook)) if "BEGIN HIDDEN TESTS" in c.source
                    for line in c.source.splitlines() if line.startswith(("check(", "check.hidden("))]
    for call in hidden_calls:
        assert call not in text, f"the hidden test {call} leaked into the release"


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_release_test_cells_let_run_all_go_past_them(notebook):
    # JupyterLab's Run All stops at the first failing cell unless it is tagged raises-exception.
    untagged = [nbgrader_meta(c)["grade_id"] for c in cells(release_path(notebook))
                if is_test_cell(c) and RAISES_EXCEPTION not in c.metadata.get("tags", [])]
    assert untagged == [], "run `make release`: these test cells would stop Run All"
    tagged_elsewhere = [i for i, c in enumerate(cells(release_path(notebook)))
                        if not is_test_cell(c) and RAISES_EXCEPTION in c.metadata.get("tags", [])]
    assert tagged_elsewhere == [], "only test cells may be expected to fail"


@pytest.mark.slow
def test_the_release_is_exactly_what_make_release_generates(tmp_path):
    generated = generate_release(ROOT, tmp_path / "notebooks")

    def files(folder):
        return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
                if p.is_file() and ".ipynb_checkpoints" not in p.parts}

    expected, committed = files(generated), files(RELEASE)
    stale = sorted(name for name in expected.keys() | committed.keys() if expected.get(name) != committed.get(name))
    assert stale == [], f"notebooks/ is out of date ({', '.join(stale)}): run `make release` and commit the result"
