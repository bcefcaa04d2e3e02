"""Runs inside a grading kernel: defence in depth around the judge, and evidence for the instructor.

Verdicts are not made here: every test cell is judged in the grader's process (:mod:`.judge`), from
observations of the learner's code. This module watches the kernel for what an honest notebook has no
use for, so that an instructor sees it, and so that it costs the points where it happens while a test
runs.

The grader calls :func:`install` once per kernel, silently, before the notebook's first cell runs, and
after every cell asks two things (as user expressions, which no input or AST transformer of the
learner's can rewrite): :func:`changes`, what of the watched namespaces (builtins, torch and what the
probes use, the autograder package, the kernel's display and execution machinery) was replaced or added
since install, each put back at once; and the audit hook's report (:func:`report`).

The audit hook (:func:`sys.addaudithook`: no Python code can remove it, and it keeps its state in a
closure no name leads to) refuses, when the learner's own code asks, what reaches into running code or
builds code no scan can read: frames (``sys._getframe``, a traceback's ``tb_frame``, a generator's frame,
other threads' frames), ``gc``'s object lists, tracing and profiling hooks, ``compile`` / ``exec`` /
``eval`` of strings, ``marshal``, new code objects, ``ctypes``, other audit hooks, and opening the files
the grader and the kernel exchange. Each refusal is remembered, with the learner's line, until the grader
asks for it with the run's token.

What PyTorch, matplotlib and IPython change by themselves (an optimizer's ``step`` wrapped on first use,
inline plotting's hooks) is theirs, never reported. The kernel itself is confined (:mod:`.sandbox`).
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import sys
import threading
import types

GUARD_MODULE = __name__

# Namespaces the probes and the kernel rely on; a submission has no business replacing anything in them.
_MODULES = ("torch", "torch.nn", "torch.nn.functional", "torch.nn.init", "torch.optim", "torch.autograd",
            "torch.testing", "torch.linalg", "torch.random", "math", "numpy", "inspect", "warnings",
            "traceback", "contextlib", "io", "json", "copy", "functools", "operator")
_CLASSES = (("torch", "Tensor"), ("torch.nn", "Module"), ("torch.nn", "Parameter"), ("torch.nn", "Linear"),
            ("torch.nn", "Sequential"), ("torch.optim", "Optimizer"), ("torch.optim", "SGD"))
_SHELL_METHODS = ("showtraceback", "_showtraceback", "showsyntaxerror", "run_cell", "run_cell_async",
                  "run_ast_nodes", "run_code", "transform_cell", "get_exception_only", "set_custom_exc")
_SHELL_LISTS = ("ast_transformers", "input_transformers_post", "input_transformers_cleanup")
_KERNEL_METHODS = ("do_execute", "execute_request", "send_response", "_publish_execute_input")
# What ipykernel sets again for each request (and IPython's output cache).
_PER_REQUEST = {"builtins": {"input", "raw_input", "exit", "quit", "getpass", "_", "__", "___"}}

_state: dict | None = None
_MISSING = object()


def _own(name: str) -> bool:
    return (name == "autograder" or name.startswith("autograder.")) and name != GUARD_MODULE


def _functions_of(module: types.ModuleType) -> dict:
    found = {}
    for key, value in vars(module).items():
        if isinstance(value, types.FunctionType):
            found[key] = (value, value.__code__, value.__defaults__, value.__kwdefaults__)
        elif isinstance(value, type) and value.__module__ == module.__name__:
            found[key] = (value, dict(vars(value)))
    return found


def _autograder_snapshot() -> dict:
    package = sys.modules.get("autograder")
    if package is not None:
        # autograder loads its public names on first use; resolve them now, so that
        # replacing one later shows as a change rather than as a first load.
        for name in getattr(package, "__all__", ()):
            getattr(package, name, None)
    return {name: (module, dict(vars(module)), _functions_of(module))
            for name, module in list(sys.modules.items()) if _own(name) and module is not None}


def _rewrapped_by_torch(new, old) -> bool:
    """PyTorch rewraps some of its own functions on first use: the first optimizer imports
    torch._dynamo, which wraps torch.manual_seed, and wraps its class's ``step`` for the profiler (also
    the ``step`` of an optimizer class of the course's). Such a wrapper holds the original as
    ``__wrapped__`` and its code lives in torch itself."""
    import torch

    code = getattr(getattr(new, "__func__", new), "__code__", None)
    return (getattr(new, "__wrapped__", None) is old and code is not None
            and code.co_filename.startswith(os.path.dirname(torch.__file__) + os.sep))


def _class_changes(label: str, cls: type, attributes: dict, restore: bool) -> list[str]:
    """What changed in a class's own dictionary since ``attributes`` was taken (PyTorch's own rewraps
    accepted and remembered); put back when ``restore``."""
    found = []
    current = dict(vars(cls))
    for attr, value in attributes.items():
        now = current.get(attr, _MISSING)
        if now is value:
            continue
        if _rewrapped_by_torch(now, value):
            attributes[attr] = now
            continue
        found.append(f"{label}.{attr} was {'deleted' if now is _MISSING else 'replaced'}")
        if restore:
            with contextlib.suppress(AttributeError, TypeError):
                setattr(cls, attr, value)
    for attr in current.keys() - attributes.keys():
        if attr in _TORCH_ADDS:
            attributes[attr] = current[attr]
            continue
        found.append(f"{label}.{attr} was added")
        if restore:
            with contextlib.suppress(AttributeError, TypeError):
                delattr(cls, attr)
    return found


# Class attributes Python and PyTorch add themselves after import: a compiled module's call, the abc
# caches, and copyreg's __slotnames__, cached on a class the first time one of its objects is pickled
# (torch.save of a tensor or a whole model does it: 07's checkpoints, which is not tampering).
_TORCH_ADDS = frozenset({"_compiled_call_impl", "__annotations__", "__abstractmethods__", "_abc_impl",
                         "__slotnames__"})


def _autograder_changes(snapshot: dict, restore: bool) -> list[str]:
    changes = []
    for name, (module, namespace, functions) in snapshot.items():
        if sys.modules.get(name) is not module:
            changes.append(f"the module {name} was replaced")
            if restore:
                sys.modules[name] = module
        current = vars(module)
        for key, value in namespace.items():
            if current.get(key, _MISSING) is not value:
                changes.append(f"{name}.{key} was replaced")
                if restore:
                    current[key] = value
        for key in list(current.keys() - namespace.keys()):
            # A submodule imported later attaches itself to its package, and a lazy name of the package
            # loads on first use: neither is a change.
            if key.startswith("__") or isinstance(current[key], types.ModuleType) or _loaded_lazily(module, key):
                continue
            changes.append(f"{name}.{key} was added")
            if restore:
                del current[key]
        for key, entry in functions.items():
            if isinstance(entry[0], type):
                changes.extend(_class_changes(f"{name}.{key}", entry[0], entry[1], restore))
            elif (entry[0].__code__, entry[0].__defaults__, entry[0].__kwdefaults__) != entry[1:]:
                changes.append(f"the code of {name}.{key} was modified")
                if restore:
                    entry[0].__code__, entry[0].__defaults__, entry[0].__kwdefaults__ = entry[1:]
    return changes


def _loaded_lazily(module, key: str) -> bool:
    lazy = getattr(module, "_PUBLIC", None)
    return isinstance(lazy, dict) and key in lazy


def _namespaces() -> list[tuple[str, object]]:
    spaces = [("builtins", builtins)]
    for name in _MODULES:
        module = sys.modules.get(name)
        if module is not None:
            spaces.append((name, module))
    for module_name, attr in _CLASSES:
        module = sys.modules.get(module_name)
        cls = getattr(module, attr, None) if module is not None else None
        if isinstance(cls, type):
            spaces.append((f"{module_name}.{attr}", cls))
    return spaces


def _namespace_changes(spaces: list, restore: bool) -> list[str]:
    found = []
    for label, space, original in spaces:
        if isinstance(space, type):
            found.extend(_class_changes(label, space, original, restore))
            continue
        skip = _PER_REQUEST.get(label, ())
        current = vars(space)
        for key, value in original.items():
            now = current.get(key, _MISSING)
            if now is value or key in skip:
                continue
            if _rewrapped_by_torch(now, value):
                original[key] = now
                continue
            found.append(f"{label}.{key} was replaced")
            if restore:
                with contextlib.suppress(TypeError, AttributeError):
                    setattr(space, key, value)
    return found


def _shell():
    try:
        from IPython import get_ipython

        return get_ipython()
    except Exception:
        return None


_LIBRARIES_WITH_HOOKS = ("matplotlib", "matplotlib_inline", "IPython", "ipykernel", "ipywidgets")


def _from_a_library(callback) -> bool:
    module = getattr(getattr(callback, "__func__", callback), "__module__", None) or ""
    return module.split(".")[0] in _LIBRARIES_WITH_HOOKS


def _method_identity(obj, name):
    value = getattr(obj, name, None)
    return getattr(value, "__func__", value)


def install(folder: str, token: str) -> str:
    """Remember how things are before any of the learner's code runs, and start the audit hook (once per
    kernel), which answers :func:`report` calls that carry ``token``. ``folder`` is where the grader and
    the kernel exchange files: the learner's code may not open anything in it."""
    global _state
    if _state is not None:
        return "installed"
    shell = _shell()
    kernel = getattr(shell, "kernel", None)
    sys.addaudithook(_audit_hook(token, folder))
    _state = {
        "namespaces": [(label, space, dict(vars(space))) for label, space in _namespaces()],
        "autograder": _autograder_snapshot(),
        "shell": shell,
        "shell_methods": {name: _method_identity(shell, name) for name in _SHELL_METHODS} if shell else {},
        "shell_lists": {name: list(getattr(shell, name, []) or []) for name in _SHELL_LISTS} if shell else {},
        "events": ({event: list(callbacks) for event, callbacks in shell.events.callbacks.items()}
                   if shell is not None else {}),
        "kernel": kernel,
        "kernel_methods": {name: _method_identity(kernel, name) for name in _KERNEL_METHODS} if kernel else {},
        "excepthook": sys.excepthook,
    }
    return "installed"


