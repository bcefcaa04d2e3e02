"""Honest work gets every point through the real grader, wherever it runs: each notebook's solution,
typed into the release, graded unconfined (--no-sandbox) and on a Dask cluster of two workers (the
alternatives are graded confined in test_honest_work.py; a file of its own so that pytest-xdist runs
the two at once)."""

from __future__ import annotations

import pytest

from test_honest_work import CONFINED, NOTEBOOKS, assert_full_marks_and_nothing_flagged, grade, submissions

pytestmark = [pytest.mark.slow]


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_the_solution_gets_full_marks_unconfined(notebook, tmp_path):
    result = grade(tmp_path, notebook, submissions(notebook, with_alternatives=False), sandbox=False)
    assert_full_marks_and_nothing_flagged(result, "--no-sandbox")


@pytest.fixture(scope="module")
def dask_scheduler():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as local:
        yield local.scheduler_address


@CONFINED
@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_the_solution_gets_full_marks_on_a_cluster(notebook, tmp_path, dask_scheduler):
    result = grade(tmp_path, notebook, submissions(notebook, with_alternatives=False), scheduler=dask_scheduler)
    assert_full_marks_and_nothing_flagged(result, "--cluster 2")
