"""Grade notebooks with pytest: ``pytest --nbcheck path/to/notebook.ipynb``.

Each autograded test cell becomes one pytest test, named by its grade id.
The notebook runs once, in a real kernel, exactly as nbgrader's autograde
runs it (test cells restored from the course's source first), so pytest and
nbgrader give the same verdicts.
"""

from __future__ import annotations

from pathlib import Path

import pytest

# autograder.execute pulls in nbgrader and nbclient, seconds of imports that a
# pytest run without --nbcheck should not pay; it is imported where it is used.
# The notebook is prepared once, when collected, and run once, by its first test.


def pytest_addoption(parser):
    group = parser.getgroup("autograder")
    group.addoption("--nbcheck", action="store_true",
                    help="grade the course's .ipynb files: one test per autograded test cell")


def pytest_collect_file(file_path: Path, parent):
    if (parent.config.getoption("nbcheck") and file_path.suffix == ".ipynb"
            and ".ipynb_checkpoints" not in file_path.parts):
        return GradedNotebook.from_parent(parent, path=file_path)
    return None


class GradedNotebook(pytest.File):
    _run = None

    def collect(self):
        from autograder.execute import NotebookError, prepare

        try:
            self.prepared = prepare(self.path)
        except NotebookError as error:
            raise self.CollectError(str(error)) from None
        self.assignment = self.prepared.assignment
        for grade_id in self.prepared.test_cell_ids:
            yield GradedCell.from_parent(self, name=grade_id)

    def run(self):
        from autograder.execute import Engine, run

        if self._run is None:
            self._run = run(self.prepared, Engine())
        return self._run


class CellFailed(Exception):
    def __init__(self, verdict, faults: list[str]):
        super().__init__(verdict.grade_id if verdict else "missing")
        self.verdict = verdict
        self.faults = faults


class GradedCell(pytest.Item):
    def runtest(self):
        run = self.parent.run()
        verdict = next((v for v in run.verdicts if v.grade_id == self.name), None)
        if verdict is None or not verdict.passed:
            raise CellFailed(verdict, run.faults)

    def repr_failure(self, excinfo):
        from autograder.verdicts import diagnose

        if not isinstance(excinfo.value, CellFailed):
            return super().repr_failure(excinfo)
        verdict, faults = excinfo.value.verdict, excinfo.value.faults
        lines = []
        if verdict is None:
            lines.append(f"the test cell {self.name} did not run")
        else:
            status, code, message = diagnose(verdict)
            lines.append(f"{verdict.points:g} of {verdict.max_points:g} points: {status} ({code})")
            lines.append(message)
        lines.extend(f"note: {fault}" for fault in faults)
        return "\n".join(lines)

    def reportinfo(self):
        return self.path, None, f"{self.parent.assignment}::{self.name}"
