"""The course's tests, as a layered specification:

    checks/    each exercise's rules: planted mistakes caught by the rule they break, alternatives accepted
    run/       running a notebook for a learner: autograder check, pytest --nbcheck, the runner's faults
    grading/   grading a class: nbgrader's steps, confinement, the judge, clusters, resuming
    course/    the course as a whole: structure, release, pack, pinned environment, benchmarks
    browser/   JupyterLab in a real browser
    hub/       a class on JupyterHub through nbgrader's exchange

What several layers share lives in support.py (importable as ``support``).
"""


# Here, not in checks/conftest.py: under pytest-xdist only this conftest is loaded where the summary
# is written (the controller), and test_rules' audits reach it through each report's user_properties.
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
