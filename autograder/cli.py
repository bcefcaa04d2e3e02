"""The ``autograder`` command.

    autograder release [--to DIR]     regenerate the student release from solutions/
    autograder workspace [--dir DIR]  copy released notebooks a learner has not started yet into DIR
    autograder check [PATH ...]       run notebooks as grading does and say, per exercise, what passes and why not;
                                      without PATH, summarise the workspace (my-work/) as a table and a picture
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _release(args: argparse.Namespace) -> int:
    from autograder.release import ReleaseError, generate_release

    try:
        out = generate_release(Path.cwd(), Path(args.to) if args.to else None)
    except ReleaseError as error:
        print(f"autograder release: {error}", file=sys.stderr)
        return 1
    print(f"Release written to {out}")
    return 0


def _workspace(args: argparse.Namespace) -> int:
    from autograder.workspace import WORKSPACE, prepare_workspace

    added = prepare_workspace(Path.cwd() / "notebooks", Path(args.dir) if args.dir else Path.cwd() / WORKSPACE)
    for path in added:
        print(f"new in your workspace: {path}")
    return 0


def _check(args: argparse.Namespace) -> int:
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="replace")  # a terminal that cannot show ✔ gets ? rather than a crash
    reports = _check_notebooks(args) if args.paths else _check_workspace(args)
    return 0 if reports and all(report.complete for report in reports) else 1


def _check_notebooks(args: argparse.Namespace) -> list:
    from autograder.selfcheck import check_notebook, format_notebook

    reports = [check_notebook(path, args.timeout) for path in args.paths]
    print("\n\n".join(format_notebook(report) for report in reports))
    return reports


def _check_workspace(args: argparse.Namespace) -> list:
    from autograder import progress
    from autograder.selfcheck import check_workspace, format_table
    from autograder.workspace import WORKSPACE

    workspace = Path(args.dir or WORKSPACE)
    if not workspace.is_dir():
        print(f"There is no workspace at {workspace}/ yet: `make lab` creates it. "
              "Run this at the top of the course, or name your workspace with --dir.")
        return []
    reports = check_workspace(workspace, args.timeout, announce=print)
    print(format_table(reports))
    png, page = progress.save(reports, workspace)
    print(f"\nYour progress as a picture: {png}\nand as a page with what to fix: {page}")
    print(f"What to fix in one notebook: make check NB={workspace}/<notebook>/<notebook>.ipynb")
    return reports


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autograder", description="torch.nn, step by step: check, grade and release the course's notebooks.")
    commands = parser.add_subparsers(dest="command", required=True)

    release = commands.add_parser("release", help="regenerate notebooks/ (the student release) from solutions/")
    release.add_argument("--to", metavar="DIR", help="write the release here instead of notebooks/")
    release.set_defaults(run=_release)

    workspace = commands.add_parser("workspace", help="copy released notebooks you have not started yet into my-work/")
    workspace.add_argument("--dir", metavar="DIR", help="your workspace (default: my-work)")
    workspace.set_defaults(run=_workspace)

    check = commands.add_parser("check", help="check your notebooks as grading would, with what to fix and why")
    check.add_argument("paths", nargs="*", metavar="PATH",
                       help="notebooks to check (default: summarise every notebook in your workspace)")
    check.add_argument("--timeout", type=int, default=60, metavar="SECONDS",
                       help="stop a cell that runs longer than this and go on with the next (default: 60)")
    check.add_argument("--dir", metavar="DIR", help="your workspace, without PATH (default: my-work)")
    check.set_defaults(run=_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print("\nStopped.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
