"""Grade a whole class with nbgrader: in parallel, safely, resumably (``autograder grade``).

The steps live in small modules composed by :mod:`autograder.grading.pipeline`:
``layout`` (find the submissions), ``collect`` (into nbgrader's submitted/),
``tamper`` (read the code for tricks), ``nbgrader_steps`` (nbgrader's
autograde, feedback and export), ``executor`` / ``kernels`` / ``forkserver`` /
``guard`` (run each notebook in a warm, bounded, guarded kernel) and
``report`` (the CSVs and the report). ``sample`` generates a synthetic class.
"""
