"""Every rule an exercise's text states is tied to a check, mechanically.

For each notebook, autograder.cases.audit reads the release's exercise statements (autograder.rules):
every bullet of a statement is a rule with an id, or advice; every rule is enforced by a check that
names it; every check names a rule of its text; every rule has a planted mistake that breaks exactly it
and is caught by that rule's check with its diagnosis; every exercise keeps a correct alternative that
every check, hidden ones included, accepts. The table of counts is printed at the end of the run.
"""

import dataclasses

import pytest

from autograder import cases, registry

AUDITS: dict = {}


@pytest.mark.parametrize("notebook", registry.notebooks())
def test_every_stated_rule_has_a_check_and_a_planted_mistake_caught_by_that_check(notebook, record_property):
    assert notebook in cases.notebooks(), f"{notebook} has no cases (autograder/cases/{notebook}.py)"
    report = AUDITS[notebook] = cases.audit(notebook)
    record_property("audit", dataclasses.asdict(report))  # to the terminal summary, from an xdist worker too
    assert not report.problems, "\n".join(report.problems)
