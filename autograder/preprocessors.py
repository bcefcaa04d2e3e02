"""The steps that run a notebook, as nbgrader preprocessors; every front end uses them.

``autograder check`` and ``pytest --nbcheck`` run them through
:func:`autograder.execute.run`; ``autograder grade`` puts them into nbgrader's
own autograde pipeline in place of its ``Execute``. Each is configured with
traitlets, like nbgrader's own steps (``c.RunCells.guard = True``)::

    RunCells            nbgrader's Execute (timeouts, interrupts, error outputs are nbclient's),
                          + after a dead kernel, a new one and the rest of the notebook (``recover``)
      GuardTestCells      + before each test cell, put back what the checks rely on; after each
                            cell, what the kernel's audit hook refused costs that test its points
      CollectRecords      + after each cell, read what its checks recorded
      LimitStreamOutput   + drop a flood of printed output as it arrives
    MarkStoppedCells    after a dead or stuck kernel: an error in every test cell that never ran
    CrossCheckRecords   a test cell without an error must have been passed by the real checks

The steps tell each other (and the front end) what happened through one
:class:`RunLog` in ``resources["autograder"]``: the records of each cell, the
run's faults, where and why it stopped, what the guard put back.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import re
import secrets
import signal
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty
from time import monotonic

from jupyter_core.utils import ensure_async, run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from traitlets import Any, Bool, Float, Integer, Unicode

from autograder import registry
from autograder.cells import cell_label, error_output, grade_id, has_error, is_test_cell, parse_source
from autograder.results import PASSED, RESULTS_ENV, CheckResult
from autograder.verdicts import INTEGRITY, KERNEL_DIED, NOT_GRADED, NOT_RUN, TIMEOUT_ERROR

NOT_GRADED_KEY = "autograder_not_graded"  # notebook metadata of a placeholder for a submission that cannot run
GUARD = "autograder.grading.guard"


@dataclass
class Stop:
    """The run ended early: at cell ``index`` (-1 before any), for the reason ``fault``."""

    index: int
    fault: str
    cell_error: tuple[str, str] | None  # written into the cell that was running, unless it shows an error already
    test_error: tuple[str, str]  # written into every test cell after it


@dataclass
class RunLog:
    """What running one notebook found, besides its outputs."""

    records: dict[int, list[CheckResult]] = field(default_factory=dict)  # check results, by cell index
    faults: list[str] = field(default_factory=list)  # timeouts, a dead kernel: what the learner should fix
    stop: Stop | None = None
    guard: dict[str, list[str]] = field(default_factory=dict)  # what the guard put back, by test cell grade id
    truncated: dict[int, int] = field(default_factory=dict)  # cell index -> printed characters dropped
    integrity: list[str] = field(default_factory=list)  # test cells whose records do not add up, or that were tampered with
    blocked: list[str] = field(default_factory=list)  # what the kernel's audit hook refused outside test cells (flagged)
    seconds: float = 0.0  # wall time of the kernel run


def run_log(resources) -> RunLog:
    log = resources.get("autograder")
    if not isinstance(log, RunLog):
        log = resources["autograder"] = RunLog()
    return log


class _KernelStuck(Exception):
    """An interrupted cell went on running: every later cell would only wait out its own time limit."""


# How a run can end early: a dead kernel, a stuck or timed-out cell, a kernel that stops answering.
RUN_FAILURES = (DeadKernelError, _KernelStuck, CellTimeoutError, RuntimeError, Empty)


class CollectRecords(Execute):
    """Reads the results the checks of each cell write to the file named by $AUTOGRADER_RESULTS."""

    scratch = Unicode("", help="Folder for the files the checks write their results to; "
                               "a fresh temporary folder when empty.").tag(config=True)

    def _open_records(self, folder: Path) -> None:
        self._results = folder / f"results-{secrets.token_hex(4)}"
        self._offset = 0
        Path(f"{self._results}.jsonl").touch()

    def _kernel_env(self) -> dict:
        return {RESULTS_ENV: f"{self._results}.jsonl"}

    def _records_file(self, index: int) -> Path:
        return Path(f"{self._results}.jsonl")

    def _read_records(self, index: int) -> list[CheckResult]:
        path = self._records_file(index)
        if not path.exists():
            return []
        with open(path, encoding="utf-8") as stream:
            stream.seek(self._offset_of(index))
            lines = stream.read()
            self._advance(index, stream.tell())
        found = []
        for line in lines.splitlines():
            if line.strip():
                try:
                    found.append(CheckResult.from_json(line))
                except (ValueError, TypeError):
                    self._log.integrity.append(f"{grade_id(self.nb.cells[index]) or index}: an unreadable check result")
        return found

    def _offset_of(self, index: int) -> int:
        return self._offset

    def _advance(self, index: int, offset: int) -> None:
        self._offset = offset

    def on_cell_executed(self, **kwargs):
        super().on_cell_executed(**kwargs)
        index = kwargs["cell_index"]
        found = self._read_records(index)
        if found or is_test_cell(kwargs["cell"]):
            self._log.records.setdefault(index, []).extend(found)


class GuardTestCells(CollectRecords):
    """Before each test cell, the guard (:mod:`autograder.grading.guard`) puts back what the checks rely
    on, and points the checks' results at a file named by a fresh nonce, which the notebook never sees.
    The guard also starts an audit hook in the kernel, which only the grader can ask (it holds a fresh
    token) what it refused while each cell ran; :mod:`autograder.grading.recovery` scores that."""

    guard = Bool(False, help="Guard each test cell: put back the autograder's functions, the registry and "
                             "the torch functions the checks use before it runs, and read its results from "
                             "a file named by a fresh nonce. For grading, where notebooks may tamper.").tag(config=True)

    def _kernel_env(self) -> dict:
        return {} if self.guard else super()._kernel_env()

    def _records_file(self, index: int) -> Path:
        if not self.guard:
            return super()._records_file(index)
        nonce = self._nonces.get(index)
        return Path(f"{self._results}.{nonce}.jsonl") if nonce else Path(f"{self._results}.none")

    def _offset_of(self, index: int) -> int:
        return 0 if self.guard else super()._offset_of(index)

    def _advance(self, index: int, offset: int) -> None:
        if not self.guard:
            super()._advance(index, offset)

    def preprocess_cell(self, cell, resources, index):
        self._running = index
        if self._kernel is None:  # how it ended is read after jupyter_client has cleaned it up
            provisioner = getattr(self.km, "provisioner", None)
            self._kernel = (getattr(provisioner, "pid", None), getattr(provisioner, "process", None))
        if self.guard and cell.cell_type == "code" and cell.source.strip():
            if not self._installed:
                self._installed = True
                results_dir = getattr(self.km, "results_dir", None)
                if results_dir:  # a confined kernel may write only in its own folder
                    self._results = Path(results_dir) / self._results.name
                self._call_guard(f"install({str(self._results)!r}, {self._token!r})")
            if is_test_cell(cell):
                nonce = secrets.token_hex(8)
                self._nonces[index] = nonce
                found = self._call_guard(f"before_test_cell({nonce!r})")
                if found:
                    self._log.guard[grade_id(cell)] = found
        return super().preprocess_cell(cell, resources, index)

    def _call_guard(self, call: str) -> list[str]:
        """Evaluate a call of the guard in the kernel, as a user expression (no transformer sees it)."""
        value = self._silent_reply(f"__import__({GUARD!r}, fromlist=['_']).{call}")
        if value.get("status") != "ok":
            return [f"the grading guard could not run ({value.get('ename', 'no reply')}: {value.get('evalue', '')})"]
        text = ast.literal_eval(parse_source(value["data"]["text/plain"], mode="eval"))
        return [] if text == "installed" else json.loads(text)

    def _silent_reply(self, expression: str) -> dict:
        """The kernel's answer to ``expression`` evaluated as a user expression (status, data or error)."""
        return run_sync(self._async_silent)(expression).get("user_expressions", {}).get("guard", {})

    async def _async_silent(self, expression: str, timeout: float = 30) -> dict:
        msg_id = await ensure_async(self.kc.execute("", silent=True, store_history=False, allow_stdin=False,
                                                    user_expressions={"guard": expression}))
        deadline = monotonic() + timeout
        while True:
            try:
                msg = await ensure_async(self.kc.shell_channel.get_msg(timeout=1.0))
            except Empty:
                if not await ensure_async(self.km.is_alive()):
                    raise DeadKernelError("Kernel died") from None
                if monotonic() > deadline:
                    raise
                continue
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg["content"]


