"""torch.nn, step by step: the checks that grade the course's notebooks.

In a notebook's test cell::

    from autograder import check
    check("init_params")
"""

from autograder.notebook import ChecksFailed, check
from autograder.results import CheckFailure, CheckResult
from autograder.runner import run_checks
from autograder.demo import skip_if_unfinished

__all__ = ["check", "run_checks", "skip_if_unfinished", "ChecksFailed", "CheckFailure", "CheckResult"]
