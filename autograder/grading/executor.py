"""nbgrader's ``Execute`` step, made safe and fast for grading a class.

:class:`GradingExecute` is a subclass of nbgrader's own ``Execute``
preprocessor and takes its place in nbgrader's autograde pipeline; everything
it does not change (timeouts, interrupts, error outputs, the order of cells)
is nbgrader's code. What it adds, only while a :class:`Sink` is bound to the
grading thread:

- the kernel comes from the warm fork server (:mod:`.kernels`), with a memory
  limit, and the bookkeeping lock is released while the notebook runs, so
  several submissions execute at once;
- a kernel that dies (``os._exit``, a segfault) or stops answering after a
  timeout no longer loses the whole submission: the cells that ran keep their
  results, the cell that killed it and every test cell after it get an error
  output saying why, so nbgrader records zero for them and full or partial
  credit for the rest;
- printed output beyond what nbgrader's ``LimitOutput`` keeps is dropped as it
  arrives, so megabytes of prints cannot exhaust the grader's memory;
- before each test cell the guard (:mod:`.guard`) puts back what the checks
  rely on, and after it the cell's check results, which the checks write to a
  file named by a fresh nonce, are collected; a test cell that shows no error
  although its checks did not record a pass gets an error output instead of
  the points (the submission interfered with grading).
"""

from __future__ import annotations

import ast
import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty
from time import monotonic

from jupyter_core.utils import ensure_async, run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat import NotebookNode
from nbgrader.preprocessors import Execute
from nbgrader.utils import is_grade, is_solution

from autograder import registry
from autograder.results import PASSED, CheckResult

NOT_GRADED = "autograder_not_graded"  # notebook metadata of a placeholder for a submission that cannot run
STOPPED = "GradingStopped"
INTEGRITY = "AutograderIntegrityError"
GUARD = "autograder.grading.guard"


def is_test_cell(cell: NotebookNode) -> bool:
    return cell.cell_type == "code" and is_grade(cell) and not is_solution(cell)


