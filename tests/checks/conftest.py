"""Layer 1, the checks: for each exercise, the rules its text states, each with a planted mistake that
breaks exactly it (caught by that rule's check, with that rule's diagnosis), and correct answers written
another way that every check accepts. These run the checks in this process, against the instructor's
solutions with one piece swapped (support.solution_namespace)."""


# The checks run here as the judge runs them while grading: a check that changes PyTorch's global state
# in its own process (instead of the learner's) fails loudly (autograder.learner.refuse_global_changes).
from autograder.learner import refuse_global_changes  # noqa: E402

refuse_global_changes()