def changes() -> str:
    """What was replaced, added or deleted since :func:`install` in what the kernel and the probes rely
    on (as JSON), each put back as it was."""
    found: list[str] = []
    state = _state
    if state is None:
        return json.dumps(["the grading guard was not installed (or was removed)"])
    found.extend(_namespace_changes(state["namespaces"], restore=True))
    found.extend(_autograder_changes(state["autograder"], restore=True))
    shell = state["shell"]
    if shell is not None:
        for name, original in state["shell_methods"].items():
            if _method_identity(shell, name) is not original:
                found.append(f"the kernel's {name} was replaced")
                vars(shell).pop(name, None)
        for name, original in state["shell_lists"].items():
            if list(getattr(shell, name, []) or []) != original:
                found.append(f"the kernel's {name} were changed")
                setattr(shell, name, list(original))
        for event, callbacks in state["events"].items():
            current = list(shell.events.callbacks.get(event, []))
            added = [callback for callback in current if callback not in callbacks]
            if any(callback not in current for callback in callbacks) or not all(map(_from_a_library, added)):
                found.append(f"callbacks of the kernel's {event} event were changed")
                shell.events.callbacks[event] = list(callbacks)
            else:  # matplotlib's inline backend registers its hooks with the first figure
                callbacks[:] = current
    kernel = state["kernel"]
    if kernel is not None:
        for name, original in state["kernel_methods"].items():
            if _method_identity(kernel, name) is not original:
                found.append(f"the kernel's {name} was replaced")
                vars(kernel).pop(name, None)
    if sys.excepthook is not state["excepthook"]:
        found.append("sys.excepthook was replaced")
        sys.excepthook = state["excepthook"]
    return json.dumps(found)


