"""Read a submission's code for attempts to get around the checks, without running it.

Flags, by cell:

- replacing or deleting anything of ``autograder`` (``check``, ``run_checks``,
  the registry), of ``builtins`` / ``__builtins__``, of ``torch`` (and ``numpy``,
  ``math``), of ``sys.modules``, or of the kernel (``get_ipython()`` attributes,
  its events, AST or input transformers, ``sys.excepthook``, tracing hooks);
- objects that answer every comparison with yes: ``__eq__`` that always returns
  True, ``__ne__`` that always returns False, a faked ``__class__``,
  ``__instancecheck__`` / ``__subclasscheck__`` or ``__torch_function__``;
- code the scan cannot read: ``exec`` / ``eval`` / ``compile`` of strings, and
  ``ctypes`` (which can rewrite the interpreter's memory);
- signalling processes (``os.kill``: the grader's, or the kernel's parent);
- reaching into the running checks: ``gc.get_objects`` / ``get_referrers``,
  ``sys._getframe``, ``inspect.currentframe`` / ``stack``, tracing hooks.

A flag is evidence for the instructor, not a verdict: the grade is whatever
the (guarded) checks gave. A learner who writes ``check = ...`` by accident is
flagged too, and harmlessly graded.
"""

from __future__ import annotations

import ast

from nbformat import NotebookNode

from autograder.cells import parse_source

PROTECTED = ("autograder", "builtins", "torch", "numpy", "math", "IPython", "ipykernel")
KERNEL_HOOKS = {"register", "unregister", "set_custom_exc", "set_hook", "register_post_execute"}
MUTATORS = {"clear", "pop", "popitem", "update", "setdefault", "append", "insert", "extend", "remove",
            "__setitem__", "__delitem__"}
KERNEL_LISTS = {"ast_transformers", "input_transformers_post", "input_transformers_cleanup"}


