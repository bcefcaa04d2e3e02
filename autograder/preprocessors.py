"""The steps that run a notebook, as nbgrader preprocessors; every front end uses them.

``autograder check`` and ``pytest --nbcheck`` run them through :func:`autograder.execute.run`;
``autograder grade`` puts them into nbgrader's own autograde pipeline in place of its ``Execute``. Each
is configured with traitlets, like nbgrader's own steps (``c.RunCells.timeout = 60``)::

    RunCells           nbgrader's Execute and the course's kernel policy: a cell that runs too long is
                         interrupted and the run goes on; a kernel that will not stop or dies ends it;
                         warm kernels, with a usual one to fall back on; printed floods dropped as they
                         arrive. What a front end adds, it adds as observers (below).
    MarkStoppedCells   after the run: every test cell that never ran, and every test of an exercise the
                         run scored zero, gets an error saying why (nbgrader scores an empty one as passed)

An observer (:class:`RunObserver`) is called at fixed points of a run (``start``, ``before_cell``,
``run_cell``, ``after_cell``, ``recover``, ``finish``), as pytest's hooks or distributed's worker
plugins are: the run core imports none of them. A learner's check adds :class:`CollectRecords` (the
results its in-kernel checks write); grading adds the judge, the guard and recovery from a dead kernel
(:mod:`autograder.grading.observers`).

The steps and observers tell each other (and the front end) what happened through one :class:`RunLog`
in ``resources["autograder"]``.
"""

from __future__ import annotations

import contextlib
import datetime
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
from traitlets import Any, Bool, Float, Integer, List, Unicode

from autograder import registry
from autograder.cells import cell_label, error_output, grade_id, is_test_cell
from autograder.results import RESULTS_ENV, CheckResult
from autograder.verdicts import KERNEL_DIED, NOT_GRADED, NOT_RUN, TIMEOUT_ERROR

NOT_GRADED_KEY = "autograder_not_graded"  # notebook metadata of a placeholder for a submission that cannot run


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
    truncated: dict[int, int] = field(default_factory=dict)  # cell index -> printed characters dropped
    integrity: list[str] = field(default_factory=list)  # test cells that were tampered with (zero, with why)
    blocked: list[str] = field(default_factory=list)  # what the kernel's audit hook refused or found elsewhere
    zeroed: dict[str, tuple[str, str]] = field(default_factory=dict)  # exercise -> (why, error name): tests score 0
    journal: list[str] = field(default_factory=list)  # cell by cell, what the observers saw and decided (--explain)
    seconds: float = 0.0  # wall time of the kernel run


def run_log(resources) -> RunLog:
    log = resources.get("autograder")
    if not isinstance(log, RunLog):
        log = resources["autograder"] = RunLog()
    return log


class RunObserver:
    """What a front end adds to a run. Every method is optional; ``run`` is the :class:`RunCells` at work."""

    def start(self, run: "RunCells", nb) -> None:
        """Before the first cell (no kernel yet)."""

    def kernel_env(self, run: "RunCells") -> dict:
        """Environment variables every kernel of the run starts with."""
        return {}

    def before_cell(self, run: "RunCells", cell, index: int) -> str | None:
        """Before a cell: None (run it), "skip" (leave it as it is) or "quiet" (run it for its state, keep
        its first outputs: a cell run again after a dead kernel)."""
        return None

    def run_cell(self, run: "RunCells", cell, index: int) -> bool:
        """Run the cell in the kernel's place (and write its outputs); True when it did."""
        return False

    def after_cell(self, run: "RunCells", cell, index: int, mode: str | None) -> None:
        """After a cell ran (``mode`` as ``before_cell`` said)."""

    def recover(self, run: "RunCells", error: DeadKernelError) -> BaseException | None:
        """The kernel died in ``run.running``: go on with a new one (``run.run_again()``) and return None, or
        return why not (the run then stops there). Only the first observer that has it is asked."""
        return error

    def finish(self, run: "RunCells", nb) -> None:
        """After the last cell, the kernel shut down."""


