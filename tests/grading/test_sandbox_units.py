"""Confinement and the guard, without grading a class.

- Where bwrap is missing or cannot create namespaces, `autograder grade` stops with one line that
  says how to install it (or to pass --no-sandbox).
- Under root, what a sandbox writes belongs to an unprivileged host user (nobody), never root.
- The tricks of tests/grading/test_sandbox.py are real: called directly, a check is fooled by them. The
  runner's private copies of the checks' globals are what defeats the one that switches `fail` off
  while the check runs and puts it back afterwards.
"""

import gc
import os
import subprocess

import nbformat
import pytest

from autograder import registry
from autograder.cli import main
from autograder.grading import sandbox
from autograder.results import PASSED
from autograder.runner import run_checks
from support import solution_path
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
    from autograder.learner import InProcess, Learner, talking_to

    learner = Learner(InProcess(_namespace(FOOL["finalizer"])))
    gc.disable()  # the trick's finalizer runs at the next collection: hold it until the checks return
    try:
        with talking_to(learner), learner.session():
            init_params = learner.name("init_params")
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
    solution = nbformat.read(solution_path("02_manual_model"), as_version=4)
    source = next(c.source for c in solution.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "init_params")
    results = run_checks("init_params", _namespace("import math\nimport torch\n" + source))
    assert all(r.status == PASSED for r in results)


@pytest.mark.skipif(bool(sandbox.problem()), reason=f"no confinement here: {sandbox.problem()}")
def test_what_a_sandbox_writes_belongs_to_an_unprivileged_host_user(tmp_path):
    folder = tmp_path / "slot"
    folder.mkdir()
    sandbox.hand_over(folder)
    command = sandbox.command(folder, sandbox.write_files(tmp_path / "files"))
    done = subprocess.run([*command, "/bin/sh", "-c", "touch made; id -u"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(sandbox.UID)]
    made = (folder / "made").stat()
    expected = sandbox.owner() or (os.getuid(), os.getgid())  # under root: nobody, never root
    assert (made.st_uid, made.st_gid) == expected and 0 not in expected


def _grade_without_confinement(tmp_path, capsys, bwrap_script):
    folder = tmp_path / "bin"
    folder.mkdir()
    if bwrap_script is not None:
        (folder / "bwrap").write_text(bwrap_script)
        (folder / "bwrap").chmod(0o755)
    (tmp_path / "course").mkdir()
    sandbox.problem.cache_clear()
    saved = os.environ["PATH"]
    os.environ["PATH"] = str(folder)
    try:
        code = main(["grade", "02_manual_model", "--course", str(tmp_path / "course"), "--submissions", str(tmp_path)])
    finally:
        os.environ["PATH"] = saved
        sandbox.problem.cache_clear()
    return code, capsys.readouterr().err


def test_without_bwrap_grading_stops_with_one_line_that_says_how_to_install_it(tmp_path, capsys):
    code, said = _grade_without_confinement(tmp_path, capsys, None)
    assert code == 2 and said.count("\n") == 1, said
    assert "bwrap was not found" in said and "apt-get install bubblewrap" in said and "--no-sandbox" in said
    assert list((tmp_path / "course").iterdir()) == [], "nothing is written before the check"


def test_where_namespaces_are_refused_grading_stops_and_says_so(tmp_path, capsys):
    refusing = "#!/bin/sh\necho 'bwrap: No permissions to creating new namespace' >&2\nexit 1\n"
    code, said = _grade_without_confinement(tmp_path, capsys, refusing)
    assert code == 2 and said.count("\n") == 1, said
    assert "cannot create namespaces" in said and "No permissions" in said and "--no-sandbox" in said
