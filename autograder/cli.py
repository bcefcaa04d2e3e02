"""The ``autograder`` command.

    autograder release [--to DIR]     regenerate the student release from solutions/
    autograder workspace [--dir DIR]  copy released notebooks a learner has not started yet into DIR
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autograder", description="torch.nn, step by step: check, grade and release the course's notebooks.")
    commands = parser.add_subparsers(dest="command", required=True)

    release = commands.add_parser("release", help="regenerate notebooks/ (the student release) from solutions/")
    release.add_argument("--to", metavar="DIR", help="write the release here instead of notebooks/")
    release.set_defaults(run=_release)

    workspace = commands.add_parser("workspace", help="copy released notebooks you have not started yet into my-work/")
    workspace.add_argument("--dir", metavar="DIR", help="your workspace (default: my-work)")
    workspace.set_defaults(run=_workspace)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
