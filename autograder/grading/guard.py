"""Runs inside a grading kernel: keeps a submission from fooling the checks it is graded by.

The grader calls :func:`install` once, silently, before the notebook's first
cell runs, and :func:`before_test_cell` before every graded test cell. Between
them, the learner's code may have replaced the checks (``autograder.check``,
``run_checks``, the registry), builtins, torch's functions or the kernel's
error display. Before a test cell runs, everything the checks rely on is put
back as it was at start-up (``autograder`` is imported afresh when any of it
was touched), and what was found is returned to the grader (as a user expression,
which no input or AST transformer of the learner's can rewrite).

The results of the cell's checks go to a file whose name holds a fresh random
nonce, so results written before the cell (or by a guess) are not counted.

While the learner's code runs, an audit hook (:func:`sys.addaudithook`: no
Python code can remove it, and it keeps its state in a closure no name leads
to) refuses, when the learner's own code asks, what reaches the running checks
or builds code the scan cannot read: frames (``sys._getframe``, a traceback's
``tb_frame``, a generator's frame, other threads' frames), ``gc``'s object
lists, tracing and profiling hooks, ``compile`` / ``exec`` / ``eval`` of
strings, ``marshal``, new code objects, ``ctypes``, other audit hooks, and
opening the results file. Each refusal is remembered for the grader, which
asks for them after every cell (:func:`report`). When the checks write their
results, the same hook first verifies that nothing of the autograder, of the
namespaces the checks use, or of the running threads was changed; if anything
was, the results are not written and the test cell scores zero.

The checks are also called with private copies of their modules' globals
(:mod:`autograder.runner`), so replacing ``expect`` or ``fail`` in a check
module while a check runs changes nothing that check sees. The kernel itself
is confined (:mod:`.sandbox`): the solutions and other submissions are not
there to read.
"""

from __future__ import annotations

import builtins
import json
import os
import sys
import threading
import types

GUARD_MODULE = __name__
RESULTS_ENV = "AUTOGRADER_RESULTS"  # the same name as autograder.runner.RESULTS_ENV, without importing it

# Namespaces whose entries the checks use; a submission has no business replacing any of them.
_MODULES = ("torch", "torch.nn", "torch.nn.functional", "torch.nn.init", "torch.optim", "torch.autograd",
            "torch.testing", "torch.linalg", "torch.random", "math", "numpy", "inspect", "warnings",
            "traceback", "contextlib", "io", "json", "copy", "functools", "operator")
_CLASSES = (("torch", "Tensor"), ("torch.nn", "Module"), ("torch.nn", "Parameter"), ("torch.nn", "Linear"),
            ("torch.nn", "Sequential"), ("torch.optim", "Optimizer"), ("torch.optim", "SGD"))
_SHELL_METHODS = ("showtraceback", "_showtraceback", "showsyntaxerror", "run_cell", "run_cell_async",
                  "run_ast_nodes", "run_code", "transform_cell", "get_exception_only", "set_custom_exc")
_SHELL_LISTS = ("ast_transformers", "input_transformers_post", "input_transformers_cleanup")
_KERNEL_METHODS = ("do_execute", "execute_request", "send_response", "_publish_execute_input")

_state: dict | None = None


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
    registry = sys.modules.get("autograder.registry")
    checks = {}
    if registry is not None:
        registry._load_all()
        for notebook, group in registry._NOTEBOOKS.items():
            checks[notebook] = (group, {ex: tuple(items) for ex, items in group.by_exercise.items()})
    modules = {name: (module, dict(vars(module)), _functions_of(module))
               for name, module in list(sys.modules.items()) if _own(name) and module is not None}
    return {"modules": modules, "checks": checks}


