"""The judge's conversation with a kernel when the learner's code does not answer: an exercise's function
that runs past the time limit while a check calls it is interrupted, the test scores zero with the timeout
error, and grading goes on in the same kernel with the next test cell; one that ignores the interrupt gets
its kernel shut down, and the tests after it do not run."""

from __future__ import annotations

import nbformat
import pytest

from autograder.cells import grade_id, is_solution_cell
from test_honest_work import grade, submissions

pytestmark = [pytest.mark.slow]
A = "02_manual_model"
TIMEOUT = 12  # seconds per cell: more than any honest cell of 02 takes under make test's load

# sgd_step runs forever the first time a check calls it, and is right afterwards (the loops sleep, so
# that waiting for the time limit leaves the CPU to the tests beside this one)
LOOPS_ONCE = '''
import time

_calls = [0]

def sgd_step(params, lr):
    _calls[0] += 1
    while _calls[0] == 1:
        time.sleep(0.01)
    with torch.no_grad():
        for p in params:
            p -= lr * p.grad
            p.grad = None
'''
# the same, but the loop ignores the interrupt
STUBBORN = '''
import signal, time

def sgd_step(params, lr):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        time.sleep(0.01)
'''


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    solution = submissions(A, with_alternatives=False)["solution"]
    students = {}
    for name, source in (("loops-once", LOOPS_ONCE), ("stubborn", STUBBORN)):
        nb = nbformat.from_dict(solution)
        for cell in nb.cells:
            if is_solution_cell(cell) and grade_id(cell) == "sgd_step":
                cell.source = "import torch\n" + source
        students[name] = nb
    result = grade(tmp_path_factory.mktemp("judge"), A, students, timeout=TIMEOUT)
    return {s.student: s for s in result.students}


def _verdict(student, exercise):
    return next(v for v in student.exercises if v.exercise == exercise)


def test_a_call_that_never_returns_costs_its_test_and_the_next_tests_are_judged(graded):
    student = graded["loops-once"]
    assert student.score == 17, [(v.grade_id, v.points, v.message) for v in student.exercises]
    assert f"ran longer than {TIMEOUT} s" in " ".join(student.faults), student.faults
    stopped = _verdict(student, "sgd_step")
    assert (stopped.points, stopped.grade_id, stopped.code) == (1, "test_sgd_step", "timeout"), stopped
    assert student.tamper == []


def test_a_call_that_ignores_the_interrupt_ends_the_run_there(graded):
    student = graded["stubborn"]
    assert student.score == 9, [(v.grade_id, v.points, v.message) for v in student.exercises]
    assert "did not stop when interrupted" in " ".join(student.faults), student.faults