class _KernelStuck(Exception):
    """An interrupted cell went on running: every later cell would only wait out its own time limit."""


# How a run can end early: a dead kernel, a stuck or timed-out cell, a kernel that stops answering.
RUN_FAILURES = (DeadKernelError, _KernelStuck, CellTimeoutError, RuntimeError, Empty)


class LimitStreamOutput(Execute):
    """Drops printed output as it arrives where nbgrader's ``LimitOutput`` would drop it afterwards, so
    that megabytes of prints never reach the grader's memory; cells that print more are noted."""

    limit_output = Bool(False, help="Apply the limits while the cell runs (nbgrader's LimitOutput.max_lines "
                                    "lines per cell, not counting stderr that IgnorePattern removes, and "
                                    "max_output_chars characters).").tag(config=True)
    max_output_chars = Integer(5_000_000, help="Printed characters kept per cell; only single lines longer "
                                               "than this differ from what nbgrader keeps.").tag(config=True)

    def _start_limits(self, log: RunLog) -> None:
        self._lines: dict[int, int] = {}
        self._chars: dict[int, int] = {}
        self._truncated = log.truncated
        pattern = self.config.get("IgnorePattern", {}).get("pattern", "")
        self._pattern = re.compile(pattern) if pattern else None
        self._max_lines = int(self.config.get("LimitOutput", {}).get("max_lines", 1000))

    def keep_stream(self, cell_index: int, name: str, text: str) -> str | None:
        """The part of ``text`` (printed to stream ``name`` by cell ``cell_index``) within the limits."""
        if not self.limit_output:
            return text
        ignorable = name == "stderr" and self._pattern is not None and self._pattern.search(text)
        lines = self._lines.get(cell_index, 0)
        chars = self._chars.get(cell_index, 0)
        truncated = self._truncated
        if not ignorable and lines >= self._max_lines:
            truncated[cell_index] = truncated.get(cell_index, 0) + len(text)
            return None
        if chars + len(text) > self.max_output_chars:
            keep = max(1, self.max_output_chars - chars)
            truncated[cell_index] = truncated.get(cell_index, 0) + len(text) - keep
            text = text[:keep]
        self._chars[cell_index] = chars + len(text)
        if not ignorable:
            self._lines[cell_index] = lines + len(text.split("\n"))
        return text

    def output(self, outs, msg, display_id, cell_index):
        if not self.limit_output or msg["msg_type"] != "stream":
            return super().output(outs, msg, display_id, cell_index)
        content = msg["content"]
        kept = self.keep_stream(cell_index, content.get("name", ""), content.get("text", ""))
        if kept is None:
            return None
        content["text"] = kept
        return super().output(outs, msg, display_id, cell_index)