def _restore_autograder(snapshot: dict) -> None:
    """Put every module, name, function body and registered check of the autograder back as in
    ``snapshot`` (in place: the objects the audit hook compares with stay the ones in use)."""
    for name, (module, namespace, functions) in snapshot["modules"].items():
        sys.modules[name] = module
        current = vars(module)
        for key, value in namespace.items():
            if current.get(key, _MISSING) is not value:
                current[key] = value
        for key in list(current.keys() - namespace.keys()):
            if not key.startswith("__") and not isinstance(current[key], types.ModuleType):
                del current[key]
        for key, entry in functions.items():
            if isinstance(entry[0], type):
                cls, attributes = entry
                for attr in set(vars(cls)) - set(attributes):
                    try:
                        delattr(cls, attr)
                    except (AttributeError, TypeError):
                        pass
                for attr, value in attributes.items():
                    if vars(cls).get(attr, _MISSING) is not value:
                        try:
                            setattr(cls, attr, value)
                        except (AttributeError, TypeError):
                            pass
            else:
                function = entry[0]
                function.__code__, function.__defaults__, function.__kwdefaults__ = entry[1:]
    registry = sys.modules.get("autograder.registry")
    if registry is not None:
        for notebook, (group, by_exercise) in snapshot["checks"].items():
            registry._NOTEBOOKS[notebook] = group
            group.by_exercise.clear()
            group.by_exercise.update({ex: list(items) for ex, items in by_exercise.items()})


def _autograder_changes(snapshot: dict) -> list[str]:
    changes = []
    for name, (module, namespace, functions) in snapshot["modules"].items():
        if sys.modules.get(name) is not module:
            changes.append(f"the module {name} was replaced")
            continue
        for key, value in namespace.items():
            if vars(module).get(key, _MISSING) is not value:
                changes.append(f"{name}.{key} was replaced")
        for key in vars(module).keys() - namespace.keys():
            # A submodule imported later attaches itself to its package: that is no change.
            if not key.startswith("__") and not isinstance(vars(module)[key], types.ModuleType):
                changes.append(f"{name}.{key} was added")
        for key, entry in functions.items():
            if isinstance(entry[0], type):
                if dict(vars(entry[0])) != entry[1]:
                    changes.append(f"the class {name}.{key} was modified")
            elif (entry[0].__code__, entry[0].__defaults__, entry[0].__kwdefaults__) != entry[1:]:
                changes.append(f"the code of {name}.{key} was modified")
    registry = sys.modules.get("autograder.registry")
    if registry is not None:
        for notebook, (group, by_exercise) in snapshot["checks"].items():
            if registry._NOTEBOOKS.get(notebook) is not group or {
                    ex: tuple(items) for ex, items in group.by_exercise.items()} != by_exercise:
                changes.append(f"the registered checks of {notebook} were modified")
    return changes


_MISSING = object()


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


def _shell():
    try:
        from IPython import get_ipython

        return get_ipython()
    except Exception:
        return None


def _rewrapped_by_torch(new, old) -> bool:
    """PyTorch rewraps some of its own functions on first use: the first optimizer imports
    torch._dynamo, which wraps torch.manual_seed, and wraps its class's step for the profiler.
    Such a wrapper holds the original as ``__wrapped__`` and its code lives in torch itself."""
    import torch

    code = getattr(getattr(new, "__func__", new), "__code__", None)
    return (getattr(new, "__wrapped__", None) is old and code is not None
            and code.co_filename.startswith(os.path.dirname(torch.__file__) + os.sep))


_LIBRARIES_WITH_HOOKS = ("matplotlib", "matplotlib_inline", "IPython", "ipykernel", "ipywidgets")


def _from_a_library(callback) -> bool:
    module = getattr(getattr(callback, "__func__", callback), "__module__", None) or ""
    return module.split(".")[0] in _LIBRARIES_WITH_HOOKS


def _method_identity(obj, name):
    value = getattr(obj, name, None)
    return getattr(value, "__func__", value)


