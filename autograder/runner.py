"""Run the checks of one exercise against a namespace and collect the results.

The runner is where the learner's session is protected from the checks and
the checks from the learner's session: every check runs with its own random
state, with warnings and stderr captured (nbgrader scores any stderr output in
a test cell as zero), and with every exception turned into a result that says
whose fault it was.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import time
import traceback
import types
import warnings
from pathlib import Path

import torch

from autograder import registry
from autograder.results import (
    ERROR,
    FAILED,
    NOT_DEFINED,
    NOT_IMPLEMENTED,
    PASSED,
    RESULTS_ENV,
    SKIPPED,
    CheckFailure,
    CheckResult,
    shorten,
)

_PACKAGE_DIR = str(Path(__file__).resolve().parent)
_LIBRARY_DIRS = tuple(
    str(Path(p).resolve()) for p in {sys.prefix, sys.base_prefix, sys.exec_prefix} if p
)


def run_checks(exercise: str, namespace: dict, inputs: dict | None = None, hidden: bool = False) -> list[CheckResult]:
    """Run every check of ``exercise`` against the objects in ``namespace``.

    ``inputs`` replace the checks' default inputs (a hidden test's fresh sizes
    or seeds); a check only receives the inputs it declares.
    """
    _verify()
    # The learner's code runs inside the checks: the runner and the checks go on with private copies
    # of their modules' globals, so that replacing, say, a check module's `expect` (through
    # sys.modules, and putting it back later) changes nothing they use.
    return _private(_run_checks)(exercise, namespace, inputs, hidden)


def _run_checks(exercise: str, namespace: dict, inputs: dict | None, hidden: bool) -> list[CheckResult]:
    inputs = inputs or {}
    checks = [check for check in registry.checks_of(exercise) if hidden or not check.instructor]
    if not checks:  # every exercise has checks: an empty list was emptied by someone
        raise IntegrityError(f"the checks of {exercise} were removed by the notebook's code; restart the kernel.")
    unknown = set(inputs) - {name for check in checks for name in check.inputs}
    if unknown:
        raise TypeError(f"the checks of {exercise} take no input named {', '.join(sorted(unknown))}")

    results: list[CheckResult] = []
    blocked: CheckResult | None = None
    for check in checks:
        if blocked is not None:
            results.append(_result(check, SKIPPED, hidden, message=f"not run: {blocked.message}", code=blocked.code))
            continue
        result = _run_one(check, namespace, hidden, {k: v for k, v in inputs.items() if k in check.inputs})
        results.append(result)
        if result.status in (NOT_DEFINED, NOT_IMPLEMENTED):
            blocked = result
    _verify()  # the learner's code ran in between: it must not have rewritten how results are made
    _record(results)
    return results


def _private(func):
    """``func`` with private copies of the globals of every autograder function it reaches through
    its globals (made now, for one call)."""
    copies: dict[int, dict] = {}

    def rebind(function):
        namespace = function.__globals__
        if id(namespace) not in copies:
            copy = copies[id(namespace)] = dict(namespace)
            for name, value in namespace.items():
                if isinstance(value, types.FunctionType) and _is_own(value):
                    copy[name] = rebind(value)
        fresh = types.FunctionType(function.__code__, copies[id(namespace)], function.__name__,
                                   function.__defaults__, function.__closure__)
        fresh.__kwdefaults__ = function.__kwdefaults__
        fresh.__dict__.update(function.__dict__)
        return fresh

    return rebind(func)


def _is_own(function) -> bool:
    code = function.__code__
    if code not in _OWN_CODE:
        _OWN_CODE[code] = str(Path(code.co_filename).resolve()).startswith(_PACKAGE_DIR)
    return _OWN_CODE[code]


_OWN_CODE: dict = {}  # code object -> whether it is the autograder's


def _run_one(check: registry.Check, namespace: dict, hidden: bool, inputs: dict) -> CheckResult:
    missing = [name for name in check.needs if name not in namespace]
    if missing:
        name = missing[0]
        return _result(
            check, NOT_DEFINED, hidden, code="not_defined",
            message=f"`{name}` is not defined. Run the cell that defines it "
            "(or Run > Run All Above Selected Cell) and then this test again.",
        )
    args = {name: namespace[name] for name in check.needs}
    stderr = io.StringIO()
    started = time.perf_counter()
    with _isolated_session(), warnings.catch_warnings(record=True) as caught, contextlib.redirect_stderr(stderr):
        warnings.simplefilter("always")
        try:
            _private(check.func)(**args, **inputs)
        except CheckFailure as failure:
            outcome = (FAILED, failure.message, failure.code)
        except NotImplementedError as exc:
            outcome = (NOT_IMPLEMENTED, _describe_unfinished(exc, check), "not_implemented")
        except Exception as exc:  # the learner's code raised, or returned something a check cannot use
            outcome = (ERROR, _describe_exception(exc, check), "raised")
        else:
            outcome = (PASSED, "", "")
    status, message, code = outcome
    result = _result(check, status, hidden, message=message, code=code)
    result.seconds = round(time.perf_counter() - started, 3)
    result.notes = _notes(caught, stderr.getvalue())
    return result


def _result(check: registry.Check, status: str, hidden: bool, message: str = "", code: str = "") -> CheckResult:
    return CheckResult(
        notebook=check.notebook, exercise=check.exercise, check=check.name,
        status=status, message=message, code=code, hidden=hidden,
    )


@contextlib.contextmanager
def _isolated_session():
    """Leave the learner's random state, grad mode and default dtype as they were."""
    grad_enabled = torch.is_grad_enabled()
    default_dtype = torch.get_default_dtype()
    with torch.random.fork_rng(devices=[]):
        try:
            yield
        finally:
            torch.set_grad_enabled(grad_enabled)
            torch.set_default_dtype(default_dtype)


