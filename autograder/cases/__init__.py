"""Planted mistakes and correct alternatives: what keeps every rule of the text tied to a check.

Each notebook has a module here, named after it (``autograder/cases/05_loss_optim.py``), with a list
``CASES`` of code a learner could write in place of the instructor's answer:

- a :class:`Mistake` breaks exactly one rule of the exercise's text (:mod:`autograder.rules`) and must be
  caught *by that rule's check*: the first check that fails enforces that rule, with the expected
  diagnosis code;
- an :class:`Alternative` is correct, written another way, and every check (hidden ones included) must
  accept it.

:func:`audit` runs them against the current checks and counts, per notebook, the rules stated, the rules
checked, the mistakes caught by their own rule and the alternatives accepted (``autograder audit``,
and ``make test``, which fails on anything short). Cases are instructor material: an alternative is an
answer, so this package never ships in the student pack and is not visible to graded kernels.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import nbformat

from autograder import registry
from autograder.cells import check_calls, grade_id, is_solution_cell, is_test_cell, nbgrader
from autograder.results import PASSED, SKIPPED, CheckResult
from autograder.rules import statements


@dataclass(frozen=True)
class Mistake:
    """Code that breaks the rule ``rule`` of ``exercise``; its first failing check must enforce that rule and
    diagnose ``diagnosis``. ``cells`` replaces other answer cells too (for a mistake that lives in another
    exercise and must be blamed there); ``hidden_only``: the visible test passes it, a hidden one catches it."""

    exercise: str
    rule: str
    diagnosis: str
    code: str = ""
    name: str = ""
    cells: dict = field(default_factory=dict)
    hidden_only: bool = False


@dataclass(frozen=True)
class Alternative:
    """Correct code for ``exercise``, written another way: every check accepts it (``cells``: more cells)."""

    exercise: str
    name: str
    code: str
    cells: dict = field(default_factory=dict)


@dataclass
class Outcome:
    case: "Mistake | Alternative"
    ok: bool
    found: str  # what happened, for a message


def notebooks() -> list[str]:
    import autograder.cases as package

    return sorted(m.name for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith("_"))


def cases_of(notebook: str) -> list:
    return list(importlib.import_module(f"autograder.cases.{notebook}").CASES)


@lru_cache(maxsize=None)
def _source(notebook: str):
    from autograder.course import Course

    course = Course.find(Path(__file__).resolve().parents[2])
    if course is None:
        raise RuntimeError("the cases need the course's source notebooks: run them in the course's folder")
    return nbformat.read(course.source_notebook(notebook), as_version=4)


def _release(notebook: str):
    from autograder.course import Course

    course = Course.find(Path(__file__).resolve().parents[2])
    return nbformat.read(course.release_notebook(notebook), as_version=4)


def namespace(notebook: str, replacements: dict[str, str]) -> dict:
    """The notebook's given code cells (setup, helpers) and answer cells run in order in a fresh namespace,
    with the answer cells named in ``replacements`` (grade id -> code) replaced."""
    namespace: dict = {"__name__": "__main__"}
    for cell in _source(notebook).cells:
        meta = nbgrader(cell)
        given = meta.get("locked") and not meta.get("grade")
        if cell.cell_type != "code" or not (given or meta.get("solution")):
            continue
        name = meta.get("grade_id")
        source = replacements.get(name, cell.source)
        exec(compile(source, f"<{notebook}:{name}>", "exec"), namespace)
    return namespace


def test_calls(notebook: str, exercise: str) -> list:
    """The check calls of the exercise's test cells in the course's source, visible ones first."""
    calls = [call for cell in _source(notebook).cells if is_test_cell(cell)
             for call in check_calls(cell.source) if call.exercise == exercise]
    return sorted(calls, key=lambda call: call.hidden)


def _replacements(case) -> dict[str, str]:
    return {**({case.exercise: case.code} if case.code else {}), **case.cells}


def run(notebook: str, case) -> Outcome:
    """Run every test of the case's exercise (as its test cells call them) against the case's code."""
    from autograder.runner import run_checks

    space = namespace(notebook, _replacements(case))
    first: tuple | None = None
    visible_failed = False
    for call in test_calls(notebook, case.exercise):
        # Only the first failing check counts: the checks after it, and the calls after its call, cannot change
        # the outcome (visible calls come first, so a later call is hidden and leaves visible_failed as it is).
        results = run_checks(case.exercise, space, call.inputs, hidden=call.hidden, until_failure=True)
        failed = [r for r in results if r.status not in (PASSED, SKIPPED)]
        if failed and first is None:
            first = (call, failed[0])
        visible_failed = visible_failed or (bool(failed) and not call.hidden)
        if first is not None:
            break
    if isinstance(case, Alternative):
        if first is None:
            return Outcome(case, True, "accepted")
        return Outcome(case, False, f"rejected by {_describe(first[1])}")
    if first is None:
        return Outcome(case, False, "passed every check")
    call, result = first
    rules = _rules_of(case.exercise, result.check)
    problems = []
    if case.rule not in rules:
        problems.append(f"caught by {_describe(result)}, which enforces {', '.join(rules) or 'no rule'}, "
                        f"not {case.rule}")
    if case.diagnosis and result.code != case.diagnosis:
        problems.append(f"diagnosed {result.code!r} instead of {case.diagnosis!r} ({result.message[:200]})")
    if case.hidden_only and visible_failed:
        problems.append("the visible test catches it already (expected: only a hidden one)")
    return Outcome(case, not problems, "; ".join(problems) or f"caught by {result.check}")


def _describe(result: CheckResult) -> str:
    return f"{result.check} ({result.status} {result.code}: {result.message[:160]})"


def _rules_of(exercise: str, check_name: str) -> tuple[str, ...]:
    for check in registry.checks_of(exercise):
        if check.name == check_name:
            return check.rules
    return ()


@dataclass
class Audit:
    notebook: str
    rules: int = 0  # rules the text states
    checked: int = 0  # of them, enforced by at least one check
    mistakes: int = 0
    caught: int = 0  # mistakes caught by the check of the rule they break
    alternatives: int = 0
    accepted: int = 0
    problems: list[str] = field(default_factory=list)


def audit(notebook: str) -> Audit:
    """Every rule of the notebook's text against its checks and its cases."""
    report = Audit(notebook)
    exercises = registry.exercises(notebook)
    stated = statements(_release(notebook), exercises)
    cases = cases_of(notebook)
    for exercise in exercises:
        statement = stated.get(exercise)
        if statement is None:
            report.problems.append(f"{exercise}: no statement (a markdown cell above its answer cell)")
            continue
        for text in statement.unmarked:
            report.problems.append(f"{exercise}: a bullet of its statement is neither a rule nor advice: {text[:80]}")
        checks = registry.checks_of(exercise)
        enforced = {rule for check in checks for rule in check.rules}
        ids = [rule.id for rule in statement.rules]
        for rule_id in sorted(set(ids)):
            if ids.count(rule_id) > 1:
                report.problems.append(f"{exercise}: the rule id {rule_id} is used twice")
        for check in checks:
            for rule_id in check.rules:
                if rule_id not in ids:
                    report.problems.append(f"{exercise}: {check.name} enforces {rule_id}, which its text does not state")
            if not check.rules:
                report.problems.append(f"{exercise}: {check.name} names no rule of the text")
        mistakes = [c for c in cases if isinstance(c, Mistake) and c.exercise == exercise]
        alternatives = [c for c in cases if isinstance(c, Alternative) and c.exercise == exercise]
        for rule in statement.rules:
            report.rules += 1
            if rule.id in enforced:
                report.checked += 1
            else:
                report.problems.append(f"{rule.key}: no check enforces it ({rule.text[:80]})")
            if not any(m.rule == rule.id for m in mistakes):
                report.problems.append(f"{rule.key}: no planted mistake breaks it")
        if not alternatives:
            report.problems.append(f"{exercise}: no correct alternative")
    for case in cases:
        outcome = run(notebook, case)
        if isinstance(case, Mistake):
            report.mistakes += 1
            report.caught += outcome.ok
        else:
            report.alternatives += 1
            report.accepted += outcome.ok
        if not outcome.ok:
            kind = "mistake" if isinstance(case, Mistake) else "alternative"
            label = case.name or (case.rule if isinstance(case, Mistake) else "")
            report.problems.append(f"{case.exercise}: {kind} {label!r}: {outcome.found}")
    return report


def table(audits: list[Audit]) -> str:
    lines = [f"{'notebook':<24}{'rules':>7}{'checked':>9}{'mistakes caught':>17}{'alternatives accepted':>23}"]
    for a in audits:
        lines.append(f"{a.notebook:<24}{a.rules:>7}{a.checked:>9}{f'{a.caught}/{a.mistakes}':>17}"
                     f"{f'{a.accepted}/{a.alternatives}':>23}")
    return "\n".join(lines)


def solution_cells(notebook: str) -> dict[str, str]:
    """The instructor's answer cells of a notebook: grade id -> code."""
    return {grade_id(cell): cell.source for cell in _source(notebook).cells
            if is_solution_cell(cell) and cell.cell_type == "code"}