class LimitStreamOutput(Execute):
    """Drops printed output as it arrives where nbgrader's ``LimitOutput`` would drop it afterwards, so
    that megabytes of prints never reach the grader's memory; cells that print more are noted."""

    limit_output = Bool(False, help="Apply the limits while the cell runs (nbgrader's LimitOutput.max_lines "
                                    "lines per cell, not counting stderr that IgnorePattern removes, and "
                                    "max_output_chars characters).").tag(config=True)
    max_output_chars = Integer(5_000_000, help="Printed characters kept per cell; only single lines longer "
                                               "than this differ from what nbgrader keeps.").tag(config=True)

    def _start_limits(self) -> None:
        self._lines: dict[int, int] = {}
        self._chars: dict[int, int] = {}
        pattern = self.config.get("IgnorePattern", {}).get("pattern", "")
        self._pattern = re.compile(pattern) if pattern else None
        self._max_lines = int(self.config.get("LimitOutput", {}).get("max_lines", 1000))

    def output(self, outs, msg, display_id, cell_index):
        if not self.limit_output or msg["msg_type"] != "stream":
            return super().output(outs, msg, display_id, cell_index)
        content = msg["content"]
        text = content.get("text", "")
        ignorable = content.get("name") == "stderr" and self._pattern is not None and self._pattern.search(text)
        lines = self._lines.get(cell_index, 0)
        chars = self._chars.get(cell_index, 0)
        truncated = self._log.truncated
        if not ignorable and lines >= self._max_lines:
            truncated[cell_index] = truncated.get(cell_index, 0) + len(text)
            return None
        if chars + len(text) > self.max_output_chars:
            keep = max(1, self.max_output_chars - chars)
            truncated[cell_index] = truncated.get(cell_index, 0) + len(text) - keep
            content["text"] = text[:keep]
        self._chars[cell_index] = chars + len(content["text"])
        if not ignorable:
            self._lines[cell_index] = lines + len(content["text"].split("\n"))
        return super().output(outs, msg, display_id, cell_index)


