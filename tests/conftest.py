"""The course's tests, as a layered specification:

    checks/    each exercise's rules: planted mistakes caught by the rule they break, alternatives accepted
    run/       running a notebook for a learner: autograder check, pytest --nbcheck, the runner's faults
    grading/   grading a class: nbgrader's steps, confinement, the judge, clusters, resuming
    course/    the course as a whole: structure, release, pack, pinned environment, benchmarks
    browser/   JupyterLab in a real browser
    hub/       a class on JupyterHub through nbgrader's exchange

What several layers share lives in support.py (importable as ``support``).
"""
