"""Grade a whole class with nbgrader: in parallel, safely, resumably (``autograder grade``).

The steps live in small modules composed by :mod:`autograder.grading.pipeline`:
``layout`` (find the submissions), ``collect`` (into nbgrader's submitted/),
``tamper`` (read the code for tricks), ``submission`` (grade one submission),
``nbgrader_steps`` (nbgrader's autograde, feedback and export, and the
gradebook rows), ``cluster`` (the same on Dask workers), ``kernels`` / ``forkserver`` / ``guard``
(warm, bounded, guarded kernels for the course's executor,
:mod:`autograder.preprocessors`) and ``report`` (the CSVs and the report).
``sample`` generates a synthetic class. A notebook runs, and its verdicts are
made, by the same code as a learner's ``autograder check``
(:mod:`autograder.execute`, :mod:`autograder.verdicts`).
"""