class RunCells(GuardTestCells, LimitStreamOutput):
    """nbgrader's Execute, with the course's kernels, records, guard and output limits. A cell that runs
    too long is interrupted and the run goes on; a kernel that dies, or will not stop, ends the run and
    is recorded in the :class:`RunLog` for :class:`MarkStoppedCells`."""

    kernels = Any(None, allow_none=True, help="The kernel manager class for this run's kernels, e.g. one "
                                              "that forks warm, memory-limited kernels from a server "
                                              "(autograder.grading.kernels); None: jupyter_client's "
                                              "usual one.").tag(config=True)
    fallback_kernels = Any(None, allow_none=True, help="The kernel manager class to try once more with "
                                                       "when no kernel from `kernels` starts.").tag(config=True)
    while_running = Any(None, allow_none=True, help="A function returning a context manager that is held "
                                                    "while the kernel runs; grading releases its bookkeeping "
                                                    "lock there, so that several notebooks run at "
                                                    "once.").tag(config=True)
    interrupt_grace = Float(10, help="Seconds an interrupted cell may take to stop before its kernel is "
                                     "shut down and the run ends there.").tag(config=True)
    recover = Bool(False, help="When the kernel dies (os._exit, a segfault), start a new one, run the code "
                               "cells before the fatal one again for their state (test cells are not run "
                               "again), skip the fatal cell and go on; the exercise it defines scores zero. "
                               "Otherwise every test after it scores zero. For grading.").tag(config=True)
    max_restarts = Integer(3, help="How many dead kernels one run recovers from (with `recover`).").tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        resources = resources if resources is not None else {}
        log = run_log(resources)
        reason = nb.metadata.get(NOT_GRADED_KEY)
        if reason:
            log.stop = Stop(-1, reason, None, (NOT_GRADED, reason))
            return nb, resources
        self._log, self._running, self._installed, self._nonces, self._kernel = log, None, False, {}, None
        self._token = secrets.token_hex(16)  # only the grader and the kernel's audit hook know it
        self._replay = None
        if self.guard:
            from autograder.grading import recovery  # grading only (not in the student pack)

            recovery.start(self, nb)
        self.shutdown_kernel = "immediate"  # every output is in; a graceful shutdown only costs time
        self.error_on_timeout = {
            "ename": TIMEOUT_ERROR, "traceback": [],
            "evalue": f"this cell ran longer than {self.timeout} s and was stopped. "
                      "Look for a loop that never ends, or training that runs too long."}
        self._start_limits()
        with tempfile.TemporaryDirectory(prefix="autograder-") as fresh:
            self._open_records(Path(self.scratch or fresh).resolve())
            started = monotonic()
            held = self.while_running() if self.while_running is not None else contextlib.nullcontext()
            try:
                with held:
                    nb, resources = self._execute(nb, resources, km)
            finally:
                log.seconds += monotonic() - started
        if self.guard:
            from autograder.grading import recovery

            recovery.finish(self, nb)
        return nb, resources

    def _execute(self, nb, resources, km):
        self.kernel_manager_class = self.kernels or self.kernel_manager_class
        failure: BaseException | None = None
        try:
            return super().preprocess(nb, resources, km)
        except RUN_FAILURES as first:
            failure = first
        if self.recover and isinstance(failure, DeadKernelError) and self._running is not None:
            from autograder.grading import recovery

            nb, resources, failure = recovery.resume(self, resources, km, failure)
            if failure is None:
                return nb, resources
        if self._running is None and self.fallback_kernels is not None:
            self.kernel_manager_class, self.fallback_kernels = self.fallback_kernels, None
            try:
                return super().preprocess(nb, resources, km)
            except RUN_FAILURES as again:
                failure = again
        self._log.stop = self._stopped(self.nb, failure)
        return self.nb, self.resources

    def preprocess_cell(self, cell, resources, index):
        mode = None
        if self._replay is not None:
            from autograder.grading import recovery

            mode = recovery.replaying(self, cell, index)
            if mode == "skip":
                return cell, resources
        kept = (cell.get("outputs"), cell.get("execution_count"))
        result = super().preprocess_cell(cell, resources, index)
        if self.guard:
            from autograder.grading import recovery

            recovery.after_cell(self, cell, index, mode)
        if mode == "quiet" and cell.cell_type == "code":  # run again for its state: its first outputs stay
            cell.outputs, cell.execution_count = kept
        return result

    async def async_start_new_kernel(self, **kwargs):
        kwargs["env"] = {**(kwargs.get("env") or os.environ), **self._kernel_env()}
        return await super().async_start_new_kernel(**kwargs)

    start_new_kernel = run_sync(async_start_new_kernel)

    async def on_cell_executed(self, **kwargs):  # nbclient awaits a hook that returns a coroutine
        super().on_cell_executed(**kwargs)
        cell, index = kwargs["cell"], kwargs["cell_index"]
        content = (kwargs.get("execute_reply") or {}).get("content", {})
        if content.get("ename") == TIMEOUT_ERROR:
            # The interrupt may have left a bare KeyboardInterrupt here; the timeout says more.
            cell.outputs = [o for o in cell.outputs if o.output_type != "error"]
            cell.outputs.append(error_output(TIMEOUT_ERROR, content["evalue"]))
            if not await self._kernel_answers(self.interrupt_grace):
                raise _KernelStuck
            self._log.faults.append(f"{self._label(index)} ran longer than {self.timeout} s and was stopped; "
                                    "the run went on with the next cell")

    async def _kernel_answers(self, within: float) -> bool:
        """Whether the kernel, just interrupted, gets back to answering requests within ``within`` seconds."""
        msg_id = self.kc.execute("", silent=True, store_history=False, allow_stdin=False)
        deadline = monotonic() + within
        while (left := deadline - monotonic()) > 0:
            try:
                msg = await ensure_async(self.kc.shell_channel.get_msg(timeout=left))
            except Empty:
                break
            if msg["parent_header"].get("msg_id") == msg_id:
                return True
        self.shutdown_kernel = "immediate"  # a graceful shutdown would wait on the stuck cell
        return False

    def _label(self, index: int) -> str:
        return cell_label(self.nb, index, registry.exercise_of_grade_id)

    def _stopped(self, nb, error: BaseException) -> Stop:
        index = self._running if self._running is not None else -1
        if index < 0:
            fault = f"the notebook's kernel could not be started ({type(error).__name__}: {error})"
            return Stop(-1, fault, None, (NOT_RUN, f"this test did not run: {fault}."))
        label = self._label(index)
        if isinstance(error, DeadKernelError):
            fault = (f"the kernel (the Python process that runs the notebook) died while running {label}; "
                     f"the cells after it did not run{self._exit_text()}")
            return Stop(index, fault, (KERNEL_DIED, "the kernel died while running this cell (a crash in native "
                                                    "code, running out of memory, or os._exit() stops the whole "
                                                    "Python process)."),
                        (NOT_RUN, f"this test did not run: the kernel died earlier, in {label}."))
        if isinstance(error, (_KernelStuck, CellTimeoutError)):
            fault = (f"{label} ran longer than {self.timeout} s and did not stop when interrupted (does it catch "
                     "KeyboardInterrupt, or ignore SIGINT?); its kernel was shut down and the cells after it did "
                     "not run")
            return Stop(index, fault, (TIMEOUT_ERROR, self.error_on_timeout["evalue"]),
                        (NOT_RUN, f"this test did not run: the kernel was shut down earlier, as it would not stop, "
                                  f"in {label}."))
        fault = f"the kernel stopped answering at {label} ({type(error).__name__}: {error}); the cells after it did not run"
        return Stop(index, fault, (KERNEL_DIED, fault + "."), (NOT_RUN, f"this test did not run: {fault}."))

    def _exit_text(self) -> str:
        """How the kernel process ended, when known: an exit code, or the signal that killed it."""
        try:
            from autograder.grading.kernels import EXIT_CODES  # forked kernels; absent from the student pack
        except ImportError:
            EXIT_CODES = {}
        pid, process = self._kernel or (None, None)
        code = EXIT_CODES.get(pid)
        if code is None and process is not None and hasattr(process, "poll"):
            code = process.poll()
        if code is None:
            return ""
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            hint = {"SIGSEGV": "a segmentation fault", "SIGKILL": "killed, often for memory",
                    "SIGABRT": "aborted"}.get(name, "")
            return f" ({name}{': ' + hint if hint else ''})"
        return f" (it exited with code {code}, for example through os._exit or sys.exit in native code)"


