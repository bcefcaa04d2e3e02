"""The ``autograder`` command.

    autograder release [--to DIR]     regenerate the student release from solutions/
    autograder workspace [--dir DIR]  copy released notebooks a learner has not started yet into DIR
    autograder check [--strict] [PATH ...]
                                      run notebooks as grading does and say, per exercise, what passes and why not;
                                      without PATH, summarise the workspace (my-work/, set up first when missing)
                                      as a table and a picture
    autograder grade ASSIGNMENT --submissions DIR_OR_ZIP [--jobs N] [--student ID] [--force] ...
                                      grade a class with nbgrader: gradebook, grades.csv, exercises.csv,
                                      feedback, report
    autograder sample-class ASSIGNMENT --to DIR [--size N] [--kind ...] [--layout ...]
                                      write a synthetic class of submissions (for demos and tests)
    autograder pack [--to DIR] [--assignments A ...]
                                      write the student pack (the course without its answers) to DIR

The student pack's own build of this package has only ``workspace`` and ``check``.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path


def _release(args: argparse.Namespace) -> int:
    from autograder.release import ReleaseError, generate_release

    try:
        out = generate_release(None, Path(args.to) if args.to else None)
    except ReleaseError as error:
        print(f"autograder release: {error}", file=sys.stderr)
        return 1
    print(f"Release written to {out}")
    return 0


def _course(command: str):
    """The course around the working directory, or None after saying why there is none."""
    from autograder.course import Course

    course = Course.find()
    if course is None:
        print(f"autograder {command}: no course here (no nbgrader_config.py in this folder or above it); "
              "run this in the course's folder.", file=sys.stderr)
    return course


def _workspace(args: argparse.Namespace) -> int:
    from autograder.workspace import prepare_workspace

    course = _course("workspace")
    if course is None:
        return 1
    added = prepare_workspace(course.release, Path(args.dir) if args.dir else course.workspace)
    for path in added:
        print(f"new in your workspace: {path}")
    return 0


def _check(args: argparse.Namespace) -> int:
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="replace")  # a terminal that cannot show ✔ gets ? rather than a crash
    reports = _check_notebooks(args) if args.paths else _check_workspace(args)
    if args.strict:
        return 0 if reports and all(report.complete for report in reports) else 1
    # Unfinished work is what a check reports, not a failure of the command (make would print "Error 1"
    # under the report); only a notebook that could not be checked at all is.
    return 0 if reports and all(report.checkable for report in reports) else 1


def _check_notebooks(args: argparse.Namespace) -> list:
    from autograder.selfcheck import check_notebook, format_notebook

    reports = [check_notebook(path, args.timeout) for path in args.paths]
    print("\n\n".join(format_notebook(report) for report in reports))
    return reports


def _check_workspace(args: argparse.Namespace) -> list:
    from autograder import progress
    from autograder.course import WORKSPACE, Course
    from autograder.selfcheck import check_workspace, format_table
    from autograder.workspace import prepare_workspace

    course = Course.find(args.dir)
    workspace = Path(args.dir) if args.dir else course.workspace if course else Path(WORKSPACE)
    if not args.dir and course is not None and course.release.is_dir():
        # The course's own workspace is set up here as `make lab` does, so that `make check` works first.
        for path in prepare_workspace(course.release, workspace):
            print(f"new in your workspace: {path}")
    if not workspace.is_dir():
        print(f"There is no workspace at {workspace}/ yet: `autograder workspace --dir {workspace}` creates it. "
              "At the top of the course, without --dir, `make check` sets up my-work/ itself.")
        return []
    reports = check_workspace(workspace, args.timeout, announce=print, course=course)
    print(format_table(reports))
    png, page = progress.save(reports, workspace)
    print(f"\nYour progress as a picture: {png}\nand as a page with what to fix: {page}")
    print(f"What to fix in one notebook: make check NB={workspace}/<notebook>/<notebook>.ipynb")
    return reports


def _grade(args: argparse.Namespace) -> int:
    from autograder.grading.pipeline import GradingError, Options, grade_class, parse_size

    try:
        options = Options(
            assignment=args.assignment, submissions=Path(args.submissions), course=Path(args.course),
            jobs=args.jobs, student=args.student, force=args.force, timeout=args.timeout,
            memory_limit=parse_size(args.memory_limit), out=Path(args.out) if args.out else None,
            progress=not args.no_progress, warm_kernels=not args.cold_kernels, sandbox=not args.no_sandbox,
            scheduler=args.scheduler or (f"local:{args.cluster}" if args.cluster else None),
        )
    except ValueError as error:
        print(f"autograder grade: --memory-limit: {error}", file=sys.stderr)
        return 2
    try:
        result = grade_class(options)
    except GradingError as error:
        print(f"autograder grade: {error}", file=sys.stderr)
        return 2
    from autograder.grading.report import journal_text, summary

    if args.explain:
        for student in result.students:
            print(journal_text(args.assignment, student))
    print(summary(result))
    return 0


def _local_workers(text: str) -> int:
    number = text.removeprefix("local:")
    if not number.isdigit() or int(number) < 1:
        raise argparse.ArgumentTypeError(f"expected local:N with N a number of workers, not {text!r}")
    return int(number)


def _pack(args: argparse.Namespace) -> int:
    from autograder.pack import PackError, build_pack

    try:
        folder, archive = build_pack(Path(args.course), Path(args.to), args.assignments)
    except PackError as error:
        print(f"autograder pack: {error}", file=sys.stderr)
        return 2
    released = sorted(p.stem for p in folder.glob("*/*/*.ipynb"))
    print(f"Student pack written to {folder}/ and {archive}, with {', '.join(released)}")
    return 0


def _audit(args: argparse.Namespace) -> int:
    from autograder import cases

    names = args.notebooks or cases.notebooks()
    unknown = sorted(set(names) - set(cases.notebooks()))
    if unknown:
        print(f"no cases for {', '.join(unknown)}; the notebooks are {', '.join(cases.notebooks())}", file=sys.stderr)
        return 2
    audits = []
    for name in names:
        print(f"auditing {name} ...", file=sys.stderr)
        audits.append(cases.audit(name))
    print(cases.table(audits))
    problems = [f"{a.notebook}: {problem}" for a in audits for problem in a.problems]
    for problem in problems:
        print(f"- {problem}")
    return 1 if problems else 0


def _sample_class(args: argparse.Namespace) -> int:
    from autograder.grading.sample import KINDS, write_class

    kinds = args.kind.split(",") if args.kind else None
    unknown = [k for k in kinds or [] if k not in KINDS]
    if unknown:
        print(f"autograder sample-class: unknown kinds {', '.join(unknown)}; known: {', '.join(KINDS)}", file=sys.stderr)
        return 2
    written = write_class(Path(args.course), args.assignment, Path(args.to), size=args.size, kinds=kinds,
                          layout=args.layout, pathological=not args.no_faults)
    print(f"{len(written)} submissions of {args.assignment} written to {args.to} ({args.layout} layout)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    instructor = importlib.util.find_spec("autograder.grading") is not None  # absent from the student pack
    parser = argparse.ArgumentParser(prog="autograder", description="torch.nn, step by step: " + (
        "check, grade and release the course's notebooks." if instructor else "set up and check your notebooks."))
    commands = parser.add_subparsers(dest="command", required=True)

    workspace = commands.add_parser("workspace", help="copy released notebooks you have not started yet into my-work/")
    workspace.add_argument("--dir", metavar="DIR", help="your workspace (default: my-work)")
    workspace.set_defaults(run=_workspace)

    check = commands.add_parser("check", help="check your notebooks as grading would, with what to fix and why")
    check.add_argument("paths", nargs="*", metavar="PATH",
                       help="notebooks to check (default: summarise every notebook in your workspace)")
    check.add_argument("--timeout", type=int, default=60, metavar="SECONDS",
                       help="stop a cell that runs longer than this and go on with the next (default: 60)")
    check.add_argument("--dir", metavar="DIR", help="your workspace, without PATH (default: my-work)")
    check.add_argument("--strict", action="store_true",
                       help="exit with status 1 unless everything passes (for CI); by default unfinished work is "
                            "reported with status 0")
    check.set_defaults(run=_check)

    if instructor:
        _add_instructor_commands(commands)
    return parser


def _add_instructor_commands(commands) -> None:
    release = commands.add_parser("release", help="regenerate notebooks/ (the student release) from solutions/")
    release.add_argument("--to", metavar="DIR", help="write the release here instead of notebooks/")
    release.set_defaults(run=_release)


    grade = commands.add_parser(
        "grade", help="grade a class with nbgrader: in parallel, resumably, with a report",
        description="Collect, autograde, write feedback and export a class's submissions of ASSIGNMENT, with "
                    "nbgrader's gradebook. DIR_OR_ZIP holds one entry per student: ID.ipynb, a folder ID/ with "
                    "the notebook, or nbgrader's ID/ASSIGNMENT/NOTEBOOK.ipynb (a zip of any of these, possibly "
                    "wrapped in one folder). Writes grades.csv, exercises.csv, report.md and report.json to "
                    "exports/ASSIGNMENT/ and feedback to feedback/ID/ASSIGNMENT/.")
    grade.add_argument("assignment", metavar="ASSIGNMENT", help="the assignment, e.g. 02_manual_model")
    grade.add_argument("--submissions", required=True, metavar="DIR_OR_ZIP", help="the class's submissions")
    grade.add_argument("--jobs", "-j", type=int, default=0, metavar="N",
                       help="notebooks graded at once (default: one per CPU core)")
    grade.add_argument("--student", metavar="ID", help="grade only this student")
    grade.add_argument("--force", action="store_true", help="regrade submissions that were already graded")
    grade.add_argument("--course", default=".", metavar="DIR", help="the nbgrader course directory (default: here)")
    grade.add_argument("--out", metavar="DIR", help="where the CSVs and the report go (default: exports/ASSIGNMENT)")
    grade.add_argument("--timeout", type=int, metavar="SECONDS",
                       help="time limit per cell (default: the course's Execute.timeout)")
    grade.add_argument("--memory-limit", default="4G", metavar="SIZE",
                       help="address space each notebook's kernel may use, e.g. 4G or 512M; 0 for no limit (default 4G)")
    grade.add_argument("--no-progress", action="store_true", help="no progress bar")
    grade.add_argument("--explain", action="store_true",
                       help="print, for each student graded, why they got their score: every check the judge ran, "
                            "cell by cell, with its verdict, and what the guard saw (always written to "
                            "exports/ASSIGNMENT/explain/ID.txt)")
    grade.add_argument("--cold-kernels", action="store_true",
                       help="start every kernel from scratch instead of forking a warm one (slower; for comparison)")
    grade.add_argument("--no-sandbox", action="store_true",
                       help="run student code unconfined, with your rights (only where bwrap cannot run; "
                            "the report says so). By default every kernel is confined with bubblewrap: "
                            "read-only system, no network, its own processes, only its working copy writable")
    where = grade.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="tcp://HOST:8786",
                       help="run the notebooks on the workers of this Dask cluster (dask-jobqueue on Slurm, "
                            "dask-kubernetes, `dask worker` on lab machines); the gradebook, feedback and "
                            "reports stay here. Workers need the course's environment, not its folder")
    where.add_argument("--cluster", metavar="local:N", type=_local_workers,
                       help="start a Dask LocalCluster of N worker processes here and grade on it "
                            "(one big machine, or to try cluster grading)")
    grade.set_defaults(run=_grade)

    sample = commands.add_parser("sample-class", help="write a synthetic class of submissions (demos, tests, benchmarks)")
    sample.add_argument("assignment", metavar="ASSIGNMENT")
    sample.add_argument("--to", required=True, metavar="DIR", help="the folder (or .zip) to write")
    sample.add_argument("--size", type=int, default=0, metavar="N",
                        help="number of submissions (default: one of each kind); kinds repeat to fill it")
    sample.add_argument("--kind", metavar="K1,K2", help="only these kinds of submission")
    sample.add_argument("--layout", choices=("folders", "notebooks", "nbgrader", "zip"), default="folders")
    sample.add_argument("--no-faults", action="store_true",
                        help="only realistic work (correct, blank, mistakes), none of the pathological files")
    sample.add_argument("--course", default=".", metavar="DIR", help="the course directory (default: here)")
    sample.set_defaults(run=_sample_class)

    audit = commands.add_parser(
        "audit", help="run each exercise's planted mistakes and correct alternatives against the checks",
        description="For each notebook: the rules its exercises' texts state, how many a check enforces, how many "
                    "planted mistakes are caught by the check of the rule they break, and how many correct "
                    "alternatives every check accepts (autograder/cases/). Lists every gap; exit status 1 if any.")
    audit.add_argument("notebooks", nargs="*", metavar="NOTEBOOK", help="notebooks to audit (default: all)")
    audit.set_defaults(run=_audit)

    pack = commands.add_parser("pack", help="write the student pack: released notebooks and public checks, no answers")
    pack.add_argument("--to", default="dist", metavar="DIR", help="where the folder and the .zip go (default: dist)")
    pack.add_argument("--course", default=".", metavar="DIR", help="the course directory (default: here)")
    pack.add_argument("--assignments", nargs="*", metavar="A",
                      help="release only these assignments, by number or name (01 or 01_tensors; default: all)")
    pack.set_defaults(run=_pack)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print("\nStopped.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
