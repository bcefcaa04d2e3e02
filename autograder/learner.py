"""The judge's view of the learner's code: references to it, and the few ways to use them.

A check receives the learner's functions and classes as :class:`Remote` objects. Calling one, reading
one of its attributes or items, asks the learner's process (:mod:`autograder.probe`) to do it, and gives
back plain data (tensors, numbers, strings and containers of these, decoded by :mod:`autograder.codec`)
or another :class:`Remote` for an object that is not data (a model, an optimizer, a generator)::

    @checks.of("init_params")
    def W_has_one_row_per_feature(init_params, num_features=5, seed=0):
        W, b = init_params(num_features, seed=seed)      # two tensors, copied out of the learner's process
        expect(tuple(W.shape) == (num_features, 1), ...)

Everything a check computes itself (the expected values, the comparisons) happens here, in the judge's
process, on those copies; what the learner's code does to torch in its own process cannot reach them.
Three rules follow:

- Arguments travel by value: a tensor the learner's function changes in place is changed over there, not
  here. To keep a value over there, :func:`keep` it (a :class:`Remote` comes back) and :func:`fetch` it
  after the call.
- What must run next to the learner's code (build a model there, watch an optimizer, switch a library
  function off while it runs) is a *probe*: a function of the course's public checks, run there with
  :func:`probe`, that returns what it saw. A probe reports; it never decides, and it never computes what
  the learner's answer should be.
- The judge's own process is shared by several checks at once while a class is graded: a check never
  changes its global state (``torch.manual_seed``, ``set_num_threads``, ...). The learner's process has a
  state of its own, which each check gets fresh and leaves as it was (see ``ProbeServer.op_begin``).

For a learner's own check the learner's process is the same process (:class:`InProcess`): the messages
are the same, so every verdict is the same too.
"""

from __future__ import annotations

import builtins
import contextlib
import contextvars
import threading
import time
import types
from typing import Any, Protocol

from autograder.codec import CodecError, Imported, Ref, decode, encode
from autograder.probe import INSTRUCTOR, ProbeServer, in_learner, resolve


class JudgeError(RuntimeError):
    """A check used the learner's objects in a way the judge cannot (a bug of the check, not of the learner)."""


class Interrupted(BaseException):
    """The learner's code was interrupted (the test ran out of time). Not an Exception: no check catches it."""


class Channel(Protocol):
    def request(self, message: bytes) -> bytes: ...

    def cpu_time(self) -> float: ...


class InProcess:
    """The learner's process is this one: a learner's own check (``check()`` in a notebook, pytest)."""

    def __init__(self, namespace: dict):
        self.server = ProbeServer(namespace)

    def request(self, message: bytes) -> bytes:
        return self.server.handle(message)

    def cpu_time(self) -> float:
        return time.process_time()


class Remote:
    """An object of the learner's process. Call it, read its attributes and items, take its ``len`` or
    iterate over it; everything else is refused (compare what you read, not the object)."""

    __slots__ = ("_r_learner", "_r_ref", "__weakref__")

    def __init__(self, learner: "Learner", ref: Ref):
        object.__setattr__(self, "_r_learner", learner)
        object.__setattr__(self, "_r_ref", ref)

    def __call__(self, *args, **kwargs):
        return self._r_learner.request("call", target=self, args=args, kwargs=kwargs)

    def __getattr__(self, name: str):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self._r_learner.request("getattr", target=self, name=name)

    def __setattr__(self, name: str, value) -> None:
        self._r_learner.request("setattr", target=self, name=name, value=value)

    def __getitem__(self, key):
        return self._r_learner.request("getitem", target=self, key=key)

    def __len__(self) -> int:
        return self._r_learner.request("len", target=self)

    def __iter__(self):
        return iter(self._r_learner.request("list", target=self))

    def __bool__(self) -> bool:
        raise JudgeError(f"a {self._r_ref.type} of the learner's has no truth value in a check: compare "
                         "something read from it")

    def __repr__(self) -> str:
        return f"<the learner's {self._r_ref.type}>"


