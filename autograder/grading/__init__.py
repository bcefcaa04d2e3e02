"""Grade a whole class with nbgrader: in parallel, safely, resumably (``autograder grade``).

The steps live in small modules composed by :mod:`autograder.grading.pipeline`:
``discover`` (find the submissions), ``collect`` (into nbgrader's submitted/),
``backend`` (where they are graded: here, or on Dask workers with ``cluster``
and ``worker``), ``submission`` (grade one submission, into one ``result``),
``tamper`` (read the code for tricks), ``nbgrader_steps`` (nbgrader's autograde,
feedback and export, and the gradebook rows), ``kernels`` / ``forkserver`` /
``sandbox`` / ``guard`` (warm, bounded, confined, guarded kernels for the course's
executor, :mod:`autograder.preprocessors`), ``state`` (what a later run resumes
from) and ``report`` (the CSVs and the report). ``sample`` generates a synthetic
class. A notebook runs, and its verdicts are made, by the same code as a
learner's ``autograder check`` (:mod:`autograder.execute`,
:mod:`autograder.verdicts`, :mod:`autograder.faults`).
"""
