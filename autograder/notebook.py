"""``check("exercise")``: the one line a test cell needs.

In a notebook, ``check`` runs the exercise's checks against the notebook's
own variables, prints one line when all is well, and raises
:class:`ChecksFailed` (an ``AssertionError``, so nbgrader scores the cell zero)
with a short report when something is wrong. The report is the whole error:
IPython shows it without a traceback through the autograder.
"""

from __future__ import annotations

import sys
import textwrap

from autograder.results import NOT_DEFINED, NOT_IMPLEMENTED, PASSED, CheckResult
from autograder.runner import run_checks


class ChecksFailed(AssertionError):
    def __init__(self, exercise: str, results: list[CheckResult]):
        self.exercise = exercise
        self.results = results
        super().__init__(report(exercise, results))

    def _render_traceback_(self) -> list[str]:
        # IPython calls this instead of printing a traceback. JupyterLab and
        # nbgrader's feedback break long output lines anywhere, mid-word too,
        # so the report arrives already wrapped at word boundaries.
        name = type(self).__name__
        lines = _wrap(f"{name}: {self.args[0]}")
        lines[0] = lines[0].replace(name, f"\x1b[0;31m{name}\x1b[0m", 1)
        return lines


class CheckResults(list):
    """What :func:`check` returns: its results, as a plain list.

    A test cell ends with ``check(...)``, so IPython would display this value
    under the printed verdict, and nbgrader reads a test cell's displayed value
    as a partial score. Displaying it therefore shows nothing; ``print`` or
    ``list`` it to see the results.
    """

    def _ipython_display_(self) -> None:
        pass


def check(exercise: str, /, **inputs) -> CheckResults:
    """Check ``exercise`` against the calling notebook's variables.

    Keyword arguments are fresh inputs for the checks (other sizes, seeds or values), and nothing else:
    ``check`` has no options of its own, so no input can be mistaken for one. ``check.hidden(...)``, which
    hidden tests call, also runs the instructor's checks, where they are installed.
    """
    __tracebackhide__ = True
    return _checked(exercise, sys._getframe(1).f_globals, inputs, hidden=False)


def _hidden(exercise: str, /, **inputs) -> CheckResults:
    """``check`` as a hidden test calls it: the instructor's checks too, where they are installed."""
    __tracebackhide__ = True
    return _checked(exercise, sys._getframe(1).f_globals, inputs, hidden=True)


check.hidden = _hidden


def _checked(exercise: str, namespace: dict, inputs: dict, hidden: bool) -> CheckResults:
    __tracebackhide__ = True
    results = CheckResults(run_checks(exercise, namespace, inputs, hidden=hidden))
    if all(result.status == PASSED for result in results):
        print(report(exercise, results))
        return results
    raise ChecksFailed(exercise, results)


def _wrap(text: str, width: int = 100) -> list[str]:
    """Each line of ``text`` wrapped to ``width``, continuation lines indented under their line."""
    wrapped = []
    for line in text.splitlines():
        indent = " " * max(len(line) - len(line.lstrip()), 2)
        wrapped.extend(textwrap.wrap(line, width, subsequent_indent=indent, break_long_words=False,
                                     break_on_hyphens=False) or [""])
    return wrapped


def report(exercise: str, results: list[CheckResult]) -> str:
    failed = [r for r in results if r.status != PASSED]
    hidden = " (hidden tests)" if results and results[0].hidden else ""
    if failed and failed[0].status in (NOT_IMPLEMENTED, NOT_DEFINED) and not any(r.passed for r in results):
        return f"✘ {exercise}{hidden}: {failed[0].message}"
    if not failed:
        lines = [f"✔ {exercise}{hidden}: all {len(results)} checks passed."]
    else:
        lines = [f"{exercise}{hidden}: {len(failed)} of {len(results)} checks did not pass."]
    for result in results:
        if result.status == PASSED:
            if failed:
                lines.append(f"  ✔ {result.title}")
        elif result.status == "skipped":
            lines.append(f"  · {result.title} (not run)")
        else:
            lines.append(f"  ✘ {result.title}")
            lines.extend("      " + line for line in result.message.splitlines())
            if result.fix:
                lines.append(f"      The same failure again: {result.fix}")
    notes = sorted({note for result in results for note in result.notes})
    if notes:
        lines.append("  Note: your code raised these warnings while it was checked (they cost no points):")
        lines.extend(f"    {note}" for note in notes[:5])
    return "\n".join(lines)
