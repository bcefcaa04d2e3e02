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
import select
import socket
from pathlib import Path
from time import monotonic

from nbformat.v4 import new_output

from autograder.cells import error_output, is_test_cell, judged_calls
from autograder.learner import Interrupted, Learner, refuse_global_changes
from autograder.notebook import ChecksFailed, report
from autograder.grading.sandbox import hand_over
from autograder.preprocessors import RunCells, RunObserver, SilentRun
from autograder.results import PASSED
from autograder.runner import run_checks
from autograder.verdicts import TIMEOUT_ERROR

NOT_JUDGED = "AutograderError"
refuse_global_changes()  # several notebooks are judged at once in this process: no check may change its torch
_SERVE = "__import__('autograder.probe', fromlist=['_']).serve_socket({path!r})"
_MAX_REPLY = 1 << 31  # bytes: a reply larger than any observation a check asks for is not read
_TICK = 0.05  # seconds between looks at the kernel (alive? past the deadline?) while it works


class KernelChannel:
    """Requests to the probe server in the run's kernel over a Unix socket in the folder the kernel shares
    with the grader. While a test cell is judged, the kernel runs one silent execution that answers them
    one after another (``probe.serve_socket``): a request costs a round trip on the socket, not a kernel
    execution (about 0.1 ms against 10-20 ms). The execution is started at the first request, started
    again if it ends early (an interrupt that landed between two requests), and ended by :meth:`close`;
    meanwhile the kernel is watched as ``RunCells.silent`` watches it (deadline, interrupt, dead kernel)."""

    def __init__(self, run: RunCells, index: int, deadline: float):
        self.run, self.index, self.deadline, self.expired = run, index, deadline, False
        self.path = run.exchange_folder / "probe.sock"
        self.serving: SilentRun | None = None
        self.connection: socket.socket | None = None

    def request(self, message: bytes) -> bytes:
        if self.connection is None:
            self._serve()
        self._send(len(message).to_bytes(8, "big") + message)
        size = int.from_bytes(self._receive(8), "big")
        if size > _MAX_REPLY:
            self.close()
            raise LearnerSilent(f"the notebook's kernel sent a reply of {size} bytes, more than a check reads")
        return self._receive(size)

    def close(self) -> None:
        """End the kernel's serving execution (it sees the connection close) and collect what it printed."""
        if self.connection is not None:
            self.connection.close()
            self.connection = None
        if self.serving is not None:
            serving, self.serving = self.serving, None
            serving.wait()

    def _serve(self) -> None:
        self.path.unlink(missing_ok=True)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
            listener.bind(str(self.path))
            hand_over(self.path)  # a confined kernel runs as the sandbox's user, who must be able to connect
            listener.listen(1)
            listener.setblocking(False)
            # after an interrupt, what is left to do (putting the learner's session back) gets a short while
            deadline = monotonic() + self.run.interrupt_grace if self.expired else self.deadline
            self.serving = self.run.start_silent(_SERVE.format(path=str(self.path)), deadline=deadline,
                                                 into=self.index)
            try:
                while not select.select([listener], [], [], _TICK)[0]:
                    self._watch()
                self.connection, _ = listener.accept()
            finally:
                self.path.unlink(missing_ok=True)
        self.connection.setblocking(False)

    def _send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if not select.select([], [self.connection], [], _TICK)[1]:
                self._watch()
                continue
            try:
                view = view[self.connection.send(view):]
            except OSError:  # the kernel closed its end
                self._ended()

    def _receive(self, size: int) -> bytes:
        parts, left = [], size
        while left:
            if not select.select([self.connection], [], [], _TICK)[0]:
                self._watch()
                continue
            try:
                part = self.connection.recv(min(left, 1 << 22))
            except OSError:
                part = b""
            if not part:
                self._ended()
            parts.append(part)
            left -= len(part)
        return b"".join(parts)

    def _watch(self) -> None:
        """Between two looks at the socket: has the serving execution ended (then it will not answer)?"""
        content = self.serving.poll()
        self.expired = self.expired or self.serving.interrupted
        if content is not None:
            self._ended()

    def _ended(self) -> None:
        """The serving execution ended without answering: say why, as the old silent request did."""
        if self.connection is not None:
            self.connection.close()
            self.connection = None
        serving, self.serving = self.serving, None
        content = serving.wait()
        self.expired = self.expired or bool(content.get("interrupted"))
        if content.get("interrupted") or content.get("ename") == "KeyboardInterrupt":
            raise Interrupted("the test ran out of time")
        raise LearnerSilent(f"the notebook's kernel did not answer the check "
                            f"({content.get('ename', 'no reply')}: {content.get('evalue', '')})".strip())

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
    """The kernel stopped answering the judge without being interrupted: its probe server was broken or
    replaced."""


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
        channel = KernelChannel(run, index, deadline)
        try:
            verdicts = self._verdicts(run, index, calls, Learner(channel))
        finally:
            channel.close()  # what the learner's code printed meanwhile comes first in the cell
        cell.outputs.extend(verdicts)

    def _verdicts(self, run: RunCells, index: int, calls, learner: Learner) -> list:
        """The cell's outputs: a report per call, up to the first that fails (or runs out of time)."""
        records = run.log_.records.setdefault(index, [])
        outputs = []
        for call in calls:
            try:
                results = run_checks(call.exercise, learner, call.inputs, hidden=call.hidden)
            except Interrupted:
                outputs.append(error_output(TIMEOUT_ERROR, run.error_on_timeout["evalue"]))
                run.log_.faults.append(f"{run.label(index)} ran longer than {run.timeout} s and was stopped; "
                                       "the run went on with the next cell")
                return outputs
            except (KeyError, TypeError) as error:  # an exercise or input the course does not have
                outputs.append(error_output(type(error).__name__, str(error)))
                return outputs
            records.extend(results)
            run.log_.journal.extend(
                f"{run.label(index)}: judge: {call.exercise}{' (hidden tests)' if call.hidden else ''}, {r.check}: "
                f"{r.status}{f' {r.code}: {r.message}' if r.message else ''} ({r.seconds:g} s)" for r in results)
            if all(result.status == PASSED for result in results):
                outputs.append(new_output("stream", name="stdout", text=report(call.exercise, results) + "\n"))
            else:
                failed = ChecksFailed(call.exercise, results)
                output = error_output(type(failed).__name__, failed.args[0])
                output["traceback"] = failed._render_traceback_()
                outputs.append(output)
                return outputs
        return outputs
