"""The learner's side of a check: calls the learner's code on the judge's inputs and reports what it did.

A check (the judge, :mod:`autograder.learner`) never holds the learner's objects. It asks this server,
which lives where the learner's code lives, to look up a name of the notebook, call a function or a
class, read an attribute, or run a *probe* (a function of the course's public checks that exercises the
learner's code and returns what it observed), and gets back plain data (:mod:`autograder.codec`) or a
reference to an object that stays here.

When a graded notebook runs, the server sits in the learner's kernel and the judge in the grader's
process (:func:`serve_socket` is what the grader runs in the kernel while it judges a test cell). For a learner's own
check, both sit in the same process and talk through :class:`InProcess` (``autograder.learner``); the
messages are the same either way, so a verdict is the same either way.

Nothing here decides anything: the server reports, the judge judges. A notebook that rewrites this
module can make it report nonsense, but not an observation that passes without the work: the judge
computes every expected value itself, from the inputs it chose.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import itertools
import os
import sys
import threading
import traceback
import warnings
from pathlib import Path
from typing import Any

from autograder.codec import CodecError, Ref, decode, describe_type, encode

_PACKAGE_DIR = str(Path(__file__).resolve().parent)
_LIBRARY_DIRS = tuple(str(Path(p).resolve()) for p in {sys.prefix, sys.base_prefix, sys.exec_prefix} if p)
MAX_LISTED = 100_000  # items of an iterable listed in one request
INSTRUCTOR = "autograder.checks.instructor"

# Set while this process runs the learner's code for a check (see autograder.learner.JudgeSide).
in_learner = threading.local()


def resolve(path: str) -> Any:
    """The function or class named ``module:qualname``."""
    module_name, _, qualname = path.partition(":")
    if not module_name or not qualname or module_name == INSTRUCTOR or module_name.startswith(INSTRUCTOR + "."):
        raise CodecError(f"{path!r} cannot be imported here")
    obj = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


class ProbeServer:
    """Serves one learner's namespace: requests in, observations out."""

    def __init__(self, namespace: dict):
        self.namespace = namespace
        self.objects: dict[int, Any] = {}
        self.ids: dict[int, int] = {}  # id(obj) -> handle, so one object always has one handle
        self.saved: list[tuple] = []
        self.handles = itertools.count(1)

    # --- references -------------------------------------------------------------------

    def keep(self, obj: Any) -> Ref:
        handle = self.ids.get(id(obj))
        if handle is None or self.objects.get(handle) is not obj:
            handle = next(self.handles)
            self.objects[handle] = obj
            self.ids[id(obj)] = handle
        return Ref.from_meta({"R": handle, **describe_type(obj)})

    def lookup(self, ref: Ref) -> Any:
        if ref.id not in self.objects:
            raise CodecError(f"no object with handle {ref.id} here")
        return self.objects[ref.id]

    # --- requests ---------------------------------------------------------------------

    def handle(self, message: bytes) -> bytes:
        try:
            request = decode(message, self.lookup, resolve)
            op = request.pop("op")
            method = getattr(self, f"op_{op}", None)
            if method is None:
                raise CodecError(f"no operation {op!r}")
        except Exception as error:  # a malformed request is the judge's bug: say so plainly
            return encode({"error": f"{type(error).__name__}: {error}"})
        stderr = io.StringIO()
        in_learner.active = True
        try:
            with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stderr(stderr):
                warnings.simplefilter("always")
                try:
                    reply = {"ok": method(**request)}
                except BaseException as exc:  # the learner's code raised (or was interrupted): report it
                    reply = {"raised": raised(exc)}
        finally:
            in_learner.active = False
        notes = learner_notes(caught, stderr.getvalue())
        if notes:
            reply["notes"] = notes
        try:
            return encode(reply, keep=self.keep)
        except Exception as error:  # a value that will not encode: say what it was
            return encode({"raised": {"types": [f"builtins.{type(error).__name__}"],
                                      "message": f"what your code returned could not be read: {error}"}})

    def op_has(self, name: str) -> bool:
        return name in self.namespace

    def op_name(self, name: str) -> Any:
        return self.namespace[name]

    def op_call(self, target: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        return target(*args, **(kwargs or {}))

    def op_getattr(self, target: Any, name: str) -> Any:
        return getattr(target, name)

    def op_setattr(self, target: Any, name: str, value: Any) -> None:
        setattr(target, name, value)

    def op_getitem(self, target: Any, key: Any) -> Any:
        return target[key]

    def op_len(self, target: Any) -> int:
        return len(target)

    def op_list(self, target: Any) -> list:
        items = []
        for item in target:
            items.append(item)
            if len(items) > MAX_LISTED:
                raise RuntimeError(f"more than {MAX_LISTED} items")
        return items

    def op_fetch(self, target: Any) -> Any:
        encode(target)  # raises when it is not data
        return target

    def op_keep(self, value: Any) -> Ref:
        return self.keep(value)

    def op_begin(self) -> None:
        """A check starts: remember what the check may change of the learner's session."""
        import torch

        self.saved.append((torch.get_rng_state(), torch.is_grad_enabled(), torch.get_default_dtype(),
                           torch.get_num_threads()))

    def op_end(self) -> None:
        """A check ended: the learner's random state, grad mode, default dtype and threads as before."""
        import torch

        if self.saved:
            rng, grad, dtype, threads = self.saved.pop()
            torch.set_rng_state(rng)
            torch.set_grad_enabled(grad)
            torch.set_default_dtype(dtype)
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)

    def op_release(self) -> None:
        self.objects.clear()
        self.ids.clear()
        self.saved.clear()


