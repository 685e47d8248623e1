"""Command line: ``python -m cnndash COMMAND …`` — the same engine calls the pages make.

Each command group lives in its own module with an ``add_parsers(sub)`` function. Errors a user can cause
(``ValueError`` subclasses, and operating-system refusals such as a read-only or full disk) print one line
on stderr and exit with status 2; results go to stdout or into files.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cnndash.cli import export, labels, runs, store, sweep, train, weights


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cnndash",
        description="cnndash engine: datasets, training, evaluation and runs without the web app.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (train, sweep, store, runs, export, labels, weights):
        module.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 0
    try:
        return args.handler(args)
    except (ValueError, OSError) as exc:  # user-caused or refused by the system: one line, no traceback
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"error: {text}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "interrupted: the last finished epoch is saved in last.pt (resume with --resume)", file=sys.stderr
        )
        return 130
