"""What the course adds to nbgrader's own steps (wired in ``nbgrader_config.py``).

:class:`TagTestCells` runs last when nbgrader generates the student release
(``make release``, or formgrader's *Generate* button). It tags every test cell
``raises-exception``, Jupyter's standard mark for a cell that is expected to
fail. JupyterLab sends each cell with ``stop_on_error`` unless it carries that
tag, and the kernel then drops every cell already queued behind a failing one.
In a fresh release every test cell fails ("not written yet"), so without the
tag *Run All* stops at the first test and skips a changing number of the cells
after it (how many depends on how far the queue had got). With the tag, *Run
All* runs the whole notebook and each test cell shows its own report, as the
course's tests expect; an error in any other cell (a learner's typo in a
solution cell, say) still stops the run there.

Tags are not part of nbgrader's checksums, so grading is unaffected.
"""

from __future__ import annotations

from nbgrader.preprocessors import NbGraderPreprocessor

from autograder.cells import is_test_cell

RAISES_EXCEPTION = "raises-exception"


class TagTestCells(NbGraderPreprocessor):
    """Tag each test cell ``raises-exception`` so that a failing test does not stop *Run All*."""

    def preprocess_cell(self, cell, resources, index):
        if is_test_cell(cell):
            tags = list(cell.metadata.get("tags", []))
            if RAISES_EXCEPTION not in tags:
                cell.metadata["tags"] = tags + [RAISES_EXCEPTION]
        return cell, resources
