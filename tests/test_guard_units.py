"""The tricks of tests/test_sandbox.py are real: called directly, a check is fooled by them. The
runner's private copies of the checks' globals are what defeats the one that switches `fail` off
while the check runs and puts it back afterwards."""

import gc

import nbformat

from autograder import registry
from autograder.results import PASSED
from autograder.runner import run_checks
from support import ROOT
from test_sandbox import FOOL, WRONG_INIT


def _namespace(source: str) -> dict:
    namespace: dict = {"__name__": "__main__"}
    exec(compile(source, "<notebook cell>", "exec"), namespace)
    return namespace


def _public_checks(exercise: str):
    return [check for check in registry.checks_of(exercise) if not check.instructor]


def test_the_wrong_answer_under_the_tricks_fails_its_checks():
    results = run_checks("init_params", _namespace(WRONG_INIT))
    assert [r for r in results if r.status != PASSED]


def test_the_finalizer_trick_fools_a_check_called_directly():
    init_params = _namespace(FOOL["finalizer"])["init_params"]
    gc.disable()  # the trick's finalizer runs at the next collection: hold it until the checks return
    try:
        for check in _public_checks("init_params"):
            check.func(init_params=init_params)  # no CheckFailure: the trick works on a plain call
    finally:
        gc.enable()
        gc.collect()


def test_the_finalizer_trick_does_not_fool_run_checks_and_leaves_nothing_changed():
    module = registry.checks_of("init_params")[0].func.__module__
    import sys

    before = dict(vars(sys.modules[module]))
    results = run_checks("init_params", _namespace(FOOL["finalizer"]))
    gc.collect()
    assert [r for r in results if r.status != PASSED], [r.status for r in results]
    assert {k: v for k, v in vars(sys.modules[module]).items() if before.get(k) is not v} == {}


def test_the_instructor_answer_passes_so_the_exec_tricks_would_pay_if_they_ran():
    solution = nbformat.read(ROOT / "solutions" / "02_manual_model" / "02_manual_model.ipynb", as_version=4)
    source = next(c.source for c in solution.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "init_params")
    results = run_checks("init_params", _namespace("import math\nimport torch\n" + source))
    assert all(r.status == PASSED for r in results)