class RunCells(LimitStreamOutput):
    """nbgrader's Execute, with the course's kernel policy and the front end's observers. A cell that runs
    too long is interrupted and the run goes on; a kernel that dies, or will not stop, ends the run (unless
    an observer recovers) and is recorded in the :class:`RunLog` for :class:`MarkStoppedCells`."""

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
    observers = List(Any(), help="Factories (classes, or functions of no argument) of the run's "
                                 "observers (RunObserver), in the order they are called.").tag(config=True)
    scratch = Unicode("", help="Folder for the files the run shares with its kernels (check records, the "
                               "judge's requests); a fresh temporary folder when empty.").tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        resources = resources if resources is not None else {}
        log = run_log(resources)
        reason = nb.metadata.get(NOT_GRADED_KEY)
        if reason:
            log.stop = Stop(-1, reason, None, (NOT_GRADED, reason))
            return nb, resources
        self.log_ = log
        self.running: int | None = None
        self.kernel_starts = 0
        self._process = None
        self._km_given = km
        self.active = [factory() for factory in self.observers]
        self.shutdown_kernel = "immediate"  # every output is in; a graceful shutdown only costs time
        self.error_on_timeout = {
            "ename": TIMEOUT_ERROR, "traceback": [],
            "evalue": f"this cell ran longer than {self.timeout} s and was stopped. "
                      "Look for a loop that never ends, or training that runs too long."}
        self._start_limits(log)
        with tempfile.TemporaryDirectory(prefix="autograder-") as fresh:
            self.workdir = Path(self.scratch or fresh).resolve()
            self.workdir.mkdir(parents=True, exist_ok=True)
            for observer in self.active:
                observer.start(self, nb)
            started = monotonic()
            held = self.while_running() if self.while_running is not None else contextlib.nullcontext()
            try:
                with held:
                    nb, resources = self._execute(nb, resources, km)
            finally:
                log.seconds += monotonic() - started
            for observer in self.active:
                observer.finish(self, nb)
        return nb, resources

    def _execute(self, nb, resources, km):
        self.kernel_manager_class = self.kernels or self.kernel_manager_class
        failure: BaseException | None = None
        try:
            return super().preprocess(nb, resources, km)
        except RUN_FAILURES as first:
            failure = first
        if isinstance(failure, DeadKernelError) and self.running is not None:
            for observer in self.active:
                if type(observer).recover is not RunObserver.recover:
                    failure = observer.recover(self, failure)
                    if failure is None:
                        return self.nb, self.resources
                    break
        if self.running is None and self.fallback_kernels is not None:
            self.kernel_manager_class, self.fallback_kernels = self.fallback_kernels, None
            try:
                return super().preprocess(nb, resources, km)
            except RUN_FAILURES as again:
                failure = again
        self.log_.stop = self._stopped(failure)
        return self.nb, self.resources

    def run_again(self):
        """Run the notebook once more in a new kernel, from the top (the observers' ``before_cell`` says
        which cells to skip); for an observer that recovers from a dead kernel."""
        self._process = None
        return Execute.preprocess(self, self.nb, self.resources, self._km_given)

    # --- cells ------------------------------------------------------------------------

    def preprocess_cell(self, cell, resources, index):
        self.running = index
        if self._process is None:  # how the kernel ended is read after jupyter_client has cleaned it up
            self._process = getattr(getattr(self.km, "provisioner", None), "process", None)
        mode = None
        for observer in self.active:
            said = observer.before_cell(self, cell, index)
            if said == "skip":
                return cell, resources
            mode = said or mode
        kept = (cell.get("outputs"), cell.get("execution_count"))
        if not any(observer.run_cell(self, cell, index) for observer in self.active):
            super().preprocess_cell(cell, resources, index)
        for observer in self.active:
            observer.after_cell(self, cell, index, mode)
        if mode == "quiet" and cell.cell_type == "code":  # run again for its state: its first outputs stay
            cell.outputs, cell.execution_count = kept
        return cell, resources

    async def async_start_new_kernel(self, **kwargs):
        env = dict(kwargs.get("env") or os.environ)
        for observer in self.active:
            env.update(observer.kernel_env(self))
        kwargs["env"] = env
        self.kernel_starts += 1
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
            self.log_.faults.append(f"{self.label(index)} ran longer than {self.timeout} s and was stopped; "
                                    "the run went on with the next cell")

    # --- what observers use --------------------------------------------------------------

    @property
    def exchange_folder(self) -> Path:
        """A folder both the run and its kernel can read and write: a confined kernel's own, else the run's."""
        folder = getattr(self.km, "results_dir", None)
        return Path(folder) if folder else self.workdir

    @property
    def kernel_pid(self) -> int | None:
        """The kernel's process id, as this process sees it."""
        return getattr(getattr(self.km, "provisioner", None), "pid", None)

    def label(self, index: int, nb=None) -> str:
        """How a learner finds cell ``index`` (of ``nb``, by default the notebook being run)."""
        return cell_label(nb if nb is not None else self.nb, index, registry.exercise_of_grade_id)

    def silent(self, code: str = "", expression: str | None = None, expressions: dict | None = None,
               timeout: float | None = None, deadline: float | None = None, into: int | None = None) -> dict:
        """Run ``code`` in the kernel silently (no history, no outputs of its own) and evaluate ``expressions``
        (name -> expression; ``expression`` is named "value") as user expressions, which no transformer of
        the learner's sees; return the reply's content (``user_expressions`` holds what each gave). What the
        code prints to stdout goes, within the limits, into cell ``into``. Past ``deadline`` (monotonic
        seconds; ``timeout`` from now, 30 s by default) the kernel is interrupted, and the content says
        ``"interrupted": True``; a kernel that then does not answer within ``interrupt_grace`` ends the run."""
        expressions = dict(expressions or {})
        if expression:
            expressions["value"] = expression
        return self.start_silent(code, expressions, timeout, deadline, into).wait()

    def start_silent(self, code: str, expressions: dict | None = None, timeout: float | None = None,
                     deadline: float | None = None, into: int | None = None) -> "SilentRun":
        """:meth:`silent`, started and not waited for: the caller follows it (``poll``, ``wait``) while it
        does something else, for example talks to the code it started."""
        msg_id = self.kc.execute(code, silent=True, store_history=False, allow_stdin=False,
                                 user_expressions=dict(expressions or {}))
        return SilentRun(self, msg_id, deadline if deadline is not None else monotonic() + (timeout or 30), into)

    async def _drain_iopub(self, msg_id: str, into: int | None) -> None:
        while True:
            try:
                msg = await ensure_async(self.kc.iopub_channel.get_msg(timeout=0))
            except Empty:
                return
            if (into is None or msg["parent_header"].get("msg_id") != msg_id or msg["msg_type"] != "stream"
                    or msg["content"].get("name") != "stdout"):
                continue
            text = self.keep_stream(into, "stdout", msg["content"].get("text", ""))
            if text:
                outputs = self.nb.cells[into].outputs
                if outputs and outputs[-1].get("output_type") == "stream" and outputs[-1].get("name") == "stdout":
                    outputs[-1]["text"] += text
                else:
                    from nbformat.v4 import new_output

                    outputs.append(new_output("stream", name="stdout", text=text))

    def record_cell(self, cell, started: float, ended: float) -> None:
        """Give a cell the run wrote itself an execution count and timings, as nbclient gives the others."""
        self.code_cells_executed += 1
        cell["execution_count"] = self.code_cells_executed
        if self.record_timing:
            def stamp(moment: float) -> str:
                wall = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=monotonic() - moment)
                return wall.isoformat().replace("+00:00", "Z")

            cell.setdefault("metadata", {})["execution"] = {
                "iopub.status.busy": stamp(started), "iopub.execute_input": stamp(started),
                "shell.execute_reply": stamp(ended), "iopub.status.idle": stamp(ended)}

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

    # --- how a run ends -------------------------------------------------------------------

    def _stopped(self, error: BaseException) -> Stop:
        index = self.running if self.running is not None else -1
        if index < 0:
            fault = f"the notebook's kernel could not be started ({type(error).__name__}: {error})"
            return Stop(-1, fault, None, (NOT_RUN, f"this test did not run: {fault}."))
        label = self.label(index)
        if isinstance(error, DeadKernelError):
            fault = (f"the kernel (the Python process that runs the notebook) died while running {label}; "
                     f"the cells after it did not run{self.exit_text()}")
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

    def exit_text(self) -> str:
        """How the kernel process ended, when known: an exit code, or the signal that killed it."""
        process = self._process
        code = process.poll() if process is not None and hasattr(process, "poll") else None
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