class Learner:
    """A conversation with one learner's process, over a :class:`Channel`."""

    def __init__(self, channel: Channel):
        self.channel = channel
        self.remotes: dict[int, Remote] = {}
        self.notes: list[str] = []

    # --- messages -----------------------------------------------------------------------

    def request(self, op: str, **fields) -> Any:
        message = encode({"op": op, **fields}, translate=self._translate)
        try:
            reply = decode(self.channel.request(message), ref=self._remote)
        except CodecError as error:
            raise CodecError(f"the learner's process sent back something unreadable ({error})") from None
        if not isinstance(reply, dict):
            raise CodecError("the learner's process sent back something unreadable")
        for note in reply.get("notes") or []:
            if isinstance(note, str) and note not in self.notes:
                self.notes.append(note[:400])
        if "error" in reply:
            raise JudgeError(f"the learner's process refused a request: {reply['error']}")
        if "raised" in reply:
            raise learner_exception(reply["raised"])
        return reply.get("ok")

    def _remote(self, ref: Ref) -> Remote:
        known = self.remotes.get(ref.id)
        if known is None or known._r_ref.type != ref.type:
            known = self.remotes[ref.id] = Remote(self, ref)
        return known

    def _translate(self, obj: Any) -> Ref | Imported | None:
        if type(obj) is Remote:
            if obj._r_learner is not self:
                raise JudgeError("an object of another learner's process")
            return obj._r_ref
        path = import_path(obj)
        return Imported(path) if path else None

    # --- what the runner and the checks ask -----------------------------------------------

    def has(self, name: str) -> bool:
        return bool(self.request("has", name=name))

    def name(self, name: str) -> Any:
        return self.request("name", name=name)

    @contextlib.contextmanager
    def session(self):
        """One check: the learner's random state, grad mode, dtype and threads are put back afterwards."""
        self.request("begin")
        try:
            yield
        finally:
            self.request("end")

    def release(self) -> None:
        """Forget every object handed out so far (after a test cell)."""
        self.remotes.clear()
        self.request("release")


# --- the current learner, for the checks -------------------------------------------------

_CURRENT: contextvars.ContextVar[Learner | None] = contextvars.ContextVar("autograder_learner", default=None)


def current() -> Learner:
    learner = _CURRENT.get()
    if learner is None:
        raise JudgeError("no learner's process to talk to: probe() and keep() work inside a check")
    return learner


@contextlib.contextmanager
def talking_to(learner: Learner):
    token = _CURRENT.set(learner)
    judge_side.active = True
    try:
        yield learner
    finally:
        judge_side.active = False
        _CURRENT.reset(token)


def probe(function, *args, **kwargs) -> Any:
    """Run ``function`` (a function of the course's public checks, or of torch) in the learner's process
    with these arguments; what it returns comes back as data, or as a :class:`Remote`."""
    if import_path(function) is None:
        raise JudgeError(f"{getattr(function, '__qualname__', function)!r} cannot run in the learner's process: "
                         "a probe is a module-level function of a public check module (never an instructor's)")
    return current().request("call", target=function, args=args, kwargs=kwargs)


def keep(value: Any) -> Remote:
    """A copy of ``value`` that stays in the learner's process (to pass to code that changes it in place)."""
    return current().request("keep", value=value)


def fetch(value: Any) -> Any:
    """``value`` itself, or for a :class:`Remote` a copy of the object it stands for (it must be data)."""
    if type(value) is Remote:
        return value._r_learner.request("fetch", target=value)
    return value


def cpu_time() -> float:
    """CPU seconds the learner's process has used so far (measured from outside it where it is apart)."""
    return current().channel.cpu_time()


def is_remote(value: Any) -> bool:
    return type(value) is Remote


def type_name(value: Any) -> str:
    """``module.QualName`` of the value's class."""
    if type(value) is Remote:
        return value._r_ref.type
    cls = type(value)
    return f"{cls.__module__}.{cls.__qualname__}"


