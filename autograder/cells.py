"""What a notebook cell is to the course: nbgrader's marks on it, its errors, and how a learner finds it.

Every module reads nbgrader's cell metadata through these few functions, so
"a test cell" means one thing everywhere (graded, not a solution, code), and
every report names a cell the same way (:func:`cell_label`).
"""

from __future__ import annotations

import ast
import re
import threading
from dataclasses import dataclass, field

from autograder.results import shorten


def nbgrader(cell) -> dict:
    """nbgrader's metadata of ``cell`` (empty for a cell nbgrader does not know)."""
    return cell.get("metadata", {}).get("nbgrader", {})


def grade_id(cell) -> str | None:
    return nbgrader(cell).get("grade_id")


def is_test_cell(cell) -> bool:
    """An autograded test cell: graded, not a solution, code."""
    meta = nbgrader(cell)
    return bool(meta.get("grade")) and not meta.get("solution") and cell.get("cell_type") == "code"


def is_withheld_test(cell) -> bool:
    """A test cell whose tests were taken out (the release's stand-in for hidden tests): it holds
    comments only, so it tests nothing where it runs, and its points are earned at grading."""
    return is_test_cell(cell) and not any(
        line.strip() and not line.strip().startswith("#") for line in cell.get("source", "").splitlines())


def is_solution_cell(cell) -> bool:
    return bool(nbgrader(cell).get("solution"))


def grade_ids(nb) -> list[str]:
    """Every nbgrader id of the notebook, in order."""
    return [gid for gid in (grade_id(cell) for cell in nb.get("cells", [])) if gid]


def test_cell_ids(nb) -> list[str]:
    return [grade_id(cell) for cell in nb.cells if is_test_cell(cell)]


def error_output(ename: str, evalue: str):
    """An error output, as the kernel would write it, that nbgrader's rule scores zero."""
    from nbformat import NotebookNode  # not at the top: nbformat takes seconds to import in a kernel

    return NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def has_error(cell) -> bool:
    return any(o.get("output_type") == "error" for o in cell.get("outputs", []))


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def error_of(cell) -> str:
    """``Ename: evalue`` of the cell's first error output, or ''."""
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return _ANSI.sub("", f"{output.get('ename', '')}: {output.get('evalue', '')}").strip()
    return ""


def stderr_of(cell, limit: int = 500) -> str:
    """What the cell printed to stderr (shortened at a word), or ''."""
    text = "".join(o.get("text", "") for o in cell.get("outputs", [])
                   if o.get("output_type") == "stream" and o.get("name") == "stderr")
    return shorten(_ANSI.sub("", text), limit)


def cell_number(index: int) -> str:
    """A cell's position as the learner counts it: from the top, from 1, markdown cells included."""
    return f"cell {index + 1}"


def cell_label(nb, index: int, exercise_of=lambda grade_id: None) -> str:
    """How a learner finds a cell: its number and the exercise it belongs to, or its first line.

    ``exercise_of`` maps a test cell's grade id to its exercise (the registry knows)."""
    cell = nb.cells[index]
    gid = grade_id(cell)
    exercise = exercise_of(gid) if gid and is_test_cell(cell) else None
    if exercise:
        where = f"the test of {exercise}"
    elif gid and is_solution_cell(cell) and cell.get("cell_type") == "code":
        where = f"exercise {gid}"
    else:
        first = next((line.strip() for line in cell.get("source", "").splitlines() if line.strip()), "")
        where = f'"{first[:40]}{"..." if len(first) > 40 else ""}"' if first else "empty"
    return f"{cell_number(index)} ({where})"


_PARSING = threading.Lock()


def parse_source(source: str, mode: str = "exec") -> ast.AST:
    """``ast.parse``, one thread at a time. Grading parses cells in several threads, and CPython 3.11's
    parser can then fail with ``SystemError: AST constructor recursion depth mismatch``
    (CPython issue gh-106905)."""
    with _PARSING:
        return ast.parse(source, mode=mode)


@dataclass(frozen=True)
class CheckCall:
    """One ``check("exercise", **inputs)`` (or ``check.hidden(...)``) of a test cell."""

    exercise: str
    hidden: bool
    inputs: dict = field(default_factory=dict)


_IMPORTS_OF_CHECK = {"autograder"}


def _call_of(node: ast.AST) -> CheckCall | None:
    """The check call ``node`` is, with literal inputs; None for anything else."""
    if not isinstance(node, ast.Call) or len(node.args) != 1 or not isinstance(node.args[0], ast.Constant):
        return None
    func, exercise = node.func, node.args[0].value
    if isinstance(func, ast.Name) and func.id == "check":
        hidden = False
    elif (isinstance(func, ast.Attribute) and func.attr == "hidden" and isinstance(func.value, ast.Name)
          and func.value.id == "check"):
        hidden = True
    else:
        return None
    if not isinstance(exercise, str) or any(keyword.arg is None for keyword in node.keywords):
        return None
    try:
        inputs = {keyword.arg: ast.literal_eval(keyword.value) for keyword in node.keywords}
    except ValueError:
        return None
    return CheckCall(exercise, hidden, inputs)


def check_calls(source: str) -> list[CheckCall]:
    """Every check call of a test cell whose exercise and inputs are written out (literals), in order."""
    try:
        tree = parse_source(source)
    except SyntaxError:
        return []
    found = []
    for node in ast.walk(tree):
        call = _call_of(node)
        if call is not None:
            found.append(call)
    return found


def judged_calls(source: str) -> list[CheckCall] | None:
    """The check calls of a test cell that holds nothing else (imports of the autograder, comments, calls
    with literal inputs), which a judge can therefore run for it; None when it holds anything else."""
    try:
        tree = parse_source(source)
    except SyntaxError:
        return None
    calls = []
    for statement in tree.body:
        if isinstance(statement, ast.ImportFrom) and statement.module in _IMPORTS_OF_CHECK and not statement.level:
            continue
        if isinstance(statement, ast.Import) and all(alias.name in _IMPORTS_OF_CHECK for alias in statement.names):
            continue
        call = _call_of(statement.value) if isinstance(statement, ast.Expr) else None
        if call is None:
            return None
        calls.append(call)
    return calls
