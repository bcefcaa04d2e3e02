"""How much faster `autograder grade` is than plain, sequential `nbgrader autograde`, on the same class.

    make bench-grade                       # 40 submissions of 02_manual_model
    .venv/bin/python benchmarks/bench_grade.py --size 60 --jobs 2 --breakdown

Both graders get the same synthetic class (correct work, blanks, typical
mistakes, warnings, a syntax error, edited and deleted test cells: what plain
nbgrader handles; no endless loops, which would only measure the timeout),
each in its own throwaway copy of the course under build/bench-grade/.

- nbgrader: `nbgrader autograde ASSIGNMENT` once for the whole class (one app
  start, then one kernel per notebook, one after the other), then
  `nbgrader generate_feedback` and `nbgrader export`: the same outputs.
- ours: `autograder grade ASSIGNMENT --jobs N`, which does all of that, every kernel confined with
  bubblewrap; and the same with `--no-sandbox` in a third copy, to show what confinement costs.
- on a cluster: the same class graded on a Dask LocalCluster of 1, 2, ... workers (`--cluster N`),
  with the workers' own time per notebook; then the coordinator alone: a larger class whose outcomes
  the "workers" hand back at once (recorded in the cluster run), to measure how many notebooks a
  second the coordinator puts into the gradebook, autograded/, feedback/ and the exports. From
  the two it works out what 10, 40 and 100 workers would give for 18,000 notebooks.

The scores of every test cell in the two gradebooks must be identical, or the
benchmark fails. It prints both times, the throughput ratio, and the load
average (the machine may be shared: say so when you quote the figures); then,
cell by cell, how long the slowest cells of a correct notebook took in
nbgrader's kernel and in ours (median over the class's correct submissions,
from each cell's recorded timestamps, ``metadata.execution``), and the ratio;
and it ends with one line that says whether grading is faster than nbgrader,
by how much, and how many cells were slower than in nbgrader's kernel.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autograder.course import Course  # noqa: E402
import nbformat  # noqa: E402

from autograder.grading import cluster  # noqa: E402
from autograder.grading.pipeline import Options, grade_class  # noqa: E402
from autograder.grading.sample import REALISTIC, write_class  # noqa: E402
from autograder.release import tool_env  # noqa: E402
from benchmarks.notebooks import cell_times  # noqa: E402

MOOC = 18_000  # 2,000 learners with 9 notebooks each


def make_course(where: Path) -> Path:
    if where.exists():
        shutil.rmtree(where)
    return Course.here(ROOT).copy(where).root


def run(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=tool_env(), capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return elapsed


def cell_scores(course: Path, assignment: str) -> dict[tuple[str, str], float | None]:
    from nbgrader.api import Gradebook

    scores = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for submission in gb.find_assignment(assignment).submissions:
            for notebook in submission.notebooks:
                for grade in notebook.grades:
                    scores[(submission.student.id, grade.name)] = grade.score
    return scores


# A cell counts as slower in our kernel when it took this much longer than in nbgrader's, both in seconds
# and as a fraction (below that, it is the noise of a shared machine).
SLOWER_BY = (0.05, 0.10)


def cell_medians(course: Path, assignment: str, students: list[str]) -> dict[str, float]:
    """Seconds per cell (by grade id, or number), the median over ``students``' autograded notebooks."""
    seconds: dict[str, list[float]] = {}
    for student in students:
        for path in sorted((course / "autograded" / student / assignment).glob("*.ipynb")):
            for name, took in cell_times(nbformat.read(path, as_version=4)):
                seconds.setdefault(name, []).append(took)
    return {name: statistics.median(values) for name, values in seconds.items()}


