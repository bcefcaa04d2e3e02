"""What went wrong in a run besides the tests' own verdicts: one rule for a learner's check and a class's grade.

The test cells are judged by their verdicts (:mod:`autograder.verdicts`). The
rest of a run is judged here, the same way for ``autograder check`` and
``autograder grade``:

- **faults**, what went wrong and may cost points: the run's own (a cell stopped
  at the time limit, a dead or stuck kernel), then every code cell outside the
  tests that raised, named by what it raised (out of memory, with the kernel's
  limit; a syntax error; any other error). A fault in the cell where an exercise
  is written carries that exercise: its verdict names the same error
  (``ExerciseVerdict.cell_error``), so a learner's check shows it there.
- **notes**, facts that cost nothing: a cell outside the tests that printed
  warnings (nbgrader scores only test cells; other output on stderr, such as a
  progress bar, is not worth a note), and output dropped beyond nbgrader's limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from autograder import registry
from autograder.cells import cell_label, error_of, grade_id, is_test_cell, stderr_of
from autograder.verdicts import RUN_ERRORS

MEMORY = re.compile(r"(?i)can't allocate memory|cannot allocate memory|std::bad_alloc|out of memory|not enough memory")
WARNING = re.compile(r"(?i)warn")
SYNTAX = ("SyntaxError", "IndentationError", "TabError")


@dataclass(frozen=True)
class Fault:
    text: str
    exercise: str = ""  # the exercise written in the cell that raised ("" for any other cell, or the run)


@dataclass
class Faults:
    found: list[Fault] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def faults(self) -> list[str]:
        return [fault.text for fault in self.found]

    def outside_exercises(self) -> list[str]:
        """The faults that no exercise's verdict names already."""
        return [fault.text for fault in self.found if not fault.exercise]


def find_faults(nb, assignment: str, run_faults: list[str] = (), truncated: dict[int, int] | None = None,
                memory_limit: int | None = None) -> Faults:
    """The faults and notes of the executed notebook ``nb`` of ``assignment``; ``run_faults`` and
    ``truncated`` are what its run recorded (``RunLog.faults``, ``RunLog.truncated``), ``memory_limit``
    the kernel's limit in bytes (None: unlimited)."""
    exercises = set(registry.exercises(assignment)) if assignment in registry.notebooks() else set()

    def label(index: int) -> str:
        return cell_label(nb, index, lambda gid: registry.exercise_of_grade_id(gid, assignment))

    found = [Fault(text) for text in run_faults]
    notes = []
    for index, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code" or is_test_cell(cell):
            continue
        error = error_of(cell)
        if error and not error.startswith(RUN_ERRORS):  # those are the run's faults
            gid = grade_id(cell)
            found.append(Fault(f"{label(index)} {_what_it_raised(error, memory_limit)}",
                               gid if gid in exercises else ""))
        if WARNING.search(stderr_of(cell, limit=2**31)):
            notes.append(f"{label(index)} printed warnings (they cost no points)")
    for index, dropped in sorted((truncated or {}).items()):
        where = label(index) if index < len(nb.cells) else f"cell {index + 1}"
        notes.append(f"{where} printed {_size(dropped)} more than nbgrader keeps; the rest was dropped")
    return Faults(list(dict.fromkeys(found)), list(dict.fromkeys(notes)))


def _what_it_raised(error: str, memory_limit: int | None) -> str:
    ename, _, evalue = error.partition(":")  # error_of strips the space after an empty "MemoryError: "
    ename, evalue = ename.strip(), evalue.strip()
    if ename == "MemoryError" or MEMORY.search(evalue):
        if memory_limit:
            return (f"ran out of memory: each notebook may use at most {memory_limit / 2**30:g} GiB "
                    "(RLIMIT_AS on its kernel process)")
        return f"ran out of memory ({error})" if evalue else "ran out of memory"
    if ename in SYNTAX:
        return f"has a syntax error: {evalue}"
    return f"raised {error}"


def _size(chars: int) -> str:
    return f"{chars / 1e6:.1f} MB" if chars >= 1e5 else f"{chars / 1e3:.0f} kB"
