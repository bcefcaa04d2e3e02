"""Run a notebook the way nbgrader grades it, and read the verdict of every test cell.

The steps are small and composed in :func:`run_notebook`:

1. :func:`read_notebook` loads the file, or says clearly why it cannot.
2. :func:`restore_test_cells` puts back the course's test cells (a learner may
   have edited or deleted them), as nbgrader's autograde does.
3. :func:`execute` runs every cell in a fresh kernel with nbclient: errors do
   not stop the run, a cell that runs too long is interrupted and recorded,
   and the structured results the checks write are attached to their cells.
4. :func:`grade_cells` scores each test cell with nbgrader's own rule.
"""

from __future__ import annotations

import copy
import logging
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty
from time import monotonic

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError
from nbclient.util import ensure_async
from nbformat import NotebookNode
from nbgrader.utils import determine_grade, is_grade, is_solution

from autograder import registry
from autograder.results import CheckResult
from autograder.runner import RESULTS_ENV

DEFAULT_CELL_TIMEOUT = 60
# How long an interrupted cell may take to stop before its kernel is given up on.
INTERRUPT_GRACE = 10
# The errors the runner writes into cells itself, for nbgrader's rule to score them zero.
TIMEOUT_ERROR = "CellTimeoutError"
KERNEL_DIED = "KernelDied"
NOT_RUN = "NotRun"

_QUIET_LOG = logging.getLogger("autograder.execute")
_QUIET_LOG.addHandler(logging.NullHandler())
_QUIET_LOG.propagate = False


class NotebookError(Exception):
    """A notebook that cannot be read or does not belong to the course."""


class _KernelStuck(Exception):
    """An interrupted cell went on running: every later cell would only wait out its own time limit."""


