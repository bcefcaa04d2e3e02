"""Run a notebook the way nbgrader grades it, once, for every front end.

    prepared = prepare(path)            read it, find its assignment, restore its test cells
    run(prepared, Engine(timeout=60))   execute it (autograder.preprocessors) and score each test cell

``autograder check`` and ``pytest --nbcheck`` call these two; ``autograder
grade`` lets nbgrader's autograde call the same preprocessors, configured by
:meth:`Engine.config` (the warm, confined grading kernel and the judge are settings and observers).
"""

from __future__ import annotations

import copy
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat import NotebookNode
from traitlets.config import Config

from autograder import registry
from autograder.cells import cell_label as _cell_label, grade_id, grade_ids, is_test_cell
from autograder.course import Course
from autograder.preprocessors import CollectRecords, MarkStoppedCells, RunCells, RunLog
from autograder.verdicts import CellVerdict, cell_verdicts

DEFAULT_CELL_TIMEOUT = 60

_QUIET_LOG = logging.getLogger("autograder.execute")
_QUIET_LOG.addHandler(logging.NullHandler())
_QUIET_LOG.propagate = False


class NotebookError(Exception):
    """A notebook that cannot be read or does not belong to the course."""


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


def assignment_of(nb: NotebookNode, path: str | os.PathLike | None = None) -> str:
    """The course notebook this one is a copy of, judged by its grade ids (then its file name)."""
    ids = set(grade_ids(nb))
    names = registry.notebooks()
    stem = Path(path).stem if path is not None else None
    if stem in names and ids & set(registry.exercises(stem)):
        return stem  # the usual case, without importing every notebook's checks
    best, best_overlap = None, 0
    for name in names:
        overlap = len(ids & set(registry.exercises(name)))
        if overlap > best_overlap:
            best, best_overlap = name, overlap
    if best is None and stem in names:
        best = stem
    if best is None:
        raise NotebookError(f"{path or 'this notebook'} is not one of the course's notebooks "
                            f"({', '.join(names)}): none of its cells is an exercise.")
    return best


def restore_test_cells(nb: NotebookNode, source: NotebookNode, assignment: str | None = None) -> NotebookNode:
    """A copy of ``nb`` whose test cells are the source's (``assignment``'s, when known): edited ones
    replaced, deleted ones put back after the exercise's solution cell (or at the end)."""
    nb = copy.deepcopy(nb)
    originals = {grade_id(cell): cell for cell in source.cells if is_test_cell(cell)}
    present = set()
    for index, cell in enumerate(nb.cells):
        if grade_id(cell) in originals:
            nb.cells[index] = copy.deepcopy(originals[grade_id(cell)])
            present.add(grade_id(cell))
    for gid, original in originals.items():
        if gid in present:
            continue
        exercise = registry.exercise_of_grade_id(gid, assignment)
        ids = [grade_id(cell) for cell in nb.cells]
        anchor = max((i for i, other in enumerate(ids)
                      if other and (other == exercise or registry.exercise_of_grade_id(other, assignment) == exercise)),
                     default=None)
        nb.cells.insert(len(nb.cells) if anchor is None else anchor + 1, copy.deepcopy(original))
        present.add(gid)
    return nb


def cell_label(nb: NotebookNode, index: int, assignment: str | None = None) -> str:
    """How a learner finds a cell: its number (from 1, markdown cells counted) and its exercise or first line."""
    return _cell_label(nb, index, lambda gid: registry.exercise_of_grade_id(gid, assignment))


@dataclass
class Prepared:
    """A notebook ready to run: its assignment, and its cells with the course's test cells restored."""

    path: Path
    assignment: str
    notebook: NotebookNode
    source: Path | None  # the notebook the test cells came from (None: the notebook's own were kept)

    @property
    def test_cell_ids(self) -> list[str]:
        return [grade_id(cell) for cell in self.notebook.cells if is_test_cell(cell)]