# --- the audit hook -------------------------------------------------------------------

REPORT_EVENT = "autograder.guard.report"
# Audit events the learner's own code may not raise while it is graded, and what each means.
_REFUSED = {
    "sys._getframe": "reached a running frame (sys._getframe)",
    "sys._current_frames": "reached other threads' frames (sys._current_frames)",
    "gc.get_objects": "searched the interpreter's objects (gc.get_objects)",
    "gc.get_referrers": "searched the interpreter's objects (gc.get_referrers)",
    "gc.get_referents": "searched the interpreter's objects (gc.get_referents)",
    "sys.settrace": "installed a tracing hook (sys.settrace)",
    "sys.setprofile": "installed a profiling hook (sys.setprofile)",
    "sys.addaudithook": "installed an audit hook",
    "compile": "built code at run time (compile, exec or eval of a string, which the scan cannot read)",
    "marshal.loads": "loaded code at run time (marshal)",
    "code.__new__": "built a code object at run time",
    "object.__setattr__": "changed a function's code or an interpreter object's internals",
    "object.__delattr__": "changed a function's code or an interpreter object's internals",
}
_FRAME_ATTRIBUTES = {"tb_frame", "gi_frame", "cr_frame", "ag_frame", "f_back"}


class GuardReport(Exception):
    """Carries the hook's findings to the grader (as the error of a user expression)."""


