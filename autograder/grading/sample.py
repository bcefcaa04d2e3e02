"""A synthetic class: submissions of every kind an instructor meets, built from the course's own notebooks.

Every kind starts from the student release and the instructor's solutions of
the assignment, so the generator works for any assignment of the course:

- realistic work: ``correct``, ``blank``, ``partial`` (the first half of the
  exercises done), typical mistakes (for ``02_manual_model`` the classic ones;
  for any other assignment each exercise answered with the wrong value), a
  correct answer that raises PyTorch ``warnings``, a ``syntax_error``, an
  ``edited_test_cell`` and ``deleted_test_cell``;
- faults (``pathological``): an ``endless_loop``, a ``stubborn_loop`` that
  ignores interrupts, a kernel that dies (``os_exit``, ``segfault``), a
  ``memory_bomb``, ``flood_output`` (megabytes of prints), a ``renamed``
  notebook, a ``missing`` one, ``invalid_json``, an ``empty_file``, a
  ``foreign_notebook`` of no assignment, a ``deleted_exercise`` (solution and
  tests gone), ``kill_parent`` (kills the process that started its kernel:
  under plain nbgrader, nbgrader itself);
- tampering: ``tamper_check`` (replaces ``autograder.check``),
  ``tamper_registry`` (empties the registered checks), ``tamper_torch``
  (``torch.allclose`` always true, with wrong answers), ``tamper_traceback``
  (hides error display) and ``always_equal`` (returns an object equal to
  anything).

Plain ``nbgrader autograde`` handles the ``REALISTIC`` kinds the same way:
those are the ones the equality test and the benchmark compare.
"""

from __future__ import annotations

import copy
import re
import shutil
import zipfile
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from autograder.cells import grade_id, is_test_cell, nbgrader as _meta

REALISTIC = ["correct", "blank", "partial", "mistake_1", "mistake_2", "mistake_3", "warnings", "syntax_error",
             "edited_test_cell", "deleted_test_cell"]
FAULTS = ["endless_loop", "stubborn_loop", "os_exit", "segfault", "memory_bomb", "flood_output", "renamed",
          "missing", "invalid_json", "empty_file", "foreign_notebook", "deleted_exercise", "kill_parent"]
TAMPERING = ["tamper_check", "tamper_registry", "tamper_torch", "tamper_traceback", "always_equal"]
KINDS = REALISTIC + FAULTS + TAMPERING

# Typical mistakes of 02_manual_model, in the learners' own words (see its check tests for more).
MISTAKES = {
    "02_manual_model": [
        {"bce_loss": '''def bce_loss(probs, targets, eps=1e-7):
    p = probs.clamp(eps, 1 - eps)
    return -(targets * torch.log(p) + (1 - targets) * torch.log(1 - p)).mean()
'''},
        {"forward": '''def forward(X, W, b):
    return X @ W + b
'''},
        {"sgd_step": '''def sgd_step(params, lr):
    with torch.no_grad():
        for p in params:
            p -= lr * p.grad
''', "init_params": '''def init_params(num_features, seed=0):
    generator = torch.Generator().manual_seed(seed)
    W = torch.rand(1, num_features, generator=generator).requires_grad_()
    b = torch.zeros(1, requires_grad=True)
    return W, b
'''},
    ],
}


def _strip_markers(source: str) -> str:
    return "\n".join(line for line in source.splitlines()
                     if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line) + "\n"


class Assignment:
    """The release and the solutions of one assignment, and how to fill one in."""

    def __init__(self, course: Path, assignment: str):
        from autograder.course import Course

        self.course = Course.load(course)
        self.name = assignment
        source_path = self.course.source_notebook(assignment)
        self.notebook = source_path.stem
        release_path = self.course.release_notebook(assignment)
        if not release_path.exists():
            raise FileNotFoundError(f"{release_path} does not exist: release the assignment first (make release)")
        self.release = nbformat.read(release_path, as_version=4)
        source = nbformat.read(source_path, as_version=4)
        self.solutions = {_meta(c)["grade_id"]: _strip_markers(c.source) for c in source.cells
                          if _meta(c).get("solution") and c.cell_type == "code"}
        self.exercises = [gid for gid in (_meta(c).get("grade_id") for c in self.release.cells
                                           if _meta(c).get("solution")) if gid in self.solutions]

    def filled(self, answers: dict[str, str] | None = None, solved: list[str] | None = None) -> NotebookNode:
        """The release with the ``solved`` exercises (default all) answered by the solution,
        and ``answers`` put over them."""
        nb = copy.deepcopy(self.release)
        chosen = {gid: self.solutions[gid] for gid in (self.exercises if solved is None else solved)}
        chosen.update(answers or {})
        for cell in nb.cells:
            gid = _meta(cell).get("grade_id")
            if _meta(cell).get("solution") and gid in chosen:
                cell.source = chosen[gid]
        return nb

    def index_of(self, nb: NotebookNode, grade_id: str) -> int:
        return next(i for i, c in enumerate(nb.cells) if _meta(c).get("grade_id") == grade_id)

    def after_tests_of(self, nb: NotebookNode, exercise: str) -> int:
        """The position just after the last test cell of ``exercise``."""
        last = self.index_of(nb, exercise)
        for i, cell in enumerate(nb.cells):
            gid = _meta(cell).get("grade_id", "")
            if is_test_cell(cell) and (gid == f"test_{exercise}" or gid.startswith(f"test_{exercise}_")):
                last = i
        return last + 1

    def mistakes(self) -> list[dict[str, str]]:
        if self.name in MISTAKES:
            return MISTAKES[self.name]
        return [{ex: self._wrong_value(ex)} for ex in self.exercises[:3]]

    def _wrong_value(self, exercise: str) -> str:
        """A generic mistake: the exercise keeps its signature and returns None."""
        header = re.search(rf"^(def {re.escape(exercise)}\(.*?\):)", self.solutions[exercise], re.M | re.S)
        if header:
            return f"{header.group(1)}\n    return None\n"
        return self.solutions[exercise].replace("return", "return None  #", 1)


