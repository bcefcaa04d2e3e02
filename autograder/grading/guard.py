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

This raises the bar; it is not a sandbox. Code that the checks themselves call
(the learner's functions) runs in the same process and could still interfere
while a check runs: the static scan in :mod:`autograder.grading.tamper` and the
grader's cross-check of every passing test cell are there for that.
"""

from __future__ import annotations

import builtins
import json
import os
import sys
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


def install(results: str) -> str:
    """Remember how things are before any of the learner's code runs."""
    global _state
    shell = _shell()
    kernel = getattr(shell, "kernel", None)
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
        for name in [name for name in sys.modules if _own(name)]:
            del sys.modules[name]
        import autograder  # noqa: F401  (a fresh copy from disk, for the test cell's own import)

        state["autograder"] = _autograder_snapshot()
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
