"""The parts of cluster grading that need no cluster: what travels to workers and what never does,
the archive format, the checks of a worker's environment, and clear errors. (A LocalCluster grades
a class in tests/grading/test_grading.py.)"""

import io
import os
import pickle
import re
import shutil
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder.cells import is_test_cell
from autograder.grading import cluster
from autograder.grading.cluster import ClusterError, unfitness, unzip_into, zip_folder
from support import course_copy

A = "02_manual_model"


def test_a_folder_travels_with_its_files_and_permissions_but_not_its_links(tmp_path):
    folder = tmp_path / "work"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "x.csv").write_text("1,2\n")
    (folder / "nb.ipynb").write_text("{}")
    os.chmod(folder / "nb.ipynb", 0o444)
    (folder / "secret").symlink_to("/etc/hostname")
    out = tmp_path / "out"
    unzip_into(zip_folder(folder), out)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == ["data", "data/x.csv", "nb.ipynb"]
    assert (out / "data" / "x.csv").read_text() == "1,2\n"
    assert (out / "nb.ipynb").stat().st_mode & 0o777 == 0o444


@pytest.mark.parametrize("name", ["../escaped.txt", "a/../../escaped.txt", "/tmp/absolute.txt"])
def test_an_archive_cannot_write_outside_its_folder(tmp_path, name):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, "gotcha")
    with pytest.raises(ValueError, match="outside"):
        unzip_into(buffer.getvalue(), tmp_path / "in")
    assert not (tmp_path / "escaped.txt").exists() and not Path("/tmp/absolute.txt").exists()


def test_a_worker_that_would_grade_differently_is_named_with_the_reason():
    expected = {"code": "abc", "torch": "2.13.0"}
    assert unfitness({"code": "abc", "torch": "2.13.0", "problem": ""}, expected) == []
    reasons = unfitness({"code": "old", "torch": "2.12.0", "problem": "bwrap was not found"}, expected)
    assert len(reasons) == 3
    assert "cannot confine" in reasons[0] and "bwrap was not found" in reasons[0]
    assert "autograder code" in reasons[1] and "old" in reasons[1] and "abc" in reasons[1]
    assert "torch version" in reasons[2] and "2.12.0" in reasons[2]


def test_the_coordinator_refuses_unfit_workers_before_grading_anything():
    class Client:
        closed = False

        def run(self, function, *args):
            assert function is cluster.check_worker
            return {"tcp://10.0.0.7:4000": {"code": "stale", "torch": "2.13.0", "problem": ""},
                    "tcp://10.0.0.8:4000": {**cluster.expected_environment(), "problem": ""}}

        def close(self):
            self.closed = True

    grid = cluster.Cluster.__new__(cluster.Cluster)
    grid.client, grid.local, grid.sandbox, grid.plugin = Client(), None, True, None
    client = grid.client
    with pytest.raises(ClusterError, match=r"10\.0\.0\.7.*autograder code") as error:
        grid._verify()
    assert "10.0.0.8" not in str(error.value) and client.closed


def test_an_unreachable_scheduler_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", 2)
    with pytest.raises(ClusterError, match=r"cannot grade on the Dask cluster at tcp://127\.0\.0\.1:9 .*scheduler"):
        cluster.Cluster("tcp://127.0.0.1:9", sandbox=True, preload=[])


def test_the_command_line_takes_a_number_of_local_workers(capsys):
    from autograder.cli import build_parser

    parser = build_parser()
    base = ["grade", A, "--submissions", "x"]
    assert parser.parse_args([*base, "--cluster", "local:3"]).cluster == 3
    assert parser.parse_args([*base, "--cluster", "2"]).cluster == 2
    assert parser.parse_args([*base, "--scheduler", "tcp://h:8786"]).scheduler == "tcp://h:8786"
    for wrong in (["--cluster", "0"], ["--cluster", "many"], ["--cluster", "2", "--scheduler", "tcp://h:8786"]):
        with pytest.raises(SystemExit) as stop:
            parser.parse_args([*base, *wrong])
        assert stop.value.code == 2
    assert "local:N" in capsys.readouterr().err


@pytest.mark.slow
def test_what_a_worker_receives_holds_no_solution_and_no_course_path(tmp_path):
    """The context every worker gets (and a job) name nothing of the course folder and carry no
    line of a solution: only the test cells, the release and the assignment's gradebook entries."""
    from autograder.course import working_directory
    from autograder.grading import nbgrader_steps
    from autograder.grading.cluster import DaskBackend
    from autograder.grading.pipeline import Options, _Grader

    course = course_copy(tmp_path / "course", A)
    course_dir = course.root

    class Client:
        def scatter(self, value, **kw):
            return value

        def register_plugin(self, plugin, name=None):
            self.plugin = pickle.dumps(plugin)

        def nthreads(self):
            return {"tcp://10.0.0.7:4000": 1}

        def unregister_worker_plugin(self, name):
            pass

        def close(self):
            pass

    grid = cluster.Cluster.__new__(cluster.Cluster)
    grid.client, grid.local, grid.sandbox, grid.preload, grid.context, grid.plugin = Client(), None, True, (), None, None
    backend = DaskBackend("tcp://10.0.0.7:8786", True, tmp_path / "scratch", workers=lambda *args: grid)
    grader = _Grader(Options(A, tmp_path, course_dir), course, tmp_path / "out", tmp_path / "scratch", backend)
    with nbgrader_steps.environment(), working_directory(course_dir):
        grader.open(1)
        grader.register()
    sent = pickle.dumps(grid.context) + grid.client.plugin

    source = nbformat.read(course.source_notebook(A), as_version=4)
    answers = [line.strip() for cell in source.cells if cell.cell_type == "code" and not is_test_cell(cell)
               for line in re.findall(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", cell.source, re.S)
               for line in line.splitlines() if len(line.strip()) > 12]
    release = course.release_notebook(A).read_text(encoding="utf-8")
    answers = [line for line in answers if line not in release and line.encode() not in pickle.dumps(release)]
    assert len(answers) > 10
    leaked = [line for line in answers if line.encode() in sent]
    assert leaked == [], f"solution lines sent to workers: {leaked[:3]}"
    assert str(course_dir).encode() not in sent and str(tmp_path).encode() not in sent
    assert grid.context.assignment.source.cells and all(is_test_cell(c) for c in grid.context.assignment.source.cells)

    submitted = course.assignment_folder("submitted", A, "s1")
    submitted.mkdir(parents=True)
    shutil.copy(course.release_notebook(A), submitted)
    job = cluster.Job("s1", zip_folder(submitted), "", ())
    assert str(course_dir).encode() not in pickle.dumps(job)
    backend.close()


@pytest.mark.slow
def test_a_local_cluster_starts_with_checked_workers_and_closes():
    grid = cluster.Cluster("local:1", sandbox=True, preload=[])
    try:
        assert grid.threads == 1 and grid.description == "a Dask cluster of 1 worker"
        assert grid.local is not None and grid.client.scheduler_info()["workers"]
    finally:
        grid.close()
    assert grid.client is None and grid.local is None