class GradingGuardError(RuntimeError):
    """What the learner's code gets for an operation the guard refuses."""


def report(token: str) -> None:
    """Ask the audit hook for what it refused since the last report: it raises :class:`GuardReport` with
    them as JSON, each ``{"what": ..., "file": ..., "line": ...}`` (where in the learner's code). If
    anything else happens, the hook was not reached."""
    sys.audit(REPORT_EVENT, token)


def _audit_hook(token: str, folder: str):
    """The hook, with everything it needs in its closure (nothing the learner's code can name)."""
    exchange = os.path.abspath(folder)
    # Library code that hands frames (or ctypes' powers) straight back to its caller: whoever called it
    # is who asked. (traceback's formatting reads frames and gives back text: that is allowed.)
    stdlib = os.path.dirname(os.__file__)
    thin = tuple(os.path.join(stdlib, name) for name in ("inspect.py", "ctypes"))
    traceback_file, frame_walkers = os.path.join(stdlib, "traceback.py"), ("walk_tb", "walk_stack")
    try:
        from ipykernel.compiler import get_tmp_directory

        cells = get_tmp_directory()
    except Exception:
        cells = "/tmp/ipykernel_"
    working = os.getcwd()
    found: list[dict] = []
    local = threading.local()
    getframe = sys._getframe

    def learners(filename: str) -> bool:
        return (filename.startswith(cells) or filename.startswith(working + os.sep)
                or (filename.startswith("<") and not filename.startswith("<frozen")))

    def learner_caller():
        """The learner's frame that raised the event, or None when the event is not the learner's."""
        frame = getframe(3)  # 0 here, 1 check, 2 hook, 3 whoever raised the event
        while frame is not None and (frame.f_code.co_filename.startswith(thin) or (
                frame.f_code.co_filename == traceback_file and frame.f_code.co_name in frame_walkers)):
            frame = frame.f_back
        return frame if frame is not None and learners(frame.f_code.co_filename) else None

    def refuse(frame, what: str, message: str) -> None:
        found.append({"what": what, "file": os.path.basename(frame.f_code.co_filename), "line": frame.f_lineno,
                      "function": frame.f_code.co_name})
        raise GradingGuardError(message)

    def check(event: str, args: tuple) -> None:
        if event == REPORT_EVENT:
            if args and args[0] == token:
                text = json.dumps(found)
                found.clear()
                raise GuardReport(text)
            return
        if event == "open":
            path = args[0] if args else None
            if not isinstance(path, (str, bytes)):
                return
            path = os.path.abspath(os.fsdecode(path))
            if path.startswith(exchange + os.sep):
                frame = learner_caller()
                if frame is not None:
                    refuse(frame, "opened a file the grader and the kernel exchange",
                           "the grader's files are not for the notebook to open")
            return
        if event == "socket.connect":  # the judge's socket (probe.sock) is in the exchange folder too
            address = args[1] if len(args) > 1 else None
            if isinstance(address, (str, bytes)) and os.path.abspath(os.fsdecode(address)).startswith(exchange + os.sep):
                frame = learner_caller()
                if frame is not None:
                    refuse(frame, "connected to the grader's socket",
                           "the grader's socket is not for the notebook to use")
            return
        if event == "object.__getattr__":
            if len(args) > 1 and args[1] in _FRAME_ATTRIBUTES:
                frame = learner_caller()
                if frame is not None:
                    refuse(frame, f"reached a running frame (.{args[1]})",
                           f"reaching frames (.{args[1]}) is not allowed while grading")
            return
        what = _REFUSED.get(event) or ("used ctypes, which can rewrite the interpreter's memory"
                                       if event.startswith("ctypes.") else None)
        if what:
            frame = learner_caller()
            if frame is not None:
                refuse(frame, what, f"the grader does not allow this: the notebook {what}")

    def hook(event: str, args: tuple) -> None:
        if event not in _WATCHED and not event.startswith("ctypes."):
            return
        if getattr(local, "busy", False):  # the hook's own use of audited functions
            return
        local.busy = True
        try:
            check(event, args)
        finally:
            local.busy = False

    return hook


_WATCHED = frozenset({*_REFUSED, REPORT_EVENT, "open", "socket.connect", "object.__getattr__"})
