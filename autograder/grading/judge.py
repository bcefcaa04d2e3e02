"""The judge: while a notebook is graded, its test cells are decided here, outside the learner's kernel.

The kernel runs the learner's cells and nothing of the checks. When the run reaches a test cell
(``check("sgd_step")``, or a hidden test's ``check.hidden("sgd_step", lr=0.03)``), the cell is not sent to
the kernel: :class:`Judge` runs the exercise's checks in this process (public ones, and for a hidden
test the instructor's too), and every time a check calls the learner's code, reads one of its attributes
or runs a probe (:mod:`autograder.learner`), :class:`KernelChannel` hands the request to the kernel's
probe server (:mod:`autograder.probe`) and reads back the observation: plain data, decoded here without
running anything of the kernel's. The comparisons, the reference implementations, the hidden data and
the labels never enter the kernel, so nothing the learner's code does there (patching torch, restoring
patches behind itself, faking the probes) can change a verdict except by producing the right
observations, which is the exercise.

The cell's outputs are written here, as ``check()`` would have printed them in the kernel (the report on
a pass, ``ChecksFailed`` with the report on a failure), with what the learner's code printed meanwhile
before them; nbgrader scores them as usual. A test cell that ran out of time gets the timeout error.
"""

from __future__ import annotations

import os
from pathlib import Path
from time import monotonic

from nbformat.v4 import new_output

from autograder.cells import error_output, is_test_cell, judged_calls
from autograder.learner import Interrupted, Learner, refuse_global_changes
from autograder.notebook import ChecksFailed, report
from autograder.preprocessors import RunCells, RunObserver
from autograder.results import PASSED
from autograder.runner import run_checks
from autograder.verdicts import TIMEOUT_ERROR

NOT_JUDGED = "AutograderError"
refuse_global_changes()  # several notebooks are judged at once in this process: no check may change its torch
_SERVE = "__import__('autograder.probe', fromlist=['_']).serve_file({request!r}, {reply!r})"


class KernelChannel:
    """Requests to the probe server in the run's kernel, each as one silent execution: the request and
    the reply travel as files in the folder the kernel shares with the grader."""

    def __init__(self, run: RunCells, index: int, deadline: float):
        self.run, self.index, self.deadline, self.expired = run, index, deadline, False
        folder = run.exchange_folder
        self.request_file, self.reply_file = folder / "probe-request", folder / "probe-reply"
        self.code = _SERVE.format(request=str(self.request_file), reply=str(self.reply_file))

    def request(self, message: bytes) -> bytes:
        self.reply_file.unlink(missing_ok=True)
        self.request_file.write_bytes(message)
        if self.expired:  # the check is being wound up after its time ran out: a short while for that
            self.deadline = monotonic() + self.run.interrupt_grace
        # as a user expression: the kernel evaluates it without transforming, compiling and running a cell
        content = self.run.silent(expression=self.code, deadline=self.deadline, into=self.index)
        self.expired = self.expired or bool(content.get("interrupted"))
        try:
            answer = self.reply_file.read_bytes()
        except OSError:
            answer = b""
        finally:
            self.reply_file.unlink(missing_ok=True)
        if content.get("interrupted"):
            raise Interrupted("the test ran out of time")
        if not answer:
            raise Interrupted("the kernel gave no answer") if content.get("ename") == "KeyboardInterrupt" else \
                LearnerSilent(f"the notebook's kernel did not answer the check "
                              f"({content.get('ename', 'no reply')}: {content.get('evalue', '')})".strip())
        return answer

    def cpu_time(self) -> float:
        """CPU seconds of the kernel process, read from outside it (/proc), so no code of the kernel's
        can make it look faster than it is."""
        pid = self.run.kernel_pid
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return 0.0


class LearnerSilent(RuntimeError):
    """The kernel ran the request but wrote no reply: its probe server was broken or replaced."""


class Judge(RunObserver):
    """Runs every test cell's checks here, against the learner's kernel (see the module's docstring)."""

    def run_cell(self, run: RunCells, cell, index: int) -> bool:
        if not is_test_cell(cell):
            return False
        started = monotonic()
        cell.outputs = []
        calls = judged_calls(cell.source)
        if calls is None:
            cell.outputs.append(error_output(
                NOT_JUDGED, "this test cell holds code other than check(...) calls with written-out inputs, "
                            "which grading cannot run outside the notebook's kernel (the course's test cells "
                            "are only such calls)"))
        else:
            self._judge(run, cell, index, calls, started + run.timeout)
        run.record_cell(cell, started, monotonic())
        return True

    def _judge(self, run: RunCells, cell, index: int, calls, deadline: float) -> None:
        learner = Learner(KernelChannel(run, index, deadline))
        records = run.log_.records.setdefault(index, [])
        for call in calls:
            try:
                results = run_checks(call.exercise, learner, call.inputs, hidden=call.hidden)
            except Interrupted:
                cell.outputs.append(error_output(TIMEOUT_ERROR, run.error_on_timeout["evalue"]))
                run.log_.faults.append(f"{run.label(index)} ran longer than {run.timeout} s and was stopped; "
                                       "the run went on with the next cell")
                return
            except (KeyError, TypeError) as error:  # an exercise or input the course does not have
                cell.outputs.append(error_output(type(error).__name__, str(error)))
                return
            records.extend(results)
            run.log_.journal.extend(
                f"{run.label(index)}: judge: {call.exercise}{' (hidden tests)' if call.hidden else ''}, {r.check}: "
                f"{r.status}{f' {r.code}: {r.message}' if r.message else ''} ({r.seconds:g} s)" for r in results)
            if all(result.status == PASSED for result in results):
                cell.outputs.append(new_output("stream", name="stdout", text=report(call.exercise, results) + "\n"))
            else:
                failed = ChecksFailed(call.exercise, results)
                output = error_output(type(failed).__name__, failed.args[0])
                output["traceback"] = failed._render_traceback_()
                cell.outputs.append(output)
                return
