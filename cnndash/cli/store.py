"""``python -m cnndash data …`` and ``runs …``: what the server keeps, managed from the command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cnndash import data
from cnndash.cli.common import one_line_errors, print_json
from cnndash.runs import Run, delete_run, list_runs


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

    runs = sub.add_parser("runs", help="list training runs (or `runs delete NAME`)")
    one_line_errors(runs)
    runs.add_argument("--json", action="store_true", help="print the list as JSON")
    runs.set_defaults(handler=_cmd_runs_list)
    runs_sub = runs.add_subparsers(dest="runs_command", metavar="ACTION")
    rdel = runs_sub.add_parser("delete", help="delete a run that is not training")
    one_line_errors(rdel)
    rdel.add_argument("name")
    rdel.set_defaults(handler=_cmd_runs_delete)


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


def run_row(run: Run) -> dict:
    """One run as the listing shows it (also what ``runs --json`` prints)."""
    summary = run.summary or {}
    return {
        "name": run.name,
        "status": run.status,
        "model": run.config.get("model"),
        "dataset": run.config.get("dataset"),
        "val_accuracy": summary.get("val_accuracy"),
        "epochs": summary.get("epochs"),
        "message": run.message,
        "path": str(run.path),
    }


def _cmd_runs_list(args: argparse.Namespace) -> int:
    rows = [run_row(run) for run in list_runs(include_broken=True)]
    if args.json:
        print_json(rows)
        return 0
    for row in rows:
        acc = f"{row['val_accuracy']:.1%}" if isinstance(row["val_accuracy"], float) else "—"
        print(f"{row['name']}\t{row['status']}\t{row['model'] or '—'}\t{row['dataset'] or '—'}\t{acc}")
    return 0


def _cmd_runs_delete(args: argparse.Namespace) -> int:
    delete_run(args.name)
    print(f"deleted {args.name}")
    return 0