def _describe_unfinished(exc: NotImplementedError, check: registry.Check) -> str:
    frame = _learner_frame(exc)
    unfinished = frame.name if frame is not None and frame.name not in ("<module>", "<lambda>") else check.exercise
    if unfinished in (check.exercise, "__init__", "forward"):
        return (f"`{check.exercise}` is not written yet: it still raises NotImplementedError. "
                "Replace the `raise NotImplementedError()` line with your code.")
    return (f"`{check.exercise}` relies on `{unfinished}`, which is not written yet "
            "(it still raises NotImplementedError). Finish that exercise first.")


def _describe_exception(exc: BaseException, check: registry.Check) -> str:
    """Say what was raised and, when the learner's code raised it, on which line."""
    frame = _learner_frame(exc)
    what = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
    if frame is not None:
        where = f"in `{frame.name}`" + (f", at `{frame.line.strip()}`" if frame.line else "")
        return f"your code raised {what} ({where})."
    return (
        f"the check could not use what your code returned: {what}. "
        f"Compare what `{check.exercise}` returns with what the exercise asks for (types and shapes)."
    )


def _learner_frame(exc: BaseException) -> traceback.FrameSummary | None:
    """The innermost frame of the learner's own code, if the exception went through it
    after the check called it; None when the check's own code raised last."""
    frames = traceback.extract_tb(exc.__traceback__)
    learner = None
    for frame in frames:
        filename = str(Path(frame.filename).resolve()) if not frame.filename.startswith("<") else frame.filename
        if filename.startswith(_PACKAGE_DIR):
            learner = None
        elif not filename.startswith(_LIBRARY_DIRS):
            learner = frame
    return learner


def _notes(caught: list[warnings.WarningMessage], stderr: str) -> list[str]:
    notes = []
    for warning in caught:
        text = f"{warning.category.__name__}: {warning.message}"
        if text not in notes:
            notes.append(text)
    if stderr.strip():
        notes.append("printed to stderr: " + shorten(stderr, 300))
    return notes


def _record(results: list[CheckResult]) -> None:
    """Append results to the file named by $AUTOGRADER_RESULTS, for the tools that run notebooks."""
    path = os.environ.get(RESULTS_ENV)
    if not path:
        return
    with open(path, "a", encoding="utf-8") as out:
        for result in results:
            out.write(result.to_json() + "\n")


def _code_of(func) -> object:
    return getattr(func, "__code__", None)


# The runner's own functions, as this module defined them. A notebook that replaces one of them (or
# the registry's lookup, or registers a check that is not the course's), typically from inside a
# function the checks call, makes run_checks fail loudly instead of reporting passes: see _verify.
# (Replacing _verify itself beforehand is undone by `autograder grade`'s guard, which re-imports
# the package before each test cell when anything in it changed.)
_OWN = {name: _code_of(globals()[name]) for name in (
    "run_checks", "_run_checks", "_private", "_is_own", "_run_one", "_result", "_record", "_notes",
    "_describe_exception", "_describe_unfinished", "_learner_frame", "_isolated_session")}
_OWN_REGISTRY = {name: _code_of(getattr(registry, name)) for name in ("checks_of", "_load_all")}


class IntegrityError(RuntimeError):
    """The autograder's own code was replaced while a notebook ran."""


def _integrity_problem() -> str:
    here = globals()
    for name, code in _OWN.items():
        if _code_of(here.get(name)) is not code:
            return f"autograder.runner.{name}"
    for name, code in _OWN_REGISTRY.items():
        if _code_of(getattr(registry, name, None)) is not code:
            return f"autograder.registry.{name}"
    for group in registry._NOTEBOOKS.values():
        for found in group.by_exercise.values():
            for check in found:
                code = _code_of(check.func)
                if code in _TRUSTED:
                    continue
                if not str(Path(getattr(code, "co_filename", "")).resolve()).startswith(_PACKAGE_DIR):
                    return f"the check {check.name} (it is not one of the course's)"
                _TRUSTED.add(code)
    return ""


_TRUSTED: set = set()  # code objects of checks already found in the package's own files


def _verify(_problem=_integrity_problem) -> None:
    problem = _problem()
    if problem:
        raise IntegrityError(f"{problem} was replaced by the notebook's code, so the checks cannot be trusted. "
                             "Restart the kernel and run the notebook without changing the autograder.")