def compare_cells(theirs: dict[str, float], ours: dict[str, float], shown: int = 8) -> list[str]:
    """A table of the slowest cells in either kernel, with the ratio, and the cells slower in ours."""
    common = [name for name in theirs if name in ours]
    slowest = sorted(common, key=lambda name: -max(theirs[name], ours[name]))[:shown]
    lines = [f"  {'cell':40s} {'nbgrader':>9s} {'ours':>7s} {'ours/nbgrader':>14s}"]
    for name in slowest:
        ratio = ours[name] / theirs[name] if theirs[name] > 0 else float("inf")
        lines.append(f"  {name[:40]:40s} {theirs[name]:8.2f}s {ours[name]:6.2f}s {ratio:13.2f}x"
                     + ("  slower" if slower(theirs[name], ours[name]) else ""))
    total_theirs, total_ours = sum(theirs[n] for n in common), sum(ours[n] for n in common)
    lines.append(f"  {f'all {len(common)} code cells':40s} {total_theirs:8.2f}s {total_ours:6.2f}s "
                 f"{total_ours / total_theirs if total_theirs else float('inf'):13.2f}x")
    return lines


def slower(theirs: float, ours: float) -> bool:
    return ours - theirs > max(SLOWER_BY[0], SLOWER_BY[1] * theirs)


class _Recording(cluster.Cluster):
    """The real cluster, keeping every outcome it hands back (for the coordinator-only run)."""

    outcomes: list = []

    def grade(self, collected, submitted):
        outcome = super().grade(collected, submitted)
        self.outcomes.append((collected.student, outcome))
        return outcome


class _Instant(cluster.Cluster):
    """Workers that answer at once with the recorded outcome of the same submission under another name
    (the same kind is not enough: which exercise a deleted or edited test cell belongs to varies)."""

    outcome_of: dict = {}

    def __init__(self, address, sandbox, preload, log=None):
        self.client = self.local = None

    threads = 32
    description = "recorded outcomes"

    def share(self, course, assignment, folder):
        pass

    def grade(self, collected, submitted):
        return self.outcome_of[collected.student]

    def close(self):
        pass


def replay(klass: Path, to: Path, size: int, assignment: str, recorded: list) -> dict:
    """A class of ``size`` made of the submissions of ``klass`` (nbgrader's layout) under new names, each
    with the outcome the cluster recorded for its original: {new student: outcome}."""
    outcomes = dict(recorded)
    originals = sorted(outcomes)
    replayed = {}
    for i in range(size):
        original = originals[i % len(originals)]
        student = f"{original}-{i:04d}"
        shutil.copytree(klass / original / assignment, to / student / assignment)
        replayed[student] = outcomes[original]
    return replayed


def grade_here(assignment: str, course: Path, submissions: Path, scheduler: str, workers: type) -> float:
    """Grade on Dask through ``workers`` (the Dask client's class: recording, or answering at once)."""
    started = time.perf_counter()
    result = grade_class(Options(assignment, submissions, course, scheduler=scheduler, progress=False),
                         lambda options, scratch: cluster.DaskBackend(scheduler, options.sandbox, scratch, workers))
    failed = [s.student for s in result.students if s.status == "failed"]
    if failed:
        why = [s.faults for s in result.students if s.status == "failed"][0]
        sys.exit(f"grading on {scheduler} failed for {failed[:5]}: {why}")
    return time.perf_counter() - started


