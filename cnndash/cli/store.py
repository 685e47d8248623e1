"""``python -m cnndash data …``: the stored datasets, managed from the command line (runs: ``cli/runs.py``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cnndash import data
from cnndash.cli.common import one_line_errors, print_json


def add_parsers(sub: argparse._SubParsersAction) -> None:
    data_parser = sub.add_parser("data", help="import, list and delete stored datasets")
    one_line_errors(data_parser)
    data_sub = data_parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    imp = data_sub.add_parser("import", help="validate and store a dataset (zip or image folder)")
    one_line_errors(imp)
    imp.add_argument("source", help="an image-folder zip or directory")
    imp.add_argument("--name", default=None, help="dataset name (default: from the file name)")
    imp.add_argument(
        "--replace",
        action="store_true",
        help="replace the dataset of that name in one step (default: store under a free name, NAME-2, …)",
    )
    imp.set_defaults(handler=_cmd_data_import)
    lst = data_sub.add_parser("list", help="stored datasets")
    one_line_errors(lst)
    lst.add_argument("--json", action="store_true", help="one JSON list with classes and image counts")
    lst.set_defaults(handler=_cmd_data_list)
    dele = data_sub.add_parser("delete", help="delete a stored dataset or version")
    one_line_errors(dele)
    dele.add_argument("name")
    dele.set_defaults(handler=_cmd_data_delete)


def _cmd_data_import(args: argparse.Namespace) -> int:
    source = Path(args.source)
    name = args.name if args.name is not None else data.dataset_name_from(source.name)
    report = data.import_dataset(source, name, on_exists="replace" if args.replace else "suffix")
    for skipped in report.skipped:  # what was left out and why, for the person importing (stderr)
        print(f"skipped {skipped.path}: {skipped.reason}", file=sys.stderr)
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(report.name)
    return 0


def _cmd_data_list(args: argparse.Namespace) -> int:
    names = data.list_datasets()
    if not args.json:
        for name in names:
            print(name)
        return 0
    rows = []
    for name in names:
        try:
            report = data.dataset_report(name)
            rows.append({"name": name, "classes": report.classes, "images": report.num_images})
        except ValueError as exc:  # a damaged folder is listed with the reason, never crashes the list
            rows.append({"name": name, "error": str(exc)})
    print_json(rows)
    return 0


def _cmd_data_delete(args: argparse.Namespace) -> int:
    data.delete_dataset(args.name)
    print(f"deleted {args.name}")
    return 0
