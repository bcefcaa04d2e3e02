"""How long each solution notebook takes to run top to bottom, and the whole series.

    python benchmarks/notebooks.py                 # every notebook in solutions/
    python benchmarks/notebooks.py 08 09_capstone  # only those whose names start so

Each notebook runs the way grading runs it (autograder.execute.prepare and run:
a fresh kernel, every cell, the test cells scored), one after another so that
the figures do not compete for the CPU. It prints, per notebook, the wall time
including the kernel's start, the time spent inside cells, the slowest cell and
the score, then the total for the series. It times whatever notebooks exist in
solutions/; it is a measurement, not a test, and always exits 0 unless a
notebook cannot be read.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autograder.cells import cell_number, grade_id  # noqa: E402
from autograder.course import Course  # noqa: E402
from autograder.execute import NotebookError, run_notebook  # noqa: E402

SERIES_BUDGET_S = 180
NOTEBOOK_BUDGET_S = 60


def solution_notebooks(prefixes: list[str]) -> list[Path]:
    found = sorted(p / f"{p.name}.ipynb" for p in Course.here(ROOT).source.iterdir()
                   if p.is_dir() and (p / f"{p.name}.ipynb").exists())
    if prefixes:
        found = [p for p in found if any(p.stem.startswith(prefix) for prefix in prefixes)]
    return found


def _seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end.replace("Z", "+00:00"))
            - datetime.fromisoformat(start.replace("Z", "+00:00"))).total_seconds()


# The timestamps a cell's run may carry (metadata.execution, as nbclient's record_timing writes them; the
# judge writes the same for the test cells it runs), from the start of the code to the end of its reply.
# When the best pair is missing, the closest one present is used, so cells timed another way still count.
STARTS = ("iopub.execute_input", "iopub.status.busy")
ENDS = ("shell.execute_reply", "iopub.status.idle")


def cell_seconds(cell) -> float | None:
    """How long a code cell ran, from its recorded timestamps; None when it has no start or no end."""
    timing = cell.get("metadata", {}).get("execution", {})
    start = next((timing[key] for key in STARTS if timing.get(key)), None)
    end = next((timing[key] for key in ENDS if timing.get(key)), None)
    if cell.get("cell_type") != "code" or not start or not end:
        return None
    return _seconds(start, end)


def cell_times(nb) -> list[tuple[str, float]]:
    """(name, seconds) of every executed code cell: its grade id, or its number for a cell without one."""
    times = []
    for index, cell in enumerate(nb.cells):
        seconds = cell_seconds(cell)
        if seconds is not None:
            times.append((grade_id(cell) or cell_number(index), seconds))
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="only notebooks whose names start with these")
    args = parser.parse_args(argv)

    paths = solution_notebooks(args.notebooks)
    if not paths:
        print("no solution notebooks to time")
        return 0
    load = " (load average %.1f, %.1f, %.1f)" % os.getloadavg() if hasattr(os, "getloadavg") else ""
    print(f"Timing {len(paths)} solution notebook{'s' if len(paths) != 1 else ''} on {os.cpu_count()} CPU cores{load}")
    print(f"{'notebook':28s} {'wall s':>7s} {'cells s':>8s}  {'slowest cell':34s} {'score':>9s}")

    total = 0.0
    for path in paths:
        started = time.perf_counter()
        try:
            run = run_notebook(path)
        except NotebookError as exc:
            print(f"{path.stem:28s} cannot be run: {exc}")
            return 1
        wall = time.perf_counter() - started
        total += wall
        cells = cell_times(run.notebook)
        slowest_name, slowest = max(cells, key=lambda item: item[1], default=("-", 0.0))
        notes = []
        if run.faults:
            notes.append("; ".join(run.faults))
        if run.cell_errors():
            notes.append(f"{len(run.cell_errors())} non-test cell(s) raised")
        if wall > NOTEBOOK_BUDGET_S:
            notes.append(f"over {NOTEBOOK_BUDGET_S} s")
        print(f"{path.stem:28s} {wall:7.1f} {sum(s for _, s in cells):8.1f}  "
              f"{slowest_name[:26]:26s} {slowest:6.1f} s {run.score:4g}/{run.max_score:<4g}"
              + (f"  ({', '.join(notes)})" if notes else ""))

    verdict = "within" if total <= SERIES_BUDGET_S else "OVER"
    print(f"{'series':28s} {total:7.1f}   ({verdict} the {SERIES_BUDGET_S} s budget for the whole series)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