@dataclass
class CellVerdict:
    grade_id: str
    exercise: str | None
    points: float
    max_points: float
    error: str = ""
    results: list[CheckResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.points == self.max_points


@dataclass
class NotebookRun:
    assignment: str
    path: Path
    notebook: NotebookNode
    verdicts: list[CellVerdict]
    faults: list[str]

    @property
    def score(self) -> float:
        return sum(v.points for v in self.verdicts)

    @property
    def max_score(self) -> float:
        return sum(v.max_points for v in self.verdicts)

    def cell_errors(self, graded: bool = False) -> list[tuple[int, str]]:
        """``(index, error)`` for cells whose output holds an error, test cells only when ``graded``."""
        found = []
        for index, cell in enumerate(self.notebook.cells):
            if cell.cell_type != "code" or is_test_cell(cell) != graded:
                continue
            error = _error_text(cell)
            if error:
                found.append((index, error))
        return found


def read_notebook(path: str | os.PathLike) -> NotebookNode:
    path = Path(path)
    if not path.exists():
        raise NotebookError(f"{path}: no such file.")
    if path.suffix != ".ipynb":
        raise NotebookError(f"{path}: not a notebook (expected a .ipynb file).")
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:
        if not path.read_bytes().strip():
            raise NotebookError(f"{path}: the file is empty.") from exc
        raise NotebookError(f"{path}: not a readable notebook ({type(exc).__name__}: {exc}). "
                            "If you edited it outside Jupyter, restore it from your last checkpoint.") from exc
    if not isinstance(nb, dict) or "cells" not in nb:
        raise NotebookError(f"{path}: this JSON has no cells; it is not a notebook.")
    return nb


def grade_ids(nb: NotebookNode) -> list[str]:
    return [cell.metadata["nbgrader"]["grade_id"] for cell in nb.cells
            if "grade_id" in cell.get("metadata", {}).get("nbgrader", {})]


def assignment_of(nb: NotebookNode, path: str | os.PathLike | None = None) -> str:
    """The course notebook this one is a copy of, judged by its grade ids (then its file name)."""
    ids = set(grade_ids(nb))
    best, best_overlap = None, 0
    for name in registry.notebooks():
        overlap = len(ids & set(registry.exercises(name)))
        if overlap > best_overlap:
            best, best_overlap = name, overlap
    if best is None and path is not None and Path(path).stem in registry.notebooks():
        best = Path(path).stem
    if best is None:
        raise NotebookError(f"{path or 'this notebook'} is not one of the course's notebooks "
                            f"({', '.join(registry.notebooks())}): none of its cells is an exercise.")
    return best


COURSE_DIR = Path(__file__).resolve().parent.parent


def course_source(assignment: str, course_dir: Path = COURSE_DIR) -> Path | None:
    """The notebook whose test cells are authoritative for ``assignment``: the
    instructor's source (with hidden tests) when this is the course repository,
    else the student release, else None."""
    for folder in ("solutions", "notebooks"):
        candidate = course_dir / folder / assignment / f"{assignment}.ipynb"
        if candidate.exists():
            return candidate
    return None


def graded_cell_ids(nb: NotebookNode) -> list[str]:
    return [cell.metadata.nbgrader.grade_id for cell in nb.cells if is_test_cell(cell)]


def is_test_cell(cell: NotebookNode) -> bool:
    """An autograded test cell: graded, not a solution, code."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return bool(meta.get("grade")) and not meta.get("solution") and cell.cell_type == "code"


_is_test_cell = is_test_cell


def restore_test_cells(nb: NotebookNode, source: NotebookNode) -> NotebookNode:
    """A copy of ``nb`` whose test cells are the source's: edited ones replaced,
    deleted ones put back after the exercise's solution cell (or at the end)."""
    nb = copy.deepcopy(nb)
    originals = {cell.metadata.nbgrader.grade_id: cell for cell in source.cells if is_test_cell(cell)}
    present = set()
    for index, cell in enumerate(nb.cells):
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id in originals:
            nb.cells[index] = copy.deepcopy(originals[grade_id])
            present.add(grade_id)
    for grade_id, original in originals.items():
        if grade_id in present:
            continue
        exercise = registry.exercise_of_grade_id(grade_id)
        ids = [cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") for cell in nb.cells]
        anchor = max((i for i, gid in enumerate(ids)
                      if gid and (gid == exercise or registry.exercise_of_grade_id(gid) == exercise)), default=None)
        position = len(nb.cells) if anchor is None else anchor + 1
        nb.cells.insert(position, copy.deepcopy(original))
        present.add(grade_id)
    return nb


def execute(nb: NotebookNode, cwd: str | os.PathLike, timeout: int = DEFAULT_CELL_TIMEOUT) -> tuple[NotebookNode, dict[int, list[CheckResult]], list[str]]:
    """Run every cell; return the executed copy, the check results of each cell, and what went wrong.

    A cell that runs longer than ``timeout`` seconds is interrupted, gets a
    ``CellTimeoutError`` as its output, and the run goes on with the next cell;
    when the interrupt does not stop it, the run ends there, as below.
    When the kernel dies, the cell it died in and every test cell that never ran
    get an error output saying so (nbgrader would score an unrun test cell as
    passed), and the verdicts already known are kept.
    """
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    faults: list[str] = []
    results: dict[int, list[CheckResult]] = {}
    started: list[int] = []
    with tempfile.TemporaryDirectory(prefix="autograder-") as scratch:
        results_path = Path(scratch) / "results.jsonl"
        results_path.touch()
        offset = 0

        async def collect(cell, cell_index, execute_reply):
            nonlocal offset
            with open(results_path, encoding="utf-8") as stream:
                stream.seek(offset)
                lines = stream.read()
                offset = stream.tell()
            found = [CheckResult.from_json(line) for line in lines.splitlines() if line.strip()]
            if found:
                results.setdefault(cell_index, []).extend(found)
            content = (execute_reply or {}).get("content", {})
            if content.get("ename") == TIMEOUT_ERROR:
                # The interrupt may already have left a bare KeyboardInterrupt here; the timeout says more.
                cell.outputs = [o for o in cell.outputs if o.output_type != "error"]
                cell.outputs.append(_error_output(TIMEOUT_ERROR, content["evalue"]))
                if not await _kernel_answers(client, INTERRUPT_GRACE):
                    raise _KernelStuck
                faults.append(f"{cell_label(nb, cell_index)} ran longer than {timeout} s and was stopped; "
                              "the run went on with the next cell")

        client = NotebookClient(
            nb, timeout=timeout, kernel_name="python3", allow_errors=True, interrupt_on_timeout=True,
            error_on_timeout={"ename": TIMEOUT_ERROR,
                              "evalue": f"this cell ran longer than {timeout} s and was stopped. "
                                        "Look for a loop that never ends, or training that runs too long.",
                              "traceback": []},
            resources={"metadata": {"path": str(cwd)}},
            on_cell_start=lambda cell, cell_index: started.append(cell_index),
            on_cell_executed=collect,
            # The kernel talks to us over loopback; its notice about unencrypted TCP is noise here.
            extra_arguments=["--IPKernelApp.log_level=ERROR"],
        )
        # nbclient logs timeouts and dead kernels as errors; they are reported as faults instead.
        client.log = _QUIET_LOG
        env = {**os.environ, RESULTS_ENV: str(results_path)}
        try:
            client.execute(env=env)
        except DeadKernelError:
            died = started[-1] if started else 0
            faults.append(f"the kernel (the Python process that runs the notebook) died while running "
                          f"{cell_label(nb, died)}; the cells after it did not run")
            nb.cells[died].outputs.append(_error_output(
                KERNEL_DIED, "the kernel died while running this cell (a crash in native code, running out of "
                             "memory, or os._exit() stops the whole Python process)."))
            _mark_unrun(nb, died, "the kernel died earlier")
        except _KernelStuck:
            stuck = started[-1]
            faults.append(f"{cell_label(nb, stuck)} ran longer than {timeout} s and did not stop when interrupted "
                          "(does it catch KeyboardInterrupt, or ignore SIGINT?); its kernel was shut down and the "
                          "cells after it did not run")
            _mark_unrun(nb, stuck, "the kernel was shut down earlier, as it would not stop")
    return nb, results, faults


async def _kernel_answers(client: NotebookClient, within: float) -> bool:
    """Whether the kernel, just interrupted, gets back to answering requests within ``within`` seconds."""
    msg_id = client.kc.execute("", silent=True, store_history=False, allow_stdin=False)
    deadline = monotonic() + within
    while (left := deadline - monotonic()) > 0:
        try:
            msg = await ensure_async(client.kc.shell_channel.get_msg(timeout=left))
        except Empty:
            break
        if msg["parent_header"].get("msg_id") == msg_id:
            return True
    client.shutdown_kernel = "immediate"  # a graceful shutdown would wait on the stuck cell
    return False


def _error_output(ename: str, evalue: str) -> NotebookNode:
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def _mark_unrun(nb: NotebookNode, last: int, why: str) -> None:
    """Give every test cell after the last one that ran an error that says why it did not run."""
    for cell in nb.cells[last + 1:]:
        if is_test_cell(cell):
            cell.outputs = [_error_output(NOT_RUN, f"this test did not run: {why}, in {cell_label(nb, last)}.")]


def _exercise_names() -> set[str]:
    return {name for notebook in registry.notebooks() for name in registry.exercises(notebook)}


def cell_label(nb: NotebookNode, index: int) -> str:
    """How a learner finds a cell: its position from the top (markdown cells count)
    and the exercise it belongs to, or its first line."""
    cell = nb.cells[index]
    grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
    exercise = registry.exercise_of_grade_id(grade_id) if grade_id and is_test_cell(cell) else None
    if exercise:
        where = f"the test of {exercise}"
    elif grade_id in _exercise_names():
        where = f"exercise {grade_id}"
    else:
        first = next((line.strip() for line in cell.source.splitlines() if line.strip()), "")
        where = f'"{first[:40]}{"..." if len(first) > 40 else ""}"' if first else "empty"
    return f"cell {index + 1} ({where})"


def grade_cells(nb: NotebookNode, results: dict[int, list[CheckResult]] | None = None) -> list[CellVerdict]:
    verdicts = []
    for index, cell in enumerate(nb.cells):
        if not is_grade(cell) or is_solution(cell) or cell.cell_type != "code":
            continue
        points, max_points = determine_grade(cell)
        grade_id = cell.metadata.nbgrader.grade_id
        verdicts.append(CellVerdict(
            grade_id=grade_id, exercise=registry.exercise_of_grade_id(grade_id),
            points=float(points or 0.0), max_points=float(max_points),
            error=_error_text(cell) if points != max_points else "",
            results=(results or {}).get(index, []),
        ))
    return verdicts


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _error_text(cell: NotebookNode) -> str:
    for output in cell.get("outputs", []):
        if output.output_type == "error":
            return _ANSI.sub("", f"{output.ename}: {output.evalue}").strip()
        if output.output_type == "stream" and output.name == "stderr":
            return "printed to stderr: " + _ANSI.sub("", output.text).strip()[:500]
    return ""


def run_notebook(path: str | os.PathLike, source: str | os.PathLike | None = None,
                 timeout: int = DEFAULT_CELL_TIMEOUT) -> NotebookRun:
    """Read, restore the test cells from ``source`` (when given), execute and grade a notebook."""
    path = Path(path)
    nb = read_notebook(path)
    assignment = assignment_of(nb, path)
    if source is not None:
        nb = restore_test_cells(nb, read_notebook(source))
    executed, results, faults = execute(nb, cwd=path.parent, timeout=timeout)
    return NotebookRun(assignment=assignment, path=path, notebook=executed,
                       verdicts=grade_cells(executed, results), faults=faults)
