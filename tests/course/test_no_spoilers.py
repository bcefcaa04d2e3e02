"""No notebook shows an answer before it is due.

A student sees the whole release at once, and the notebooks in order: so no code of a release notebook,
up to and including the notebook of an exercise, may hold most of that exercise's answer (the
instructor's solution region), except the exercise's own answer cell and the hints of its own statement
(whose last step is near-code by design). Notebooks after it may: by then the learner has written it.
A repair's given code (a cell ``<name>_as_given`` that defines the exercise's function or class, with
its bug) shares most lines with the answer by design: for a repair, the answer is the lines the
repair changes or adds.
"""

import re

import nbformat
import pytest

from autograder import registry
from autograder.cells import grade_id, is_solution_cell
from support import NOTEBOOKS, release_path, solution_path

_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")
_DETAILS = re.compile(r"<details>.*?</details>", re.S)
_FENCE = re.compile(r"```(?:python)?\n(.*?)```", re.S)
MIN_LENGTH = 12  # shorter lines (`return W, b`, `model.train()`) say too little to give an answer away
BOILERPLATE = {"super().__init__()"}  # every module's first line: it answers nothing


def _flat(line: str) -> str:
    return re.sub(r"\s+", "", line.split("#", 1)[0])


def given_code(cells) -> dict[str, str]:
    """exercise -> the code a repair gives with its bug (a cell named ``..._as_given`` defining it)."""
    given = {}
    for cell in cells:
        if cell.cell_type == "code" and (grade_id(cell) or "").endswith("_as_given"):
            for name in re.findall(r"^(?:def|class)\s+(\w+)", cell.source, re.M):
                given[name] = cell.source
    return given


def answers() -> dict[str, tuple[str, list[str]]]:
    """exercise -> (its notebook, the significant lines of the instructor's solution region; for a repair,
    only those its given code lacks)."""
    found = {}
    for notebook in NOTEBOOKS:
        cells = nbformat.read(solution_path(notebook), as_version=4).cells
        given = given_code(cells)
        for cell in cells:
            if not (is_solution_cell(cell) and cell.cell_type == "code" and _MARKERS[0] in cell.source):
                continue
            region = cell.source.split(_MARKERS[0], 1)[1].split(_MARKERS[1], 1)[0]
            as_given = {_flat(line) for line in given.get(grade_id(cell), "").splitlines()}
            lines = list(dict.fromkeys(flat for flat in map(_flat, region.splitlines())
                                       if len(flat) >= MIN_LENGTH and flat not in BOILERPLATE
                                       and flat not in as_given))
            found[grade_id(cell)] = (notebook, lines)
    return found


def shown_code(notebook: str, exercise: str) -> list[tuple[str, str]]:
    """(where, code) for everything of a release notebook that shows code, but for the exercise's own
    answer cell and the hints of its own statement."""
    nb = nbformat.read(release_path(notebook), as_version=4)
    own = next((i for i, cell in enumerate(nb.cells) if grade_id(cell) == exercise and is_solution_cell(cell)), None)
    statement = next((i for i in range(own - 1, -1, -1) if nb.cells[i].cell_type == "markdown"), None) if own else None
    shown = []
    for index, cell in enumerate(nb.cells):
        where = f"{notebook} cell {index + 1}"
        if cell.cell_type == "code" and index != own:
            shown.append((where, cell.source))
        elif cell.cell_type == "markdown":
            text = _DETAILS.sub("", cell.source) if index == statement else cell.source
            shown.extend((f"{where} (markdown)", block) for block in _FENCE.findall(text))
    return shown


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_no_answer_is_shown_before_it_is_due(notebook):
    order = NOTEBOOKS.index(notebook)
    spoilers = []
    for exercise, (home, lines) in answers().items():
        if NOTEBOOKS.index(home) < order or len(lines) < 2:
            continue  # due already by this notebook, or too short an answer to count lines of
        for where, code in shown_code(notebook, exercise):
            present = {_flat(line) for line in code.splitlines()}
            hits = [line for line in lines if line in present]
            if len(hits) >= 2 and len(hits) * 2 >= len(lines):
                spoilers.append(f"{where} shows {len(hits)} of the {len(lines)} lines of {home}'s `{exercise}`")
    assert not spoilers, "\n".join(spoilers)


def test_a_repairs_answer_is_what_it_changes():
    """07's repair: the given loop keeps a reference to the live weights; what is checked for spoilers is
    the fix alone, not the lines the given code already shows."""
    notebook, lines = answers()["train_keeping_the_best"]
    given = given_code(nbformat.read(solution_path(notebook), as_version=4).cells)["train_keeping_the_best"]
    assert lines and not {_flat(line) for line in given.splitlines()} & set(lines)


def test_the_answers_are_found():
    found = answers()
    assert set(found) >= {name for nb in NOTEBOOKS for name in registry.exercises(nb)} - {
        name for name, (_, lines) in found.items() if not lines}
