"""Run the checks of one exercise against the learner's code and collect the results.

The runner is where the learner's session is protected from the checks and the checks from the
learner's code. Every check talks to the learner's code through a :class:`~autograder.learner.Learner`:
in a notebook (a learner's own check) that is this very process, through
:class:`~autograder.learner.InProcess`; in grading it is the learner's kernel, while the checks run in the
grader's process (the judge). Either way each check gets the learner's random state, grad mode, dtype
and threads fresh and leaves them as they were, warnings and stderr of the learner's code are noted
(nbgrader scores any stderr output in a test cell as zero), and every exception becomes a result that
says whose fault it was.
"""

from __future__ import annotations

import os
import time
import types
from pathlib import Path

from autograder import registry
from autograder.codec import CodecError
from autograder.learner import InProcess, JudgeError, Learner, talking_to
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
)

_PACKAGE_DIR = str(Path(__file__).resolve().parent)


def run_checks(exercise: str, namespace: "dict | Learner", inputs: dict | None = None,
               hidden: bool = False, *, until_failure: bool = False) -> list[CheckResult]:
    """Run every check of ``exercise`` against the learner's code: the objects of ``namespace`` (in this
    process), or those a :class:`~autograder.learner.Learner` reaches (the judge's case).

    ``inputs`` replace the checks' default inputs (a hidden test's fresh sizes or seeds); a check only
    receives the inputs it declares. ``until_failure``: stop after the first check that neither passes nor is
    skipped (the results up to it are those of a full run; for the cases' audit, which reads only that one).
    """
    _verify()
    # The learner's code may run inside this process while the checks run: the runner and the checks go
    # on with private copies of their modules' globals, so that replacing, say, a check module's `expect`
    # (through sys.modules, and putting it back later) changes nothing they use.
    return _private(_run_checks)(exercise, namespace, inputs, hidden, until_failure)


def _run_checks(exercise: str, namespace: "dict | Learner", inputs: dict | None, hidden: bool,
                until_failure: bool = False) -> list[CheckResult]:
    inputs = inputs or {}
    checks = [check for check in registry.checks_of(exercise) if hidden or not check.instructor]
    if not checks:  # every exercise has checks: an empty list was emptied by someone
        raise IntegrityError(f"the checks of {exercise} were removed by the notebook's code; restart the kernel.")
    unknown = set(inputs) - {name for check in checks for name in check.inputs}
    if unknown:
        raise TypeError(f"the checks of {exercise} take no input named {', '.join(sorted(unknown))}")

    in_process = not isinstance(namespace, Learner)
    learner = Learner(InProcess(namespace)) if in_process else namespace
    results: list[CheckResult] = []
    blocked: CheckResult | None = None
    try:
        for check in checks:
            if blocked is not None:
                results.append(_result(check, SKIPPED, hidden, message=f"not run: {blocked.message}", code=blocked.code))
                continue
            result = _run_one(check, learner, hidden, {k: v for k, v in inputs.items() if k in check.inputs})
            if result.fix and not (in_process and _met_again(result)):
                result.fix = ""  # a first failure teaches by its cause; graded feedback never hands out the fix
            results.append(result)
            if until_failure and result.status not in (PASSED, SKIPPED):
                break
            if result.status in (NOT_DEFINED, NOT_IMPLEMENTED):
                blocked = result
    finally:
        learner.release()
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


def _run_one(check: registry.Check, learner: Learner, hidden: bool, inputs: dict) -> CheckResult:
    missing = [name for name in check.needs if not learner.has(name)]
    if missing:
        name = missing[0]
        return _result(
            check, NOT_DEFINED, hidden, code="not_defined",
            message=f"`{name}` is not defined. Run the cell that defines it "
            "(or Run > Run All Above Selected Cell) and then this test again.",
        )
    started = time.perf_counter()
    learner.notes = []
    fix = ""
    with talking_to(learner), learner.session():
        try:
            args = {name: learner.name(name) for name in check.needs}
            _private(check.func)(**args, **inputs)
        except CheckFailure as failure:
            outcome = (FAILED, failure.message, failure.code)
            fix = failure.fix
        except NotImplementedError as exc:
            outcome = (NOT_IMPLEMENTED, _describe_unfinished(exc, check), "not_implemented")
        except JudgeError as exc:  # the check's own mistake: never the learner's, and never a pass
            outcome = (ERROR, f"the check itself went wrong ({exc}); tell your instructor.", "check_error")
        except CodecError as exc:
            outcome = (ERROR, f"what your code returned could not be read ({exc}).", "raised")
        except Exception as exc:  # the learner's code raised, or returned something a check cannot use
            outcome = (ERROR, _describe_exception(exc, check), "raised")
        else:
            outcome = (PASSED, "", "")
    status, message, code = outcome
    result = _result(check, status, hidden, message=message, code=code)
    result.seconds = round(time.perf_counter() - started, 3)
    result.notes = list(learner.notes)
    result.fix = fix
    return result


SHOW_FIX_AFTER = 3  # failures of one check, the same way, in one session, before its exact fix is shown
_MET: dict[tuple[str, str, str], int] = {}


def _met_again(result: CheckResult) -> bool:
    """Count a failure in this session (a learner's kernel); True once it has been met SHOW_FIX_AFTER times."""
    key = (result.exercise, result.check, result.code)
    _MET[key] = _MET.get(key, 0) + 1
    return _MET[key] >= SHOW_FIX_AFTER


def _result(check: registry.Check, status: str, hidden: bool, message: str = "", code: str = "") -> CheckResult:
    return CheckResult(
        notebook=check.notebook, exercise=check.exercise, check=check.name,
        status=status, message=message, code=code, hidden=hidden,
    )


def _describe_unfinished(exc: NotImplementedError, check: registry.Check) -> str:
    frame = getattr(exc, "learner_frame", None)
    unfinished = frame[0] if frame and frame[0] not in ("<module>", "<lambda>") else check.exercise
    if unfinished in (check.exercise, "__init__", "forward"):
        return (f"`{check.exercise}` is not written yet: it still raises NotImplementedError. "
                "Replace the `raise NotImplementedError()` line with your code.")
    return (f"`{check.exercise}` relies on `{unfinished}`, which is not written yet "
            "(it still raises NotImplementedError). Finish that exercise first.")


def _describe_exception(exc: BaseException, check: registry.Check) -> str:
    """Say what was raised and, when the learner's code raised it, on which line."""
    name = getattr(exc, "learner_type", None) or type(exc).__name__
    what = f"{name}: {exc}".strip().rstrip(":")
    frame = getattr(exc, "learner_frame", None)
    if frame is not None:
        where = f"in `{frame[0]}`" + (f", at `{frame[1]}`" if frame[1] else "")
        return f"your code raised {what} ({where})."
    return (
        f"the check could not use what your code returned: {what}. "
        f"Compare what `{check.exercise}` returns with what the exercise asks for (types and shapes)."
    )


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
    "run_checks", "_run_checks", "_private", "_is_own", "_run_one", "_result", "_record",
    "_describe_exception", "_describe_unfinished")}
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