def _code(source: str) -> NotebookNode:
    return nbformat.v4.new_code_cell(source)


def _filled(a: Assignment, first: str, second: str) -> NotebookNode:
    return a.filled()


def _blank(a: Assignment, first: str, second: str) -> NotebookNode:
    return copy.deepcopy(a.release)


def _partial(a: Assignment, first: str, second: str) -> NotebookNode:
    return a.filled(solved=a.exercises[: max(1, len(a.exercises) // 2)])


def _mistake(number: int):
    def build(a: Assignment, first: str, second: str) -> NotebookNode:
        mistakes = a.mistakes()
        return a.filled(mistakes[(number - 1) % len(mistakes)])
    return build


def _warnings(a: Assignment, first: str, second: str) -> NotebookNode:
    nb = a.filled()
    nb.cells.insert(a.after_tests_of(nb, first), _code(
        "import torch\n"
        "_copy = torch.tensor(torch.ones(3))  # PyTorch warns: copy-construct with clone().detach()\n"))
    nb.cells.insert(a.index_of(nb, first) + 1, _code(
        f"import torch\n_{first}_answer = {first}\n\n\ndef {first}(*args, **kwargs):\n"
        "    torch.tensor(torch.zeros(1))  # the same warning, now while the checks run\n"
        f"    return _{first}_answer(*args, **kwargs)\n"))
    return nb


def _syntax_error(a: Assignment, first: str, second: str) -> NotebookNode:
    return a.filled({second: a.solutions[second].replace("(", "((", 1)})


def _edited_test_cell(a: Assignment, first: str, second: str) -> NotebookNode:
    nb = a.filled()
    next(cell for cell in nb.cells if is_test_cell(cell)).source = "# the test was too strict\npass\n"
    return nb


def _deleted_test_cell(a: Assignment, first: str, second: str) -> NotebookNode:
    nb = a.filled({second: a.solutions[second].replace("return", "return None  #", 1)})
    nb.cells = [c for c in nb.cells if not (is_test_cell(c) and grade_id(c).startswith(f"test_{second}"))]
    return nb


def _deleted_exercise(a: Assignment, first: str, second: str) -> NotebookNode:
    nb = a.filled()
    nb.cells = [c for c in nb.cells if not ((grade_id(c) or "") == first or (grade_id(c) or "").startswith(f"test_{first}"))]
    return nb


def _after_tests(of_second: bool, source: str):
    """Correct work with a cell of ``source`` after the tests of the first (or second) exercise."""
    def build(a: Assignment, first: str, second: str) -> NotebookNode:
        nb = a.filled()
        nb.cells.insert(a.after_tests_of(nb, second if of_second else first), _code(source))
        return nb
    return build


def _before_first(source: str, wrong: bool = False):
    """A cell of ``source`` just before the first exercise, in blank work (or, ``wrong``, in a mistake)."""
    def build(a: Assignment, first: str, second: str) -> NotebookNode:
        nb = a.filled(a.mistakes()[min(1, len(a.mistakes()) - 1)]) if wrong else copy.deepcopy(a.release)
        nb.cells.insert(a.index_of(nb, first), _code(source))
        return nb
    return build


def _always_equal(a: Assignment, first: str, second: str) -> NotebookNode:
    header = re.search(rf"^def {re.escape(first)}\(", a.solutions[first], re.M)
    answer = (f"class _Yes:\n    def __eq__(self, other):\n        return True\n\n\n"
              f"def {first}(*args, **kwargs):\n    return _Yes(), _Yes()\n") if header else a.solutions[first]
    return a.filled({first: answer})


def _file(make):
    """A submission that is a file, not a notebook to fill in: ``make(a)`` gives (name, bytes) or None."""
    def build(a: Assignment, first: str, second: str):
        return make(a)
    build.is_file = True
    return build


# How each kind of submission is made, in the order of REALISTIC, FAULTS and TAMPERING.
BUILDERS = {
    "correct": _filled, "blank": _blank, "partial": _partial,
    "mistake_1": _mistake(1), "mistake_2": _mistake(2), "mistake_3": _mistake(3),
    "warnings": _warnings, "syntax_error": _syntax_error, "edited_test_cell": _edited_test_cell,
    "deleted_test_cell": _deleted_test_cell,
    "endless_loop": _after_tests(False, "while True:\n    pass\n"),
    "stubborn_loop": _after_tests(False, "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)  # ignores the "
                                         "interrupt\nwhile True:\n    pass\n"),
    "os_exit": _after_tests(True, "import os\nos._exit(1)\n"),
    "segfault": _after_tests(True, "import faulthandler\nfaulthandler._sigsegv()  # a crash in native code\n"),
    # The hog lives in a function, so its memory is freed when MemoryError ends it (as with a runaway helper):
    # the later cells get their memory back, whatever they need.
    # The hog lets go of its chunks as the MemoryError leaves it: the traceback IPython keeps would
    # otherwise hold them, and whether later cells found room would depend on the last 128 MB.
    "memory_bomb": _after_tests(False, "def hog():\n    chunks = []\n    try:\n        while True:\n"
                                       "            chunks.append(b'x' * (128 * 2**20))  # 128 MB more, written, each time\n"
                                       "    finally:\n        chunks.clear()\n\n\nhog()\n"),
    "flood_output": _after_tests(False, "for i in range(100_000):\n    print(i, 'all work and no play ' * 4)\n"),
    "renamed": _file(lambda a: (f"{a.notebook} (1) - Copy.ipynb", nbformat.writes(a.filled()).encode())),
    "missing": _file(lambda a: None),
    "invalid_json": _file(lambda a: (f"{a.notebook}.ipynb", nbformat.writes(a.filled()).encode()[:2000])),
    "empty_file": _file(lambda a: (f"{a.notebook}.ipynb", b"")),
    "foreign_notebook": _file(lambda a: (f"{a.notebook}.ipynb", nbformat.writes(
        nbformat.v4.new_notebook(cells=[_code("print('my own project')")])).encode())),
    "deleted_exercise": _deleted_exercise,
    "kill_parent": _after_tests(False, "import os, signal, time\nos.kill(os.getppid(), signal.SIGKILL)  # whoever "
                                       "started this kernel\ntime.sleep(3)\n"),
    "tamper_check": _before_first("import autograder\nautograder.check = lambda *args, **kwargs: None  # every "
                                  "test passes?\nautograder.check.hidden = autograder.check\n"),
    "tamper_registry": _before_first("from autograder import registry\nregistry._load_all()\nfor group in "
                                     "registry._NOTEBOOKS.values():\n    for found in group.by_exercise.values():\n"
                                     "        found.clear()  # no checks, no failures?\n"),
    "tamper_torch": _before_first("import torch\ntorch.allclose = lambda *args, **kwargs: True  # everything is "
                                  "close?\n", wrong=True),
    "tamper_traceback": _before_first("ip = get_ipython()\nip.showtraceback = lambda *args, **kwargs: None  # no "
                                      "errors shown?\n"),
    "always_equal": _always_equal,
}
assert list(BUILDERS) == KINDS, "every kind has one builder, in the order of KINDS"


def build(a: Assignment, kind: str) -> tuple[str, bytes] | None:
    """(file name, bytes) of one submission of ``kind``; None for a student who handed in nothing."""
    builder = BUILDERS.get(kind)
    if builder is None:
        raise ValueError(f"unknown kind of submission {kind!r}; known: {', '.join(KINDS)}")
    first, second = a.exercises[0], a.exercises[min(1, len(a.exercises) - 1)]
    made = builder(a, first, second)
    if getattr(builder, "is_file", False):
        return made
    return f"{a.notebook}.ipynb", nbformat.writes(made).encode()


def write_class(course: Path, assignment: str, to: Path, size: int = 0, kinds: list[str] | None = None,
                layout: str = "folders", pathological: bool = True) -> dict[str, str]:
    """Write a class to ``to`` (a folder; for ``layout='zip'`` also ``to``.zip); return {student id: kind}."""
    a = Assignment(course, assignment)
    kinds = kinds or (KINDS if pathological else REALISTIC)
    count = size or len(kinds)
    to = Path(to)
    folder = to.with_suffix("") if layout == "zip" else to
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    students = {}
    for i in range(count):
        kind = kinds[i % len(kinds)]
        student = f"{kind.replace('_', '-')}-{i + 1:03d}"
        students[student] = kind
        built = build(a, kind)
        if layout == "notebooks":
            if built is not None:
                (folder / f"{student}.ipynb").write_bytes(built[1])
            continue
        home = folder / student / (assignment if layout == "nbgrader" else "")
        home.mkdir(parents=True, exist_ok=True)
        if built is None:
            (home / "notes.txt").write_text("I will hand in the notebook tomorrow.\n")
            continue
        (home / built[0]).write_bytes(built[1])
        if layout == "nbgrader":
            (home / "timestamp.txt").write_text("2025-01-15 12:00:00.000000 UTC\n")
    if layout == "zip":
        archive = folder.with_suffix(".zip")
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    zf.write(path, Path("class") / path.relative_to(folder))
    return students