def error_output(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def has_error(cell: NotebookNode) -> bool:
    return any(o.output_type == "error" for o in cell.get("outputs", []))


@dataclass
class Sink:
    """What the grading of one submission shares with the executor running it."""

    scratch: Path
    lock: threading.Lock | None = None
    kernel_manager_class: type | None = None
    fallback_kernel_manager_class: type | None = None  # when a warm kernel cannot start
    memory_limit: int | None = None
    max_output_chars: int = 5_000_000  # per cell; only single lines longer than this differ from nbgrader
    records: dict[str, list[CheckResult]] = field(default_factory=dict)  # by test cell grade id
    guard: dict[str, list[str]] = field(default_factory=dict)  # what the guard put back, by test cell
    stopped: str = ""  # why execution ended early
    truncated: dict[int, int] = field(default_factory=dict)  # cell index -> characters dropped
    integrity: list[str] = field(default_factory=list)
    executed: bool = False
    blocked: list[str] = field(default_factory=list)  # what the kernel's audit hook refused (flagged)
    recovered: list[str] = field(default_factory=list)  # kernels that died and were replaced
    execute_seconds: float = 0.0  # wall time of the kernel run (outside the bookkeeping lock)


_local = threading.local()


class bound:
    """``with bound(sink):`` makes the executor in this thread grade into ``sink``."""

    def __init__(self, sink: Sink):
        self.sink = sink

    def __enter__(self) -> Sink:
        _local.sink = self.sink
        return self.sink

    def __exit__(self, *exc) -> None:
        _local.sink = None


def current_sink() -> Sink | None:
    return getattr(_local, "sink", None)


class GradingExecute(Execute):
    """nbgrader's Execute with a warm kernel, fault handling and the guard (see the module docstring)."""

    def preprocess(self, nb, resources=None, km=None):
        sink = current_sink()
        if sink is None:
            return super().preprocess(nb, resources, km)
        reason = nb.metadata.get(NOT_GRADED)
        if reason:
            for cell in nb.cells:
                if is_test_cell(cell):
                    cell.outputs = [error_output("NotGraded", reason)]
            return nb, resources
        if sink.kernel_manager_class is not None:
            self.kernel_manager_class = sink.kernel_manager_class
        self.shutdown_kernel = "immediate"  # every output is in; a graceful shutdown only costs time
        self._sink, self._running, self._installed, self._kernel_pid = sink, None, False, None
        self._nonces: dict[int, str] = {}
        self._lines: dict[int, int] = {}
        self._chars: dict[int, int] = {}
        self._pattern = self._ignore_pattern()
        self._max_lines = int(self.config.get("LimitOutput", {}).get("max_lines", 1000))
        self._results = Path(sink.scratch).resolve() / f"results-{secrets.token_hex(4)}"
        self._token = secrets.token_hex(16)  # only the grader and the kernel's audit hook know it
        recovery.start(self, nb)
        if sink.lock is not None:
            sink.lock.release()
        started = monotonic()
        try:
            try:
                nb, resources = super().preprocess(nb, resources, km)
            except (DeadKernelError, CellTimeoutError, RuntimeError, Empty) as first:
                failure: BaseException | None = first
                if isinstance(first, DeadKernelError) and self._running is not None:  # issue 12
                    nb, resources, failure = recovery.resume(self, nb, resources, km, first)
                if failure is not None and self._running is None and sink.fallback_kernel_manager_class is not None:
                    # the kernel never started: try once more, the usual way
                    self.kernel_manager_class = sink.fallback_kernel_manager_class
                    sink.fallback_kernel_manager_class = None
                    try:
                        nb, resources = super().preprocess(nb, resources, km)
                        failure = None
                    except (DeadKernelError, CellTimeoutError, RuntimeError, Empty) as again:
                        failure = again
                if failure is not None:
                    nb = self.nb
                    self._stop(nb, failure)
        finally:
            sink.execute_seconds += monotonic() - started
            if sink.lock is not None:
                sink.lock.acquire()
        sink.executed = True
        recovery.finish(self, nb)
        self._cross_check(nb)
        return nb, resources

    # --- guard and results ----------------------------------------------------

    def preprocess_cell(self, cell, resources, index):
        mode = recovery.replaying(self, cell, index)  # issue 12: after a dead kernel
        if mode == "skip":
            return cell, resources
        kept = (cell.get("outputs"), cell.get("execution_count"))
        self._running = index
        if cell.cell_type == "code" and cell.source.strip():
            if not self._installed:
                self._installed = True
                self._kernel_pid = getattr(getattr(self.km, "provisioner", None), "pid", None)
                if getattr(self.km, "results_dir", None):  # confined: the kernel's one writable folder
                    self._results = Path(self.km.results_dir) / self._results.name
                self._guard(f"install({str(self._results)!r}, {self._token!r})")
            if is_test_cell(cell):
                nonce = secrets.token_hex(8)
                self._nonces[index] = nonce
                found = self._guard(f"before_test_cell({nonce!r})")
                if found:
                    self._sink.guard[cell.metadata.nbgrader.grade_id] = found
        result = super().preprocess_cell(cell, resources, index)
        recovery.after_cell(self, cell, index, mode)
        if mode == "quiet" and cell.cell_type == "code":
            cell.outputs, cell.execution_count = kept
        return result

    def _guard(self, call: str) -> list[str]:
        """Evaluate a call of the guard in the kernel, as a user expression (no transformer sees it)."""
        value = self._silent_reply(f"__import__({GUARD!r}, fromlist=['_']).{call}")
        if value.get("status") != "ok":
            return [f"the grading guard could not run ({value.get('ename', 'no reply')}: {value.get('evalue', '')})"]
        text = ast.literal_eval(value["data"]["text/plain"])
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

    def on_cell_executed(self, **kwargs):
        super().on_cell_executed(**kwargs)
        index, cell = kwargs["cell_index"], kwargs["cell"]
        nonce = self._nonces.get(index)
        if nonce is None:
            return
        path = Path(f"{self._results}.{nonce}.jsonl")
        records = []
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    records.append(CheckResult.from_json(line))
                except (ValueError, TypeError):
                    self._sink.integrity.append(f"{cell.metadata.nbgrader.grade_id}: an unreadable check result")
        self._sink.records[cell.metadata.nbgrader.grade_id] = records

    def _cross_check(self, nb: NotebookNode) -> None:
        """A test cell without an error must have been passed by the real checks."""
        for cell in nb.cells:
            if not is_test_cell(cell) or has_error(cell):
                continue
            grade_id = cell.metadata.nbgrader.grade_id
            problem = verify_records(cell.source, self._sink.records.get(grade_id, []))
            if problem:
                self._sink.integrity.append(f"{grade_id}: {problem}")
                cell.outputs.append(error_output(
                    INTEGRITY, f"this test cell showed no error, but {problem}. The submission interfered "
                               "with grading (see the grading report); the cell earns no points."))

    # --- faults ---------------------------------------------------------------

    def _stop(self, nb: NotebookNode, error: BaseException) -> None:
        """The kernel died or stopped answering: say so in the cell that was running and every test cell after it."""
        index = self._running if self._running is not None else -1
        if index < 0:
            why = f"the notebook's kernel could not be started ({type(error).__name__}: {error})"
        elif isinstance(error, DeadKernelError):
            why = f"the kernel died while running cell {index + 1}{self._exit_text()}"
        elif isinstance(error, CellTimeoutError):
            why = (f"cell {index + 1} ran past the time limit and did not stop when interrupted, "
                   "so its kernel was shut down")
        else:
            why = f"the kernel stopped answering at cell {index + 1} ({type(error).__name__}: {error})"
        self._sink.stopped = why
        if 0 <= index < len(nb.cells) and nb.cells[index].cell_type == "code" and not has_error(nb.cells[index]):
            nb.cells[index].outputs.append(error_output(STOPPED, why + "."))
        for cell in nb.cells[index + 1:]:
            if is_test_cell(cell):
                cell.outputs = [error_output(STOPPED, f"this test did not run: {why}.")]

    def _exit_text(self) -> str:
        from autograder.grading.kernels import EXIT_CODES

        code = EXIT_CODES.get(getattr(self, "_kernel_pid", None))
        if code is None:
            return ""
        if code < 0:
            import signal

            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            hint = {"SIGSEGV": "a segmentation fault", "SIGKILL": "killed, often for memory",
                    "SIGABRT": "aborted"}.get(name, "")
            return f" ({name}{': ' + hint if hint else ''})"
        return f" (it exited with code {code}, for example through os._exit or sys.exit in native code)"

    def _ignore_pattern(self):
        settings = self.config.get("IgnorePattern", {})
        pattern = settings.get("pattern", "")
        return re.compile(pattern) if pattern else None

    # --- output limits --------------------------------------------------------

    def output(self, outs, msg, display_id, cell_index):
        sink = getattr(self, "_sink", None)
        if sink is None or msg["msg_type"] != "stream":
            return super().output(outs, msg, display_id, cell_index)
        content = msg["content"]
        text = content.get("text", "")
        ignorable = content.get("name") == "stderr" and self._pattern is not None and self._pattern.search(text)
        lines = self._lines.get(cell_index, 0)
        chars = self._chars.get(cell_index, 0)
        if not ignorable and lines >= self._max_lines:
            # nbgrader's LimitOutput drops every stream output after this many lines
            sink.truncated[cell_index] = sink.truncated.get(cell_index, 0) + len(text)
            return None
        if chars + len(text) > sink.max_output_chars:
            keep = max(1, sink.max_output_chars - chars)
            sink.truncated[cell_index] = sink.truncated.get(cell_index, 0) + len(text) - keep
            content["text"] = text[:keep]
        self._chars[cell_index] = chars + len(content["text"])
        if not ignorable:
            self._lines[cell_index] = lines + len(content["text"].split("\n"))
        return super().output(outs, msg, display_id, cell_index)


def expected_checks(source: str) -> list[tuple[str, bool]]:
    """The ``check("exercise", ...)`` calls of a test cell: (exercise, hidden)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    calls = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "check"
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            calls.append((node.args[0].value, bool(node.keywords)))
    return calls


def verify_records(source: str, records: list[CheckResult]) -> str:
    """'' when ``records`` are what the real checks of the cell's ``check`` calls write when all pass;
    else what is wrong."""
    for exercise, hidden in expected_checks(source):
        try:
            names = [c.name for c in registry.checks_of(exercise)]
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


from autograder.grading import recovery  # noqa: E402  (issue 12; it imports this module's helpers)
