"""What every command shares: one-line usage errors, JSON output."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, NoReturn


def one_line_errors(parser: argparse.ArgumentParser) -> None:
    """Usage mistakes print one ``error:`` line (not the usage block) and exit with status 2."""

    def error(message: str) -> NoReturn:
        parser.exit(2, f"error: {message} (see `{parser.prog} --help`)\n")

    parser.error = error  # type: ignore[method-assign]


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