def bench_cluster(args, work: Path, students: dict, reference: dict) -> int:
    """The cluster series and the coordinator alone; 0 when every score matched ``reference``."""
    n = len(students)
    per_worker = {}
    for workers in args.cluster:
        course = make_course(work / f"cluster-{workers}")
        _Recording.outcomes = []
        seconds = grade_here(args.assignment, course, work / "class", f"local:{workers}", _Recording)
        if cell_scores(course, args.assignment) != reference:
            print(f"FAIL: on {workers} workers the cell scores differ from local grading")
            return 1
        worker_seconds = sum(o.seconds for _, o in _Recording.outcomes) / len(_Recording.outcomes)
        per_worker[workers] = worker_seconds
        recorded = list(_Recording.outcomes)
        print(f"autograder grade --cluster {workers}: {seconds:.1f} s, {n / seconds * 60:.1f} notebooks/min "
              f"(a worker spends {worker_seconds:.2f} s per notebook: kernel, nbgrader's steps, feedback)")

    runs = {}
    for size in (args.coordinator // 4, args.coordinator):
        klass = work / f"class-{size}"
        _Instant.outcome_of = replay(work / "class", klass, size, args.assignment, recorded)
        course = make_course(work / f"coordinator-{size}")
        runs[size] = grade_here(args.assignment, course, klass, "recorded", _Instant)
    small, large = args.coordinator // 4, args.coordinator
    rate = (large - small) / (runs[large] - runs[small])
    fixed = runs[small] - small / rate
    print(f"coordinator alone (instant workers): {large} notebooks in {runs[large]:.1f} s, {small} in "
          f"{runs[small]:.1f} s: {rate:.1f} notebooks/s once started "
          + (f"({fixed:.1f} s of start-up)" if fixed > 0 else "(start-up too short to tell from the noise)"))

    cost = min(per_worker.values())
    print()
    print(f"worked out for {MOOC:,} notebooks, at {cost:.2f} s of one worker per notebook and at most "
          f"{rate:.1f} notebooks/s through the coordinator:")
    for workers in (10, 40, 100):
        throughput = min(workers / cost, rate)
        bound = "the coordinator" if workers / cost > rate else "the workers"
        print(f"  {workers:>3} workers: {throughput:5.1f} notebooks/s, {MOOC / throughput / 60:6.1f} min "
              f"(bound by {bound})")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--assignment", default="02_manual_model")
    parser.add_argument("--size", type=int, default=40)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--breakdown", action="store_true",
                        help="also time ours with one job, and with cold kernels, to show where the gain comes from")
    parser.add_argument("--cluster", type=lambda text: [int(n) for n in text.split(",")], default=[1, 2],
                        metavar="N1,N2", help="LocalCluster sizes to grade the class on (default 1,2)")
    parser.add_argument("--coordinator", type=int, default=400, metavar="N",
                        help="submissions in the coordinator-only run (default 400)")
    parser.add_argument("--cluster-only", action="store_true",
                        help="skip plain nbgrader and --no-sandbox; compare the cluster with local grading")
    args = parser.parse_args()
    if args.size < 1:
        parser.error("--size must be positive")

    work = ROOT / "build" / "bench-grade"
    work.mkdir(parents=True, exist_ok=True)
    python = sys.executable
    print(f"machine: {os.cpu_count()} cores; load average before: {os.getloadavg()[0]:.1f}")

    ours = make_course(work / "ours")
    unconfined = make_course(work / "ours-unconfined")
    theirs = make_course(work / "nbgrader")
    students = write_class(ROOT, args.assignment, work / "class", size=args.size, kinds=REALISTIC, layout="nbgrader")
    shutil.copytree(work / "class", theirs / "submitted")
    print(f"class: {len(students)} submissions of {args.assignment} ({', '.join(REALISTIC)}, in turn)")

    autograder = str(Path(python).parent / "autograder")
    if args.cluster_only:
        timings = {"ours": run([autograder, "grade", args.assignment, "--course", str(ours), "--submissions",
                                str(work / "class"), "--no-progress", "--jobs", str(args.jobs)], ours)}
        n = len(students)
        print(f"autograder grade --jobs {args.jobs}, confined, here: {timings['ours']:.1f} s, "
              f"{n / timings['ours'] * 60:.1f} notebooks/min")
        status = bench_cluster(args, work, students, cell_scores(ours, args.assignment))
        print(f"load average after: {os.getloadavg()[0]:.1f}")
        return status

    # Registering the assignment in the gradebook is set-up, not grading: done for nbgrader before timing
    # (our command does it inside its timed run).
    run([python, "-m", "nbgrader", "generate_assignment", args.assignment, "--force",
         f"--CourseDirectory.release_directory={work / 'scratch-release'}"], theirs)

    timings = {}
    timings["nbgrader autograde"] = run([python, "-m", "nbgrader", "autograde", args.assignment], theirs)
    print(f"nbgrader autograde (sequential): {timings['nbgrader autograde']:.1f} s")
    timings["nbgrader feedback+export"] = (
        run([python, "-m", "nbgrader", "generate_feedback", args.assignment], theirs)
        + run([python, "-m", "nbgrader", "export", "--to", str(theirs / "grades.csv")], theirs))
    nbgrader_all = timings["nbgrader autograde"] + timings["nbgrader feedback+export"]
    print(f"nbgrader generate_feedback + export: {timings['nbgrader feedback+export']:.1f} s")

    grade = [autograder, "grade", args.assignment, "--course", str(ours), "--submissions", str(work / "class"),
             "--no-progress"]
    timings["ours"] = run([*grade, "--jobs", str(args.jobs)], ours)
    print(f"autograder grade --jobs {args.jobs} (autograde + feedback + export), confined: {timings['ours']:.1f} s")
    loose = [autograder, "grade", args.assignment, "--course", str(unconfined), "--submissions",
             str(work / "class"), "--no-progress", "--no-sandbox", "--jobs", str(args.jobs)]
    timings["unconfined"] = run(loose, unconfined)
    cost = timings["ours"] - timings["unconfined"]
    print(f"the same with --no-sandbox: {timings['unconfined']:.1f} s; confinement costs {cost:+.1f} s "
          f"({cost / timings['unconfined'] * 100:+.0f}%)")

    mine, reference = cell_scores(ours, args.assignment), cell_scores(theirs, args.assignment)
    if cell_scores(unconfined, args.assignment) != mine:
        print("FAIL: the confined and the unconfined run gave different cell scores")
        return 1
    differ = sorted(key for key in set(mine) | set(reference) if mine.get(key) != reference.get(key))
    if differ:
        for key in differ[:20]:
            print(f"  DIFFERENT {key}: autograder {mine.get(key)}, nbgrader {reference.get(key)}")
        print(f"FAIL: {len(differ)} of {len(reference)} cell scores differ")
        return 1
    total = sum(v or 0 for v in reference.values())
    print(f"scores: identical for all {len(reference)} graded cells of {len(students)} students (total {total:g} points)")

    correct = [student for student, kind in students.items() if kind == "correct"]
    theirs_cells = cell_medians(theirs, args.assignment, correct)
    ours_cells = cell_medians(ours, args.assignment, correct)
    print()
    print(f"a correct notebook, cell by cell: seconds in nbgrader's kernel and in ours (confined, --jobs {args.jobs}), "
          f"the median of {len(correct)} correct submission{'s' if len(correct) != 1 else ''}:")
    for line in compare_cells(theirs_cells, ours_cells):
        print(line)
    slower_cells = [name for name in theirs_cells if name in ours_cells and slower(theirs_cells[name], ours_cells[name])]

    if args.breakdown:
        for label, extra in (("one job", ["--jobs", "1"]), ("cold kernels", ["--jobs", str(args.jobs), "--cold-kernels"])):
            timings[label] = run([*grade, "--force", *extra], ours)
            print(f"autograder grade, {label}: {timings[label]:.1f} s")

    n = len(students)
    print()
    print(f"throughput: nbgrader {n / timings['nbgrader autograde'] * 60:.1f} notebooks/min (autograde only), "
          f"{n / nbgrader_all * 60:.1f} (with feedback and export); autograder grade {n / timings['ours'] * 60:.1f}")
    print(f"ratio: {timings['nbgrader autograde'] / timings['ours']:.2f}x against nbgrader autograde alone, "
          f"{nbgrader_all / timings['ours']:.2f}x against autograde + feedback + export")
    print()
    status = bench_cluster(args, work, students, reference) if args.cluster else 0
    print(f"load average after: {os.getloadavg()[0]:.1f} (other work on the machine slows every run)")
    ratio = timings["nbgrader autograde"] / timings["ours"]
    cells = (f"no cell of a correct notebook slower than in nbgrader's kernel" if not slower_cells else
             f"{len(slower_cells)} cell{'s' if len(slower_cells) > 1 else ''} of a correct notebook slower than in "
             f"nbgrader's kernel ({', '.join(slower_cells[:4])}{', ...' if len(slower_cells) > 4 else ''})")
    print(f"{'FASTER' if ratio > 1 else 'SLOWER'} than nbgrader: autograder grade --jobs {args.jobs} (confined, feedback "
          f"and export included) took {timings['ours']:.1f} s for {n} notebooks, {ratio:.2f}x the throughput of "
          f"sequential nbgrader autograde ({timings['nbgrader autograde']:.1f} s) and {nbgrader_all / timings['ours']:.2f}x "
          f"that of its autograde, feedback and export; {cells}")
    return status


if __name__ == "__main__":
    sys.exit(main())