def install(results: str, token: str = "") -> str:
    """Remember how things are before any of the learner's code runs; with ``token`` (once per
    kernel), start the audit hook, which answers :func:`report` calls that carry the token."""
    global _state
    shell = _shell()
    kernel = getattr(shell, "kernel", None)
    if token and _state is None:
        sys.addaudithook(_audit_hook(token, results, _autograder_snapshot(),
                                     [(label, space, dict(vars(space))) for label, space in _namespaces()]))
    _state = {
        "results": results,
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
    os.environ[RESULTS_ENV] = results
    return "installed"


def before_test_cell(nonce: str) -> str:
    """Put back what the checks rely on, point the results at a fresh file, and return
    (as JSON) what had been changed."""
    found: list[str] = []
    state = _state
    if state is None:
        return json.dumps(["the grading guard was not installed (or was removed) before this test cell"])
    for label, space, original in state["namespaces"]:
        current = vars(space)
        for key, value in original.items():
            now = current.get(key, _MISSING)
            if now is value:
                continue
            if _rewrapped_by_torch(now, value):
                original[key] = now
                continue
            found.append(f"{label}.{key} was replaced")
            try:
                setattr(space, key, value)
            except (TypeError, AttributeError):
                pass
    changes = _autograder_changes(state["autograder"])
    if changes:
        found.extend(changes)
        _restore_autograder(state["autograder"])
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
    os.environ[RESULTS_ENV] = f"{state['results']}.{nonce}.jsonl"
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
RUNTIME_CODE = ("compile", "marshal.loads", "code.__new__")
_FRAME_ATTRIBUTES = {"tb_frame", "gi_frame", "cr_frame", "ag_frame", "f_back"}
_PER_REQUEST = {"input", "raw_input", "exit", "quit", "getpass"}  # ipykernel sets these for each request


class GuardReport(Exception):
    """Carries the hook's findings to the grader (as the error of a user expression)."""


class GradingGuardError(RuntimeError):
    """What the learner's code gets for an operation the guard refuses."""


def report(token: str) -> None:
    """Ask the audit hook for what it refused or found since the last report: it raises
    :class:`GuardReport` with them as JSON. (If anything else happens, the hook was not reached.)"""
    sys.audit(REPORT_EVENT, token)


def _audit_hook(token: str, results: str, pristine: dict, namespaces: list):
    """The hook, with everything it needs in its closure (nothing the learner's code can name)."""
    results_folder = os.path.dirname(os.path.abspath(results))
    library = os.path.dirname(os.path.abspath(__file__))
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
    found: list[str] = []
    local = threading.local()
    getframe, current_frames, get_ident = sys._getframe, sys._current_frames, threading.get_ident

    def learners(filename: str) -> bool:
        return (filename.startswith(cells) or filename.startswith(working + os.sep)
                or (filename.startswith("<") and not filename.startswith("<frozen")))

    def caller_is_learner() -> bool:
        frame = getframe(3)  # 0 here, 1 check, 2 hook, 3 whoever raised the event
        while frame is not None and (frame.f_code.co_filename.startswith(thin) or (
                frame.f_code.co_filename == traceback_file and frame.f_code.co_name in frame_walkers)):
            frame = frame.f_back
        return frame is not None and learners(frame.f_code.co_filename)

    def learner_threads() -> list[str]:
        me, busy = get_ident(), []
        for ident, frame in current_frames().items():
            while ident != me and frame is not None:
                if learners(frame.f_code.co_filename):
                    busy.append(f"a thread the notebook started ({frame.f_code.co_name}) was running")
                    break
                frame = frame.f_back
        return busy

    def tampering() -> list[str]:
        problems = _autograder_changes(pristine)
        for label, space, original in namespaces:
            current = vars(space)
            for key, value in original.items():
                if space is builtins and key in _PER_REQUEST:
                    continue
                now = current.get(key, _MISSING)
                if now is not value and not _rewrapped_by_torch(now, value):
                    problems.append(f"{label}.{key} was replaced")
        return learner_threads() + problems

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
            if not path.startswith(results_folder + os.sep):
                return
            if caller_is_learner():
                found.append("opened the checks' results file")
                raise GradingGuardError("the checks' results are not for the notebook to open")
            if os.path.basename(path).startswith("results-"):
                # the checks are about to record: what they relied on must be as it was. (Found, it
                # costs the test its points through the report; raising here would show the hidden
                # test's line in the traceback.)
                found.extend(f"while the checks ran: {problem}" for problem in tampering())
            return
        if event == "object.__getattr__":
            if len(args) > 1 and args[1] in _FRAME_ATTRIBUTES and caller_is_learner():
                found.append(f"reached a running frame (.{args[1]})")
                raise GradingGuardError(f"reaching frames (.{args[1]}) is not allowed while grading")
            return
        what = _REFUSED.get(event) or ("used ctypes, which can rewrite the interpreter's memory"
                                       if event.startswith("ctypes.") else None)
        if what and caller_is_learner():
            found.append(what)
            raise GradingGuardError(f"the grader does not allow this: the notebook {what}")

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


_WATCHED = frozenset({*_REFUSED, REPORT_EVENT, "open", "object.__getattr__"})