def _python(source: str) -> str:
    """Cell source as plain Python (IPython magics and shell escapes turned into calls)."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return TransformerManager().transform_cell(source)
    except Exception:
        return source


class _Scanner(ast.NodeVisitor):
    def __init__(self, aliases: dict[str, str]):
        self.aliases = aliases  # local name -> module path it stands for (from imports)
        self.found: list[str] = []

    # -- names ---------------------------------------------------------------

    def dotted(self, node: ast.AST) -> str | None:
        """The dotted path an expression stands for, with import aliases resolved."""
        if isinstance(node, ast.Name):
            if node.id == "__builtins__":
                return "builtins"
            return self.aliases.get(node.id, node.id)
        if isinstance(node, ast.Attribute):
            base = self.dotted(node.value)
            return f"{base}.{node.attr}" if base else None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "get_ipython":
            return "get_ipython()"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "vars" and node.args:
            return self.dotted(node.args[0])
        if isinstance(node, ast.Subscript):
            return self.dotted(node.value)
        return None

    @staticmethod
    def protected(path: str | None) -> bool:
        if not path:
            return False
        root = path.split(".")[0]
        return (root in PROTECTED or path.startswith("get_ipython()") or path.startswith("sys.modules")
                or path in ("sys.excepthook", "sys.displayhook", "sys.settrace", "sys.setprofile"))

    def flag(self, node: ast.AST, message: str) -> None:
        self.found.append(f"line {getattr(node, 'lineno', '?')}: {message}")

    # -- imports -------------------------------------------------------------

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.aliases[(alias.asname or alias.name).split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]
            if alias.name.split(".")[0] == "ctypes":
                self.flag(node, "imports ctypes, which can rewrite the interpreter's memory")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            if node.module:
                self.aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        if node.module and node.module.split(".")[0] == "ctypes":
            self.flag(node, "imports ctypes, which can rewrite the interpreter's memory")

    # -- replacing things ------------------------------------------------------

    def _targets(self, node: ast.AST, targets: list[ast.AST], verb: str) -> None:
        for target in targets:
            for element in (target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]):
                if isinstance(element, ast.Name) and element.id in ("check", "run_checks"):
                    self.flag(node, f"{verb} `{element.id}`, the name the test cells use")
                elif isinstance(element, (ast.Attribute, ast.Subscript)):
                    path = self.dotted(element)
                    if self.protected(path) or (path and path.split(".")[-1] in KERNEL_LISTS):
                        what = path + ("[...]" if isinstance(element, ast.Subscript) else "")
                        self.flag(node, f"{verb} `{what}`")
                    elif isinstance(element, ast.Attribute) and element.attr in ("__eq__", "__ne__", "__class__"):
                        self.flag(node, f"{verb} `{element.attr}` of an object")
        self.generic_visit(node)

    def visit_Assign(self, node: ast.Assign) -> None:
        value = self.dotted(node.value) if isinstance(node.value, (ast.Call, ast.Attribute, ast.Name)) else None
        if value and (value.startswith("get_ipython()") or value.split(".")[0] in PROTECTED):
            for target in node.targets:  # `ip = get_ipython()`, `T = torch`: follow the alias
                if isinstance(target, ast.Name):
                    self.aliases[target.id] = value
        self._targets(node, node.targets, "replaces")

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._targets(node, [node.target], "changes")

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._targets(node, [node.target], "replaces")

    def visit_Delete(self, node: ast.Delete) -> None:
        self._targets(node, node.targets, "deletes")

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.id if isinstance(func, ast.Name) else None
        if name in ("setattr", "delattr") and node.args:
            path = self.dotted(node.args[0])
            if self.protected(path):
                self.flag(node, f"calls {name} on `{path}`")
        elif name in ("exec", "eval", "compile") and node.args and not isinstance(node.args[0], ast.Constant):
            self.flag(node, f"runs code built at run time with {name}(), which this scan cannot read")
        elif isinstance(func, ast.Attribute):
            path = self.dotted(func)
            if path and path.startswith("get_ipython()") and func.attr in KERNEL_HOOKS:
                self.flag(node, f"changes the kernel with `{path}(...)`")
            elif path and func.attr in ("append", "insert", "extend") and path.split(".")[-2:-1] and \
                    path.split(".")[-2] in KERNEL_LISTS:
                self.flag(node, f"adds a transformer to the kernel with `{path}(...)`")
            elif path in ("sys.settrace", "sys.setprofile", "threading.settrace", "importlib.reload"):
                self.flag(node, f"calls `{path}`")
            elif path in ("os.kill", "os.killpg", "signal.pthread_kill"):
                self.flag(node, f"sends a signal to a process with `{path}`")
            elif path in ("gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys._getframe",
                          "inspect.currentframe", "inspect.stack"):
                self.flag(node, f"calls `{path}`, which reaches the checks' own objects while they run")
            elif path and func.attr in MUTATORS and (path.startswith("sys.modules.") or
                                                     path.split(".")[0] in ("autograder", "builtins")):
                self.flag(node, f"changes `{path.rsplit('.', 1)[0]}` with `.{func.attr}(...)`")
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        path = self.dotted(node)
        if path and path.startswith("autograder.") and any(
                part.startswith("_") and not part.startswith("__") for part in path.split(".")[1:]):
            message = f"reaches into the autograder's internals (`{path}`)"
            if not any(message in found for found in self.found):
                self.flag(node, message)
        self.generic_visit(node)

    # -- objects that always agree --------------------------------------------------

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        if node.name in ("check", "run_checks") and node.col_offset == 0:
            self.flag(node, f"defines its own `{node.name}`, the name the test cells use")
        constant = _constant_return(node)
        if node.name == "__eq__" and constant is True:
            self.flag(node, "defines __eq__ that always returns True (an object equal to anything)")
        elif node.name == "__ne__" and constant is False:
            self.flag(node, "defines __ne__ that always returns False")
        elif node.name in ("__instancecheck__", "__subclasscheck__"):
            self.flag(node, f"defines {node.name}, which changes what isinstance answers")
        elif node.name == "__class__":
            self.flag(node, "fakes __class__, so the object claims to be of another type")
        elif node.name == "__torch_function__":
            self.flag(node, "defines __torch_function__, which intercepts torch's functions on its objects")
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for statement in node.body:
            if isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Lambda):
                names = [t.id for t in statement.targets if isinstance(t, ast.Name)]
                body = statement.value.body
                if "__eq__" in names and isinstance(body, ast.Constant) and body.value is True:
                    self.flag(statement, "defines __eq__ that always returns True (an object equal to anything)")
                if "__ne__" in names and isinstance(body, ast.Constant) and body.value is False:
                    self.flag(statement, "defines __ne__ that always returns False")
        self.generic_visit(node)


def _constant_return(node: ast.FunctionDef):
    body = [s for s in node.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    if len(body) == 1 and isinstance(body[0], ast.Return) and isinstance(body[0].value, ast.Constant):
        return body[0].value.value
    return None


def scan_notebook(nb: NotebookNode, skip_ids: set[str] = frozenset()) -> list[str]:
    """What looks like tampering, as ``cell N, line M: ...``; cells whose grade id is in
    ``skip_ids`` (the test cells, which nbgrader restores anyway) are not read."""
    found: list[str] = []
    aliases: dict[str, str] = {}
    for index, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code":
            continue
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") in skip_ids:
            continue
        try:
            tree = parse_source(_python(cell.get("source", "")))
        except SyntaxError:
            continue
        scanner = _Scanner(aliases)
        scanner.visit(tree)
        found.extend(f"cell {index + 1}, {message}" for message in scanner.found)
    return found


def defined_names(source: str) -> set[str]:
    """Names a cell defines at its top level (functions, classes, assignments)."""
    try:
        tree = parse_source(_python(source))
    except SyntaxError:
        return set()
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return names


def runs_unreadable_code(source: str) -> list[str]:
    """The scan's findings of code built at run time (exec / eval / compile of what it cannot read)."""
    try:
        tree = parse_source(_python(source))
    except SyntaxError:
        return []
    scanner = _Scanner({})
    scanner.visit(tree)
    return [found for found in scanner.found if "code built at run time" in found]
