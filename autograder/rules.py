"""The rules an exercise's text states, read from the notebook: every rule is a line of its contract list.

Each exercise (contract exercises, challenges, repairs, predictions) is stated in the markdown cell just
above its answer cell. That cell holds one list of what the answer must do or must not do, and every
bullet of it ends with the rule's id::

    * returns the loss of the batch, before the step, as a Python float <!-- rule: float_loss -->

The id is what the checks name (``@checks.of("training_step", rule="float_loss")``), what each planted
mistake says it breaks (:mod:`autograder.cases`), and what ``autograder audit`` counts. A bullet of the
statement that states no rule (a fact, an example) says so with ``<!-- advice -->``. The markers are
HTML comments: JupyterLab does not show them. Hints (``<details>`` blocks) hold no rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from autograder.cells import grade_id, is_solution_cell

_MARKER = re.compile(r"<!--\s*rule:\s*([A-Za-z0-9_]+)\s*-->")
_ADVICE = re.compile(r"<!--\s*advice\s*-->")
_BULLET = re.compile(r"^(?:[*-]|\d+\.)\s+")
_DETAILS = re.compile(r"<details>.*?</details>", re.S)


@dataclass(frozen=True)
class Rule:
    exercise: str
    id: str
    text: str  # the bullet, without its marker

    @property
    def key(self) -> str:
        return f"{self.exercise}.{self.id}"


@dataclass
class Statement:
    """An exercise's text: its rules, and the bullets that carry no marker (each a problem)."""

    exercise: str
    cell: int  # the markdown cell's index
    rules: list[Rule]
    unmarked: list[str]


def _bullets(markdown: str) -> list[str]:
    """The top-level bullets of ``markdown`` outside hints, each with its continuation lines."""
    bullets: list[str] = []
    current: list[str] | None = None
    for line in _DETAILS.sub("", markdown).splitlines():
        if _BULLET.match(line):
            if current:
                bullets.append(" ".join(current))
            current = [_BULLET.sub("", line, count=1).strip()]
        elif current is not None and line.strip() and line.startswith((" ", "\t")):
            current.append(line.strip())
        elif current is not None and line.strip() and not line.startswith("#"):
            current.append(line.strip())  # a lazy continuation line
        else:
            if current:
                bullets.append(" ".join(current))
            current = None
    if current:
        bullets.append(" ".join(current))
    return bullets


def statements(nb, exercises: list[str]) -> dict[str, Statement]:
    """Each exercise's statement: the markdown cell just above its answer cell."""
    found = {}
    for index, cell in enumerate(nb.cells):
        name = grade_id(cell)
        if not (is_solution_cell(cell) and cell.cell_type == "code" and name in exercises):
            continue
        above = next((i for i in range(index - 1, -1, -1) if nb.cells[i].cell_type == "markdown"), None)
        if above is None:
            continue
        rules, unmarked = [], []
        for bullet in _bullets(nb.cells[above].source):
            ids = _MARKER.findall(bullet)
            text = _ADVICE.sub("", _MARKER.sub("", bullet)).strip()
            if ids:
                rules.extend(Rule(name, rule_id, text) for rule_id in ids)
            elif not _ADVICE.search(bullet):
                unmarked.append(text)
        found[name] = Statement(name, above, rules, unmarked)
    return found
