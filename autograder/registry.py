"""Which checks belong to which exercise, and which exercise to which notebook.

Each notebook of the course has one module in :mod:`autograder.checks`, named
after the notebook (``autograder/checks/02_manual_model.py``). The module
declares its checks with :class:`Checks`::

    checks = Checks("02_manual_model")

    @checks.of("init_params")
    def W_has_one_row_per_feature(init_params, num_features=5, seed=0):
        ...

A check is a plain pytest-style function. Parameters without a default name
objects of the learner's notebook (an exercise, or a helper it relies on);
parameters with a default are inputs, which a hidden test may replace with
fresh values: ``check("init_params", num_features=4, seed=123)``.

Public and instructor checks. The modules in ``autograder/checks/`` are
public: they ship to students (``autograder pack``) and test properties of an
answer, never by computing the answer. Checks that need the answer (a reference
implementation, hidden data) live in ``autograder/checks/instructor/``, one
module per notebook with the same name, declared with
``Checks("02_manual_model", instructor=True)``. They join the notebook's
public checks, run only in hidden test cells, and never leave the course.
Every exercise keeps at least one public check, so that the student pack knows it.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Check:
    notebook: str
    exercise: str
    func: Callable
    needs: tuple[str, ...]
    inputs: tuple[str, ...]
    instructor: bool = False
    rules: tuple[str, ...] = ()  # the rules of the exercise's text this check enforces (ids of its contract list)

    @property
    def name(self) -> str:
        return self.func.__name__


class Checks:
    """The checks of one notebook, in the order they are declared."""

    def __init__(self, notebook: str, *, instructor: bool = False):
        self.notebook = notebook
        self.instructor = instructor
        owner = _NOTEBOOKS.get(notebook)
        if instructor and owner is not None:
            # An instructor module adds its checks to the notebook's own list, after the public ones.
            self.by_exercise = owner.by_exercise
        else:
            self.by_exercise: dict[str, list[Check]] = {}
            _NOTEBOOKS[notebook] = self

    def of(self, exercise: str, rule: str | tuple[str, ...] = ()) -> Callable[[Callable], Callable]:
        """Register a check of ``exercise`` that enforces ``rule`` (one id, or several, of the exercise's
        contract list in the notebook: ``<!-- rule: id -->`` after each bullet)."""
        rules = (rule,) if isinstance(rule, str) else tuple(rule)

        def register(func: Callable) -> Callable:
            params = inspect.signature(func).parameters.values()
            needs = tuple(p.name for p in params if p.default is inspect.Parameter.empty)
            inputs = tuple(p.name for p in params if p.default is not inspect.Parameter.empty)
            check = Check(self.notebook, exercise, func, needs, inputs, self.instructor, rules)
            self.by_exercise.setdefault(exercise, []).append(check)
            return func

        return register

    @property
    def exercises(self) -> list[str]:
        return list(self.by_exercise)


_NOTEBOOKS: dict[str, Checks] = {}


def _modules() -> list[str]:
    """Dotted names of the check modules, public first, then the instructor's (absent from the student pack)."""
    import autograder.checks as package

    names = [f"{package.__name__}.{m.name}" for m in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name)
             if not m.name.startswith("_") and not m.ispkg]
    try:
        instructor = importlib.import_module(f"{package.__name__}.instructor")
    except ModuleNotFoundError:
        return names
    return names + [f"{instructor.__name__}.{m.name}"
                    for m in sorted(pkgutil.iter_modules(instructor.__path__), key=lambda m: m.name)
                    if not m.name.startswith("_") and not m.ispkg]


def _load_all() -> None:
    for name in _modules():
        importlib.import_module(name)


def _load(notebook: str) -> None:
    """Import only the modules of ``notebook``: its public checks, then its instructor checks."""
    for name in _modules():
        if name.rsplit(".", 1)[-1] == notebook:
            importlib.import_module(name)


def notebooks() -> list[str]:
    """The course's notebooks, in teaching order (named by their check modules, which are not imported)."""
    return sorted({name.rsplit(".", 1)[-1] for name in _modules()})


def exercises(notebook: str) -> list[str]:
    _load(notebook)
    if notebook not in _NOTEBOOKS:
        raise KeyError(f"{notebook!r} is not a notebook of this course; the notebooks are {', '.join(notebooks())}")
    return _NOTEBOOKS[notebook].exercises


def checks_of(exercise: str) -> list[Check]:
    _load_all()
    for checks in _NOTEBOOKS.values():
        if exercise in checks.by_exercise:
            return checks.by_exercise[exercise]
    known = ", ".join(name for nb in _NOTEBOOKS.values() for name in nb.exercises)
    raise KeyError(f"{exercise!r} is not an exercise of this course; the exercises are {known}")


def exercise_of_grade_id(grade_id: str, notebook: str | None = None) -> str | None:
    """The exercise a test cell belongs to: ``test_<exercise>`` or ``test_<exercise>_<suffix>``,
    among the exercises of ``notebook`` when given (which imports only that notebook's checks).

    The longest matching exercise name wins, so ``test_TwoLayerModel_shapes``
    belongs to ``TwoLayerModel`` and never to a shorter name that prefixes it.
    """
    if not grade_id.startswith("test_"):
        return None
    rest = grade_id[len("test_"):]
    if notebook in notebooks():
        names = exercises(notebook)
    else:
        _load_all()
        names = [name for nb in _NOTEBOOKS.values() for name in nb.exercises]
    matches = [name for name in names if rest == name or rest.startswith(name + "_")]
    return max(matches, key=len) if matches else None
