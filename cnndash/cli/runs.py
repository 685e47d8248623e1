"""``python -m cnndash runs …``: list, stop and delete the runs in the runs folder, by name.

``runs delete NAME`` and ``runs stop NAME`` take the name of a run inside the runs folder only — a path,
``.``, ``..`` or an empty name exits 2 and touches nothing. ``runs stop`` asks the run's trainer to stop
(a request it reads before each batch; it never signals a process): the run ends ``stopped``, resumable.
"""

from __future__ import annotations

import argparse

from cnndash.cli.common import one_line_errors, print_json
from cnndash.runs import Run, delete_run, list_runs, stop_run, sweep_runs


def add_parsers(sub: argparse._SubParsersAction) -> None:
    runs = sub.add_parser("runs", help="list training runs (or `runs stop NAME`, `runs delete NAME`)")
    one_line_errors(runs)
    runs.add_argument("--json", action="store_true", help="print the list as JSON")
    runs.set_defaults(handler=_cmd_runs_list)
    runs_sub = runs.add_subparsers(dest="runs_command", metavar="ACTION")
    stop = runs_sub.add_parser("stop", help="ask a running run to stop (it ends stopped, resumable)")
    one_line_errors(stop)
    stop.add_argument("name", help="the run's name, as `runs` lists it")
    stop.set_defaults(handler=_cmd_runs_stop)
    rdel = runs_sub.add_parser("delete", help="delete a run that is not training")
    one_line_errors(rdel)
    rdel.add_argument("name", help="the run's name, as `runs` lists it")
    rdel.set_defaults(handler=_cmd_runs_delete)


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
    sweep_runs()  # what killed processes left: never listed, removed once nobody owns it
    rows = [run_row(run) for run in list_runs(include_broken=True)]
    if args.json:
        print_json(rows)
        return 0
    for row in rows:
        acc = f"{row['val_accuracy']:.1%}" if isinstance(row["val_accuracy"], float) else "—"
        print(f"{row['name']}\t{row['status']}\t{row['model'] or '—'}\t{row['dataset'] or '—'}\t{acc}")
    return 0


def _cmd_runs_stop(args: argparse.Namespace) -> int:
    stop_run(args.name)
    print(f"asked {args.name} to stop")
    return 0


def _cmd_runs_delete(args: argparse.Namespace) -> int:
    delete_run(args.name)
    print(f"deleted {args.name}")
    return 0
