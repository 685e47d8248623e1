"""``python -m cnndash find-label-issues`` and ``data version/versions/edit/diff/undo``: the data-centric loop
(find suspicious labels, fix them in a version, retrain) from the command line."""

from __future__ import annotations

import argparse
import sys

from cnndash.cli.common import one_line_errors, print_json
from cnndash.data import versions
from cnndash.device import DEVICE_CHOICES
from cnndash.evaluate.label_issues import DEFAULT_FOLDS, find_dataset_label_issues
from cnndash.tables import safe_frame
from cnndash.training.events import EpochEvent, TrainEvent
from cnndash.training.loops import TrainConfig


def add_parsers(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "find-label-issues", help="K-fold out-of-sample probabilities, then label_issues.csv (cleanlab)"
    )
    one_line_errors(parser)
    parser.add_argument(
        "--dataset", required=True, help="built-in name, stored dataset or image-folder dir/zip"
    )
    parser.add_argument("--model", required=True, help="lenet, simplecnn, vgg, resnet18, mobilenet_v2")
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--folds", type=int, default=DEFAULT_FOLDS, help=f"K (default {DEFAULT_FOLDS})")
    parser.add_argument("--out", required=True, help="folder for label_issues.csv (and the folds)")
    parser.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image-size", type=int, default=None, help="square input side (default: auto)")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads per fold (default: torch's)"
    )
    parser.set_defaults(handler=_cmd_find)

    for name, help_text, handler, add in (
        ("version", "make an editable version of a dataset (prints its name)", _cmd_version, _version_args),
        ("versions", "list dataset versions", _cmd_versions, _versions_args),
        ("relabel", "move an image of a version to another class", _cmd_relabel, _relabel_args),
        ("remove", "leave an image out of a version", _cmd_remove, _path_args),
        ("merge", "merge classes of a version into one", _cmd_merge, _merge_args),
        ("rename", "rename a class of a version", _cmd_rename, _rename_args),
        ("diff", "what differs between two datasets of the same base", _cmd_diff, _diff_args),
        (
            "files",
            "every image of a dataset or version: path (in the base) and class now",
            _cmd_files,
            _files_args,
        ),
        ("undo", "undo a version's last edit", _cmd_undo, _name_args),
    ):
        _data_action(sub, name, help_text, handler, add)


def _data_action(sub: argparse._SubParsersAction, name: str, help_text: str, handler, add) -> None:
    """Add ``data NAME`` to the ``data`` command group that :mod:`cnndash.cli.store` created."""
    data_parser = sub.choices["data"]
    data_sub = next(a for a in data_parser._actions if isinstance(a, argparse._SubParsersAction))
    parser = data_sub.add_parser(name, help=help_text)
    one_line_errors(parser)
    add(parser)
    parser.set_defaults(handler=handler)


def _version_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("parent", help="built-in, stored dataset, version, or image-folder dir/zip")
    p.add_argument("--name", default=None, help="version name (default: PARENT-edit, -edit-2, …)")


def _versions_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true")


def _name_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="the version")


def _path_args(p: argparse.ArgumentParser) -> None:
    _name_args(p)
    p.add_argument("path", help="image path in the version now (cat/001.png), or as `data files` lists it")


def _relabel_args(p: argparse.ArgumentParser) -> None:
    _path_args(p)
    p.add_argument("to", help="the class it belongs to")


def _merge_args(p: argparse.ArgumentParser) -> None:
    _name_args(p)
    p.add_argument("classes", nargs="+", help="two or more classes")
    p.add_argument("--into", required=True, help="the merged class's name")


def _rename_args(p: argparse.ArgumentParser) -> None:
    _name_args(p)
    p.add_argument("old")
    p.add_argument("new")


def _diff_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("a")
    p.add_argument("b")


def _files_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="a built-in, stored dataset, version, or image-folder dir/zip")
    p.add_argument("--json", action="store_true", help="one JSON list of {path, class}")


def _cmd_find(args: argparse.Namespace) -> int:
    options = {
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "threads": args.threads,
    }
    template = TrainConfig(
        dataset=args.dataset, model=args.model, epochs=args.epochs, device=args.device, seed=args.seed,
        tensorboard=False, **{k: v for k, v in options.items() if v is not None},
    )  # fmt: skip
    issues = find_dataset_label_issues(
        args.dataset, template, args.out, folds=args.folds, on_progress=_progress
    )
    frame = issues.frame()
    print(
        f"{len(frame)} images, {int(frame['issue'].sum())} flagged by cleanlab; "
        f"fold runs: {', '.join(issues.runs)}",
        file=sys.stderr,
    )
    print(f"{args.out}/label_issues.csv")
    return 0


def _progress(fold: int, folds: int, event: TrainEvent) -> None:
    if isinstance(event, EpochEvent):
        print(
            f"fold {fold}/{folds} epoch {event.epoch}/{event.epochs}: val_acc={event.val_acc:.3f}",
            file=sys.stderr,
        )


def _cmd_version(args: argparse.Namespace) -> int:
    print(versions.create_version(args.parent, args.name))
    return 0


def _cmd_versions(args: argparse.Namespace) -> int:
    rows = [
        {"name": r.name, "parent": r.parent, "base": r.base, "steps": len(r.steps) - r.inherited}
        for r in versions.list_versions()
    ]
    if args.json:
        print_json(rows)
    else:
        for row in rows:
            print(f"{row['name']}\t{row['parent']}\t{row['steps']} edit(s)")
    return 0


def _cmd_relabel(args: argparse.Namespace) -> int:
    versions.relabel(args.name, args.path, args.to)
    print(f"{args.path} -> {args.to}")
    return 0


def _cmd_remove(args: argparse.Namespace) -> int:
    versions.remove(args.name, args.path)
    print(f"removed {args.path}")
    return 0


def _cmd_merge(args: argparse.Namespace) -> int:
    versions.merge_classes(args.name, args.classes, args.into)
    print(f"{', '.join(args.classes)} -> {args.into}")
    return 0


def _cmd_rename(args: argparse.Namespace) -> int:
    versions.rename_class(args.name, args.old, args.new)
    print(f"{args.old} -> {args.new}")
    return 0


def _cmd_diff(args: argparse.Namespace) -> int:
    frame = versions.diff(args.a, args.b)
    sys.stdout.write(safe_frame(frame).to_csv(index=False))  # names from uploads never become formulas
    return 0


def _cmd_files(args: argparse.Namespace) -> int:
    frame = versions.dataset_files(args.name)
    if args.json:
        print_json(frame.to_dict(orient="records"))
    else:
        sys.stdout.write(safe_frame(frame).to_csv(index=False))
    return 0


def _cmd_undo(args: argparse.Namespace) -> int:
    undone = versions.undo(args.name)
    print(f"undid {len(undone)} edit(s)")
    return 0