def learner_notes(caught: list, stderr: str) -> list[str]:
    """What the learner's code warned of or printed to stderr while a check ran (it costs nothing)."""
    from autograder.results import shorten

    notes = []
    for warning in caught:
        text = f"{warning.category.__name__}: {warning.message}"
        if text not in notes:
            notes.append(text)
    if stderr.strip():
        notes.append("printed to stderr: " + shorten(stderr, 300))
    return notes


def raised(exc: BaseException) -> dict:
    """What the judge needs to know of an exception: its classes, its message, and the learner's line."""
    from autograder.results import CheckFailure

    info = {"types": [f"{c.__module__}.{c.__qualname__}" for c in type(exc).__mro__],
            "message": _text(exc)}
    if isinstance(exc, CheckFailure):  # a probe's own finding (a switched-off tool was called, ...)
        info["failure"] = [exc.message, exc.code, exc.fix]
    frame = learner_frame(exc)
    if frame is not None:
        info["frame"] = [frame.name, (frame.line or "").strip()]
    return info


def _text(exc: BaseException) -> str:
    try:
        return str(exc)[:2000]
    except Exception:
        return "(its message could not be read)"


def learner_frame(exc: BaseException) -> traceback.FrameSummary | None:
    """The innermost frame of the learner's own code, if the exception went through it after the
    course's code called it; None when the course's code raised last."""
    learner = None
    for frame in traceback.extract_tb(exc.__traceback__):
        filename = str(Path(frame.filename).resolve()) if not frame.filename.startswith("<") else frame.filename
        if filename.startswith(_PACKAGE_DIR):
            learner = None
        elif not filename.startswith(_LIBRARY_DIRS):
            learner = frame
    return learner


# --- in a graded kernel -------------------------------------------------------------------

_KERNEL_SERVER: list[ProbeServer] = []


def serve_socket(path: str) -> None:
    """Answer the judge's requests, one after another, over the Unix socket the grader listens on at
    ``path``, until it closes the connection (what the grader runs in the kernel, silently, while it
    judges a test cell). Each message is its length (8 bytes, big-endian) and then its bytes."""
    import socket

    if not _KERNEL_SERVER:
        from IPython import get_ipython

        _KERNEL_SERVER.append(ProbeServer(get_ipython().user_ns))
    server = _KERNEL_SERVER[0]
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.connect(path)
        while True:
            head = _received(connection, 8)
            if head is None:
                return
            message = _received(connection, int.from_bytes(head, "big"))
            if message is None:
                return
            answer = server.handle(message)
            connection.sendall(len(answer).to_bytes(8, "big") + answer)


def _received(connection, size: int) -> bytes | None:
    """Exactly ``size`` bytes from the connection; None when the other side closed it first."""
    parts, left = [], size
    while left:
        part = connection.recv(min(left, 1 << 20))
        if not part:
            return None
        parts.append(part)
        left -= len(part)
    return b"".join(parts)
