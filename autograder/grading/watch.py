"""What the kernel's guard found, cell by cell, as evidence: what costs points, and what is only flagged.

:class:`Watch` is a run observer (:class:`~autograder.preprocessors.RunObserver`) for grading. It starts
the guard (:mod:`.guard`) in each kernel before the first cell, and after every cell asks it what was
refused or changed meanwhile, naming the cell and line of the learner's code that did it:

- while a test cell runs (the judge calling the learner's code), anything refused scores that test zero
  (``RunLog.integrity``, and an error in the cell that says why);
- in a cell that defines an exercise, code built at run time (found by the guard, or already by the
  static scan, :mod:`.tamper`) scores that exercise's tests zero (``RunLog.zeroed``);
- anything else is flagged for the instructor (``RunLog.blocked``) and costs nothing: the verdicts are
  the judge's, made from observations, so a patched torch in the kernel changes none of them.

A guard that does not answer (``sys.audit`` replaced, the kernel's machinery changed) is found too.
"""

from __future__ import annotations

import ast
import json
import secrets

from autograder.cells import error_output, grade_id, is_solution_cell, is_test_cell, parse_source
from autograder.grading import tamper
from autograder.grading.recovery import defined_exercises, exercises_of
from autograder.preprocessors import RunCells, RunObserver
from autograder.verdicts import INTEGRITY

GUARD = "autograder.grading.guard"
_INSTALL = "__import__({guard!r}, fromlist=['_']).install({folder!r}, {token!r})"
_CHANGES = "__import__({guard!r}, fromlist=['_']).changes()"
_REPORT = "__import__('sys').audit('autograder.guard.report', {token!r})"


class Watch(RunObserver):
    def start(self, run: RunCells, nb) -> None:
        self.token = secrets.token_hex(16)  # only the grader and the kernel's audit hook know it
        self.installed_on = 0  # the kernel (run.kernel_starts) the guard was installed in
        self.exercises = exercises_of(nb)
        self.cell_files: dict[str, int] | None = None
        self.seen: set[str] = set()  # findings already flagged: a change made once is reported once
        for index, cell in enumerate(nb.cells):
            if is_solution_cell(cell) or not is_test_cell(cell):
                for exercise in defined_exercises(cell, self.exercises):
                    found = tamper.runs_unreadable_code(cell.source)
                    if found:
                        run.log_.zeroed.setdefault(exercise, (
                            f"{run.label(index, nb)}, which defines {exercise}, {found[0].split(': ', 1)[-1]}", INTEGRITY))

    def before_cell(self, run: RunCells, cell, index: int) -> str | None:
        if cell.cell_type == "code" and cell.source.strip() and self.installed_on != run.kernel_starts:
            self.installed_on = run.kernel_starts
            reply = run.silent(expression=_INSTALL.format(guard=GUARD, folder=str(run.exchange_folder),
                                                          token=self.token))
            value = reply.get("user_expressions", {}).get("value", {})
            if value.get("status") != "ok":
                run.log_.blocked.append(f"the grading guard could not start ({value.get('ename', 'no reply')}: "
                                        f"{value.get('evalue', '')})")
        return None

    def after_cell(self, run: RunCells, cell, index: int, mode: str | None) -> None:
        if cell.cell_type != "code" or not cell.source.strip():
            return
        reply = run.silent(expressions={"changes": _CHANGES.format(guard=GUARD), "report": _REPORT.format(token=self.token)})
        found = self._changes(reply) + self._refusals(run, reply)
        log, label = run.log_, run.label(index)
        log.journal.append(f"{label}{' (run again after a dead kernel)' if mode == 'quiet' else ''}: guard: "
                           + ("; ".join(found) if found else "nothing refused, nothing changed"))
        if mode == "quiet" or not found:  # a cell run again for its state was reported on the first time
            return
        found = list(dict.fromkeys(found))
        if is_test_cell(cell):
            why = "; ".join(found[:3]) + (f"; and {len(found) - 3} more" if len(found) > 3 else "")
            log.integrity.append(f"{grade_id(cell)}: tampering while this test ran: {why}")
            cell.outputs.append(error_output(INTEGRITY, f"tampering while this test ran ({why}); it scores zero"))
            return
        runtime = [f for f in found if "built code" in f or "loaded code" in f or "built a code" in f]
        for exercise in defined_exercises(cell, self.exercises) if runtime else ():
            log.zeroed.setdefault(exercise, (f"{label}, which defines {exercise}, {runtime[0]}", INTEGRITY))
        new = [what for what in found if what not in self.seen]
        self.seen.update(new)
        log.blocked.extend(f"{label}: {what}" for what in new)

    def _changes(self, reply: dict) -> list[str]:
        value = reply.get("user_expressions", {}).get("changes", {})
        if value.get("status") != "ok":
            return [f"the grading guard did not answer ({value.get('ename', 'no reply')})"]
        try:
            found = json.loads(ast.literal_eval(parse_source(value["data"]["text/plain"], mode="eval")))
        except (KeyError, ValueError, SyntaxError, TypeError):
            return ["the grading guard's answer was changed"]
        return [f"{item} (put back)" for item in found if isinstance(item, str)]

    def _refusals(self, run: RunCells, reply: dict) -> list[str]:
        value = reply.get("user_expressions", {}).get("report", {})
        if value.get("status") != "error" or value.get("ename") != "GuardReport":
            return ["the grading guard's audit hook did not answer (sys.audit or the kernel was changed)"]
        try:
            items = json.loads(value.get("evalue", "[]"))
        except ValueError:
            return ["the grading guard's audit hook gave an unreadable answer"]
        found = []
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict):
                where = self._where(run, item)
                found.append(f"{item.get('what', '?')}{where} (refused)")
        return found

    def _where(self, run: RunCells, item: dict) -> str:
        """Where in the learner's notebook a refused operation was asked for: its cell and line."""
        if self.cell_files is None:
            from ipykernel.compiler import get_tmp_hash_seed, murmur2_x86

            self.cell_files = {f"{murmur2_x86(cell.source, get_tmp_hash_seed())}.py": i
                               for i, cell in enumerate(run.nb.cells) if cell.cell_type == "code"}
        index = self.cell_files.get(str(item.get("file")))
        if index is None:
            return ""
        function = item.get("function")
        inside = f" in `{function}`" if function and function != "<module>" else ""
        return f", at line {item.get('line')} of {run.label(index)}{inside}"