def prepare(path: str | os.PathLike, source: str | os.PathLike | None = None,
            course: Course | None = None) -> Prepared:
    """Read ``path`` and restore its test cells (and hidden tests) from ``source``, by default the
    course's own copy of the assignment (see :meth:`~autograder.course.Course.authoritative`)."""
    path = Path(path)
    nb = read_notebook(path)
    assignment = assignment_of(nb, path)
    if source is None:
        course = course or Course.find(path)
        source = course.authoritative(assignment) if course else None
    if source is not None:
        nb = restore_test_cells(nb, read_notebook(source), assignment)
    return Prepared(path, assignment, nb, Path(source) if source else None)


@dataclass
class Engine:
    """How a notebook runs. A learner's check runs it in a fresh kernel and collects what its checks record;
    grading adds a warm, confined kernel (``kernels``), output limits, the bookkeeping lock handed over while
    the kernel runs (``while_running``), and observers of its own (the judge, the guard, recovery: see
    :func:`autograder.grading.submission.grading_engine`). Each field is a trait of
    :class:`~autograder.preprocessors.RunCells`."""

    timeout: int = DEFAULT_CELL_TIMEOUT
    kernel_name: str = "python3"
    limit_output: bool = False
    kernels: type | None = None
    fallback_kernels: type | None = None
    while_running: object = None
    scratch: str = ""
    observers: list = field(default_factory=lambda: [CollectRecords])
    # The kernel talks to us over loopback; its notice about unencrypted TCP is noise here.
    extra_arguments: list[str] = field(default_factory=lambda: ["--IPKernelApp.log_level=ERROR"])

    def config(self) -> Config:
        config = Config()
        config.Execute.timeout = self.timeout
        config.Execute.interrupt_on_timeout = True
        settings = config.RunCells
        for name in ("kernel_name", "limit_output", "kernels", "fallback_kernels", "while_running", "scratch",
                     "observers", "extra_arguments"):
            value = getattr(self, name)
            if value not in (None, ""):
                settings[name] = value
        return config

    def preprocessors(self) -> list[type]:
        """The steps of a run, in order; nbgrader's autograde puts its own after them."""
        return [RunCells, MarkStoppedCells]


@dataclass
class NotebookRun:
    assignment: str
    path: Path
    notebook: NotebookNode
    verdicts: list[CellVerdict]
    faults: list[str]
    log: RunLog | None = None

    @property
    def score(self) -> float:
        return sum(v.points for v in self.verdicts)

    @property
    def max_score(self) -> float:
        return sum(v.max_points for v in self.verdicts)


def execute(nb: NotebookNode, cwd: str | os.PathLike, engine: Engine | None = None) -> tuple[NotebookNode, RunLog]:
    """Run every cell of a copy of ``nb`` in ``cwd``; return the executed copy and what the run found."""
    engine = engine or Engine()
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    log = RunLog()
    resources = {"metadata": {"path": str(cwd)}, "autograder": log}
    config = engine.config()
    for step in engine.preprocessors():
        preprocessor = step(config=config)
        preprocessor.log = _QUIET_LOG  # nbclient logs timeouts and dead kernels as errors; they are faults here
        nb, resources = preprocessor(nb, resources)
    return nb, log


def run(prepared: Prepared, engine: Engine | None = None) -> NotebookRun:
    """Execute a prepared notebook next to its file and score every test cell with nbgrader's rule."""
    executed, log = execute(prepared.notebook, prepared.path.parent, engine)
    verdicts = cell_verdicts(executed, log.records,
                             exercise_of=lambda gid: registry.exercise_of_grade_id(gid, prepared.assignment))
    return NotebookRun(prepared.assignment, prepared.path, executed, verdicts, log.faults, log)


def run_notebook(path: str | os.PathLike, source: str | os.PathLike | None = None,
                 timeout: int = DEFAULT_CELL_TIMEOUT) -> NotebookRun:
    """:func:`prepare` and :func:`run` in one call (for scripts and benchmarks)."""
    return run(prepare(path, source), Engine(timeout=timeout))

