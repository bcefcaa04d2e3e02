"""Layer 1, the checks: for each exercise, the rules its text states, each with a planted mistake that
breaks exactly it (caught by that rule's check, with that rule's diagnosis), and correct answers written
another way that every check accepts. These run the checks in this process, against the instructor's
solutions with one piece swapped (support.solution_namespace)."""


_AUDITS: dict = {}


def pytest_runtest_logreport(report):
    """Keep each notebook's audit as test_rules recorded it (reports reach here from xdist's workers too)."""
    for name, value in getattr(report, "user_properties", ()):
        if name == "audit" and report.when == "call":
            _AUDITS[value["notebook"]] = value


def pytest_terminal_summary(terminalreporter):
    """The audit's counts per notebook, whenever test_rules ran (README: "Every rule is checked")."""
    if _AUDITS:
        from autograder.cases import Audit, table

        terminalreporter.write_sep("-", "rules stated, checked, planted mistakes caught, alternatives accepted")
        terminalreporter.write_line(table([Audit(**_AUDITS[name]) for name in sorted(_AUDITS)]))


# The checks run here as the judge runs them while grading: a check that changes PyTorch's global state
# in its own process (instead of the learner's) fails loudly (autograder.learner.refuse_global_changes).
from autograder.learner import refuse_global_changes  # noqa: E402

refuse_global_changes()