class MarkStoppedCells(NbGraderPreprocessor):
    """After the run ended early, the cell that was running says why, and every test cell after it gets
    an error saying it did not run: nbgrader would score a test cell without output as passed."""

    def preprocess(self, nb, resources):
        log = run_log(resources)
        stop = log.stop
        if stop is None:
            return nb, resources
        if stop.fault not in log.faults and stop.test_error[0] != NOT_GRADED:  # a placeholder's reason is the grader's
            log.faults.append(stop.fault)
        if 0 <= stop.index < len(nb.cells) and stop.cell_error and nb.cells[stop.index].cell_type == "code":
            cell = nb.cells[stop.index]
            if not any(o.get("ename") == stop.cell_error[0] for o in cell.get("outputs", [])):
                cell.outputs.append(error_output(*stop.cell_error))
        for cell in nb.cells[stop.index + 1:]:
            if is_test_cell(cell):
                cell.outputs = [error_output(*stop.test_error)]
        return nb, resources


class CrossCheckRecords(NbGraderPreprocessor):
    """A test cell that shows no error must have been passed by the real checks of its ``check`` calls;
    otherwise it gets an error output (the notebook interfered with grading) and earns nothing."""

    enabled = Bool(True, help="Cross-check each test cell's outcome with its checks' records.").tag(config=True)

    def preprocess(self, nb, resources):
        log = run_log(resources)
        for index, cell in enumerate(nb.cells):
            if not is_test_cell(cell) or has_error(cell):
                continue
            problem = verify_records(cell.source, log.records.get(index, []))
            if problem:
                log.integrity.append(f"{grade_id(cell)}: {problem}")
                cell.outputs.append(error_output(
                    INTEGRITY, f"this test cell showed no error, but {problem}. The submission interfered "
                               "with grading (see the grading report); the cell earns no points."))
        return nb, resources