def _name_of(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def is_instance(value: Any, *classes: type) -> bool:
    """``isinstance`` for local values and for objects of the learner's process alike."""
    if type(value) is Remote:
        return any(_name_of(cls) in value._r_ref.mro for cls in classes)
    return isinstance(value, classes)


def is_class(value: Any) -> bool:
    return value._r_ref.is_class if type(value) is Remote else isinstance(value, type)


def is_subclass(value: Any, cls: type) -> bool:
    """``issubclass`` for a class here or in the learner's process (False for anything not a class)."""
    if type(value) is Remote:
        return value._r_ref.is_class and _name_of(cls) in value._r_ref.bases
    return isinstance(value, type) and issubclass(value, cls)


def is_callable(value: Any) -> bool:
    return value._r_ref.callable if type(value) is Remote else callable(value)


# --- what may be named across --------------------------------------------------------------

_IMPORTABLE = (types.FunctionType, types.BuiltinFunctionType, types.MethodDescriptorType,
               types.WrapperDescriptorType, type)


def import_path(obj: Any) -> str | None:
    """``module:qualname`` of a function or class that the learner's process can import as it is; None for
    anything else (a lambda, a local function, the instructor's code)."""
    if not isinstance(obj, _IMPORTABLE) and not callable(obj):
        return None
    named = obj
    while "<" in str(getattr(named, "__qualname__", "")) and getattr(named, "__wrapped__", None) is not None:
        named = named.__wrapped__  # a wrapper of ours (refuse_global_changes): the function it wraps has the name
    module = getattr(named, "__module__", None)
    qualname = getattr(named, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or "<" in qualname or module == "__main__":
        return None
    if module == INSTRUCTOR or module.startswith(INSTRUCTOR + "."):
        return None
    path = f"{module}:{qualname}"
    try:
        found = resolve(path)
    except Exception:
        return None
    # the runner calls checks with private copies of their globals: a copy of a function keeps its code
    same = found is obj or (getattr(found, "__code__", None) is not None
                            and getattr(found, "__code__", None) is getattr(obj, "__code__", False))
    # PyTorch rewraps some of its functions once torch._dynamo is loaded (an optimizer's first step does
    # it): torch.manual_seed becomes a wrapper of torch.random.manual_seed, which is what it runs
    return path if same or _unwrapped(obj) is found else None


def _unwrapped(obj: Any) -> Any:
    """What a chain of ``functools.wraps`` wrappers (``__wrapped__``) ends in, a few levels down at most."""
    for _ in range(8):
        inner = getattr(obj, "__wrapped__", None)
        if inner is None or inner is obj:
            break
        obj = inner
    return obj


# --- exceptions of the learner's code ------------------------------------------------------

_NOT_HERE = {"builtins.SystemExit", "builtins.GeneratorExit", "builtins.KeyboardInterrupt",
             "builtins.BaseExceptionGroup", "builtins.ExceptionGroup"}


def learner_exception(info: Any) -> BaseException:
    """The exception the learner's code raised, rebuilt here as the nearest built-in exception (so a check
    that expects a ValueError gets one), with the learner's line attached (``learner_frame``)."""
    from autograder.results import CheckFailure

    if not isinstance(info, dict):
        return CodecError("the learner's process reported an unreadable exception")
    names = [n for n in info.get("types", []) if isinstance(n, str)]
    message = str(info.get("message", ""))[:2000]
    failure = info.get("failure")
    if isinstance(failure, list) and len(failure) == 3:
        return CheckFailure(str(failure[0])[:2000], str(failure[1])[:80], str(failure[2])[:1000])
    if "builtins.KeyboardInterrupt" in names:
        return Interrupted(message)
    cls = RuntimeError
    for name in names:
        if name.startswith("builtins.") and name not in _NOT_HERE:
            candidate = getattr(builtins, name.split(".", 1)[1], None)
            if isinstance(candidate, type) and issubclass(candidate, Exception):
                cls = candidate
                break
    try:
        exc = cls(message)
    except Exception:
        exc = RuntimeError(message)
    exc.learner_type = (names[0] if names else "builtins.Exception").rsplit(".", 1)[-1]
    frame = info.get("frame")
    exc.learner_frame = tuple(str(part)[:300] for part in frame) if isinstance(frame, list) and len(frame) == 2 else None
    return exc


# --- the judge's own process: no check changes its global state -----------------------------

judge_side = threading.local()
_SEEDING = threading.Lock()


@contextlib.contextmanager
def seeded(seed: int):
    """Build something of the judge's own from PyTorch's global random stream (a reference model's
    default initialisation), seeded, one check at a time, and put the stream back afterwards."""
    import torch

    with _SEEDING:
        judge_side.seeding = True
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                yield
        finally:
            judge_side.seeding = False


_GLOBAL_SETTERS = (("torch", "manual_seed"), ("torch", "seed"), ("torch", "set_rng_state"),
                   ("torch.random", "manual_seed"), ("torch.random", "seed"), ("torch.random", "set_rng_state"),
                   ("torch", "set_num_threads"), ("torch", "set_default_dtype"),
                   ("torch", "use_deterministic_algorithms"))
_NET: list = []


def refuse_global_changes() -> None:
    """In the judge's process: make a check that changes PyTorch's global state fail loudly, instead of
    racing with the checks of other notebooks (a check's own mistake; the learner's code is elsewhere, or
    runs in this process through InProcess, where it may)."""
    import importlib

    if _NET:
        return
    for module_name, attr in _GLOBAL_SETTERS:
        module = importlib.import_module(module_name)
        original = getattr(module, attr)

        def guarded(*args, __original=original, __name=f"{module_name}.{attr}", **kwargs):
            if (getattr(judge_side, "active", False) and not getattr(in_learner, "active", False)
                    and not getattr(judge_side, "seeding", False)):
                raise JudgeError(f"a check called {__name}, which changes the judge's process for every check "
                                 "running in it: do it in the learner's process (probe), or use seeded()")
            return __original(*args, **kwargs)

        guarded.__wrapped__ = original
        setattr(module, attr, guarded)
        _NET.append((module, attr, original))