class SilentRun:
    """A silent execution in a run's kernel (:meth:`RunCells.start_silent`), followed from the run."""

    def __init__(self, run: RunCells, msg_id: str, deadline: float, into: int | None):
        self.run, self.msg_id, self.deadline, self.into = run, msg_id, deadline, into
        self.interrupted = False
        self.content: dict | None = None

    def poll(self, wait: float = 0.0) -> dict | None:
        """The reply's content once the execution is over (waiting up to ``wait`` seconds for it), else
        None; meanwhile its stdout is collected, and past the deadline the kernel is interrupted once,
        then given ``interrupt_grace`` seconds before the run ends."""
        if self.content is None:
            self.content = run_sync(self._poll)(wait)
        return self.content

    def wait(self) -> dict:
        while self.poll(0.05) is None:
            pass
        return self.content

    async def _poll(self, wait: float) -> dict | None:
        run = self.run
        await run._drain_iopub(self.msg_id, self.into)
        try:
            msg = await ensure_async(run.kc.shell_channel.get_msg(timeout=wait))
        except Empty:
            if not await ensure_async(run.km.is_alive()):
                raise DeadKernelError("Kernel died") from None
            if monotonic() > self.deadline:
                if self.interrupted:
                    run.shutdown_kernel = "immediate"
                    raise _KernelStuck from None
                await ensure_async(run.km.interrupt_kernel())
                self.interrupted, self.deadline = True, monotonic() + run.interrupt_grace
            return None
        if msg["parent_header"].get("msg_id") != self.msg_id:
            return None
        await run._drain_iopub(self.msg_id, self.into)
        return {**msg["content"], "interrupted": self.interrupted}