def expected_checks(source: str) -> list[tuple[str, bool]]:
    """The ``check("exercise", ...)`` calls of a test cell: (exercise, hidden)."""
    try:
        tree = parse_source(source)
    except SyntaxError:
        return []
    calls = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "check"
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            calls.append((node.args[0].value, _hidden(node.keywords)))
    return calls


def _hidden(keywords: list[ast.keyword]) -> bool:
    """As ``check`` decides: ``hidden=`` when given as a constant, else whether any fresh input is."""
    for keyword in keywords:
        if keyword.arg == "hidden" and isinstance(keyword.value, ast.Constant):
            return bool(keyword.value.value)
    return bool(keywords)


def verify_records(source: str, records: list[CheckResult]) -> str:
    """'' when ``records`` are what the real checks of the cell's ``check`` calls write when all pass;
    else what is wrong."""
    for exercise, hidden in expected_checks(source):
        try:
            names = [c.name for c in registry.checks_of(exercise) if hidden or not c.instructor]
        except KeyError:
            continue
        mine = [r for r in records if r.exercise == exercise and r.hidden == hidden]
        if not mine:
            return f"the checks of {exercise} recorded no result"
        if [r.check for r in mine[:len(names)]] != names or len(mine) % len(names):
            return f"the results recorded for {exercise} are not those of its checks"
        failed = [r for r in mine if r.status != PASSED]
        if failed:
            return f"the checks of {exercise} recorded {failed[0].status} for {failed[0].check}"
    return ""