class CollectRecords(RunObserver):
    """A learner's check: the checks that test cells run in the kernel append their results to a file the
    kernel is told of ($AUTOGRADER_RESULTS); after each cell, what it appended is its records."""

    def start(self, run: RunCells, nb) -> None:
        self.path = run.workdir / f"results-{secrets.token_hex(4)}.jsonl"
        self.path.touch()
        self.offset = 0

    def kernel_env(self, run: RunCells) -> dict:
        return {RESULTS_ENV: str(self.path)}

    def after_cell(self, run: RunCells, cell, index: int, mode: str | None) -> None:
        with open(self.path, encoding="utf-8") as stream:
            stream.seek(self.offset)
            lines = stream.read()
            self.offset = stream.tell()
        found = []
        for line in lines.splitlines():
            if line.strip():
                try:
                    found.append(CheckResult.from_json(line))
                except (ValueError, TypeError):
                    run.log_.faults.append(f"{run.label(index)}: a check result that could not be read")
        if found or is_test_cell(cell):
            run.log_.records.setdefault(index, []).extend(found)


class MarkStoppedCells(NbGraderPreprocessor):
    """After the run ended early, the cell that was running says why, and every test cell after it gets
    an error saying it did not run: nbgrader would score a test cell without output as passed. Every test
    of an exercise the run scored zero (``RunLog.zeroed``) gets an error saying why."""

    def preprocess(self, nb, resources):
        log = run_log(resources)
        stop = log.stop
        if stop is not None:
            if stop.fault not in log.faults and stop.test_error[0] != NOT_GRADED:  # a placeholder's reason is the grader's
                log.faults.append(stop.fault)
            if 0 <= stop.index < len(nb.cells) and stop.cell_error and nb.cells[stop.index].cell_type == "code":
                cell = nb.cells[stop.index]
                if not any(o.get("ename") == stop.cell_error[0] for o in cell.get("outputs", [])):
                    cell.outputs.append(error_output(*stop.cell_error))
            for cell in nb.cells[stop.index + 1:]:
                if is_test_cell(cell):
                    cell.outputs = [error_output(*stop.test_error)]
        if log.zeroed:
            from autograder.cells import check_calls
            from autograder.verdicts import INTEGRITY

            for cell in nb.cells:
                if not is_test_cell(cell):
                    continue
                for call in check_calls(cell.source):
                    if call.exercise in log.zeroed:
                        why, ename = log.zeroed[call.exercise]
                        (log.integrity if ename == INTEGRITY else log.faults).append(f"{grade_id(cell)} scores zero: {why}")
                        cell.outputs.append(error_output(ename, f"{why}; the tests of {call.exercise} score zero"))
                        break
        return nb, resources

