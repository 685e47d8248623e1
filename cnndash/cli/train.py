"""``python -m cnndash train`` and ``evaluate``: a run from the command line, and its evaluation files."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import threading
from contextlib import ExitStack, nullcontext
from functools import partial
from pathlib import Path

from cnndash.augment import load_pipeline
from cnndash.cli.auto import choose_for_cli, explicit_settings, record_choices, settings_are_auto
from cnndash.cli.common import one_line_errors
from cnndash.device import DEVICE_CHOICES, resolve_device
from cnndash.evaluate.predict import write_evaluation_files
from cnndash.jobs import claims
from cnndash.jobs.claims import TRAINING
from cnndash.jobs.torchrun import JOB_ENV
from cnndash.runs import RunError, RunWriter, has_checkpoint
from cnndash.runs.lease import holding
from cnndash.training.budget import ONE_CLICK_BUDGET_S
from cnndash.training.distributed import (
    Distributed,
    launched_by_torchrun,
    restart_count,
    session,
    stop_on_signals,
)
from cnndash.training.events import EpochEvent, TrainEvent
from cnndash.training.loops import TrainConfig, train


def add_parsers(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("train", help="train a model and write a run directory")
    one_line_errors(parser)
    parser.add_argument(
        "--dataset", default=None, help="built-in name (digits, shapes, …) or image-folder dir/zip (required)"
    )
    parser.add_argument(
        "--model",
        default=None,
        help="lenet, simplecnn, vgg, resnet18, mobilenet_v2, or auto (the default): model, image size, batch "
        "size, epochs and learning rate chosen from the data and --budget-s, as the app's one click does",
    )
    parser.add_argument("--epochs", type=int, default=None, help="default 5 (auto: from the budget)")
    parser.add_argument(
        "--budget-s",
        type=float,
        default=None,
        help=f"--model auto: seconds to aim for (default {ONE_CLICK_BUDGET_S:g})",
    )
    parser.add_argument("--out", required=True, help="run directory to create")
    parser.add_argument("--device", choices=DEVICE_CHOICES, default=None, help="default auto")
    parser.add_argument("--seed", type=int, default=None, help="default 0")
    parser.add_argument(
        "--config",
        default=None,
        help="every setting from a JSON file (a run's config.json, or the app's launch.json); the options "
        "given here override it",
    )
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument(
        "--lr",
        type=_lr_value,
        default=None,
        help="peak/base learning rate, or auto (the learning-rate finder)",
    )
    parser.add_argument("--optimizer", default=None, help="sgd, adam or adamw")
    parser.add_argument("--schedule", default=None, help="onecycle, cosine, step or constant")
    parser.add_argument("--weight-decay", type=float, default=None)
    parser.add_argument("--label-smoothing", type=float, default=None)
    parser.add_argument("--grad-clip", type=float, default=None, help="max gradient norm (0 = off)")
    parser.add_argument("--early-stopping", type=int, default=None, help="patience in epochs (0 = off)")
    parser.add_argument("--image-size", type=int, default=None, help="square input side (default: auto)")
    parser.add_argument("--pipeline", default=None, help="name of a saved augmentation pipeline")
    parser.add_argument("--pretrained", action="store_true", help="ImageNet weights from the torch cache")
    parser.add_argument("--transfer", default=None, help="all, freeze or lower_lr (with --pretrained)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from last.pt")
    parser.add_argument("--no-tensorboard", action="store_true", help="no TensorBoard event files")
    parser.add_argument(
        "--sync-batchnorm",
        action="store_true",
        help="under torchrun: BatchNorm statistics over all processes",
    )
    parser.add_argument(
        "--scale-lr", action="store_true", help="under torchrun: lr × processes (linear scaling rule)"
    )
    parser.set_defaults(handler=_cmd_train)
    _add_evaluate(sub)


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    evaluate = sub.add_parser("evaluate", help="confusion matrix and classification report of a run")
    one_line_errors(evaluate)
    evaluate.add_argument("--run", required=True, help="run directory written by `train`")
    evaluate.add_argument("--checkpoint", choices=("best", "last"), default="best")
    evaluate.set_defaults(handler=_cmd_evaluate)


def _base_settings(args: argparse.Namespace) -> dict:
    """The settings of ``--config`` (a TrainConfig dict, alone or under ``"config"``), or none."""
    if args.config is None:
        return {}
    try:
        data = json.loads(Path(args.config).read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"--config {args.config} cannot be read as JSON ({exc}); give a run's config.json."
        ) from exc
    data = data.get("config", data) if isinstance(data, dict) else None
    if not isinstance(data, dict):
        raise ValueError(f"--config {args.config} holds no settings object; give a run's config.json.")
    return data


def _config(args: argparse.Namespace) -> TrainConfig:
    options = {
        "dataset": args.dataset,
        "model": args.model,
        "epochs": args.epochs,
        "device": args.device,
        "seed": args.seed,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "optimizer": args.optimizer,
        "schedule": args.schedule,
        "weight_decay": args.weight_decay,
        "label_smoothing": args.label_smoothing,
        "grad_clip": args.grad_clip,
        "early_stopping": args.early_stopping,
        "image_size": args.image_size,
        "transfer": args.transfer,
    }
    base = _base_settings(args)
    given = {key: value for key, value in options.items() if value is not None and value != "auto"}
    auto = settings_are_auto(base.get("model"), args.model)
    settings = {"device": "auto", "seed": 0, **({} if auto else {"epochs": 5}), **base, **given}
    settings["model"] = "lenet" if auto else settings["model"]  # replaced by the auto choice in _cmd_train
    if not settings.get("dataset"):
        raise ValueError("--dataset is required (or a --config file that sets it).")
    if args.pipeline:
        settings["augment"] = load_pipeline(args.pipeline)
        settings["pipeline"] = args.pipeline
    flags = {"pretrained": args.pretrained, "sync_batchnorm": args.sync_batchnorm, "scale_lr": args.scale_lr}
    settings |= {key: True for key, value in flags.items() if value}
    if args.no_tensorboard:
        settings["tensorboard"] = False
    return TrainConfig.from_dict(settings)


def _cmd_train(args: argparse.Namespace) -> int:
    if not str(args.out).strip():
        raise ValueError("--out is empty; give the folder to write the run into (e.g. --out runs/my-run).")
    config = _config(args)
    base = _base_settings(args)
    config, notes = choose_for_cli(
        config,
        model_auto=settings_are_auto(base.get("model"), args.model) and not args.resume,
        lr_auto=args.lr == "auto" and not args.resume,
        explicit=explicit_settings(args, base),
        budget_s=args.budget_s,
    )
    config.validate()  # every setting checked before a device is resolved or claimed
    out = Path(args.out)
    # Under torchrun (more than one process) this is one rank of a data-parallel run: SIGTERM/SIGINT stop
    # every rank cleanly, and only rank 0 reports. The handlers are in place before the group is joined, so
    # a Stop that comes while the processes meet still ends the run as stopped (after its first batch).
    stop = threading.Event()
    signals = stop_on_signals(stop) if launched_by_torchrun() else nullcontext()
    with signals, session(config.device) as dist, ExitStack() as held:
        main = dist is None or dist.is_main
        resume = args.resume or _resume_after_restart(out, dist)
        owner = _claim(config, out, resume, dist, held)
        summary = train(
            config, out, resume=resume, on_event=_print_progress if main else None,
            stop_event=stop if dist is not None else None, dist=dist, owner=owner,
        )  # fmt: skip
    if main:
        summary = record_choices(Path(args.out), summary, notes)
        print(json.dumps(summary, indent=2))
        if note := (summary.get("health") or {}).get("note"):
            print(f"note: {note}", file=sys.stderr)
    return 0


def _lr_value(text: str) -> float | str:
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a number or auto, got {text!r}") from None


def _claim(config: TrainConfig, out: Path, resume: bool, dist: Distributed | None, held: ExitStack) -> str:
    """The job id this run trains under (its lease owner): the app's, for a torchrun it launched, or a claim
    of this process under the jobs rule (one training per device, none beside a label check), released
    when ``held`` closes. Distributed: rank 0 claims for the group, every rank gets the answer."""
    if os.environ.get(JOB_ENV):
        return os.environ[JOB_ENV]

    # Under torchrun one id for every restart of the group: a restarted rank 0 takes over its own claim and
    # lease at once instead of waiting for the killed attempt's to go stale.
    run_id = os.environ.get("TORCHELASTIC_RUN_ID")
    job_id = (
        f"torchrun-{run_id}-{hashlib.sha1(str(out.resolve()).encode()).hexdigest()[:12]}" if run_id else None
    )

    def take() -> str:
        job = claims.claim(TRAINING, resolve_device(config.device).type, out.name or str(out),
                           holder=f"cli-{os.getpid()}", run_dir=out, processes=1 if dist is None else dist.world_size,
                           config=config.to_dict(), job_id=job_id)  # fmt: skip
        held.callback(job.release)
        # The run's lease from now on, not only once its data is loaded: listed as running (not broken),
        # and neither deleted nor resumed by anyone else while it starts.
        if resume and not out.is_dir():
            raise RunError(
                f"Nothing to resume in {out}: there is no such run folder; train it without --resume."
            )
        RunWriter(out).create()
        held.enter_context(holding(out, job.id))
        return job.id

    return take() if dist is None else dist.from_rank0(take)


def _resume_after_restart(out: Path, dist: Distributed | None) -> bool:
    """A group torchrun restarted (``--max-restarts``) resumes from the last checkpoint, if there is one."""
    if restart_count() == 0:
        return False
    found = partial(has_checkpoint, out, "last")
    return found() if dist is None else dist.from_rank0(found)


def _print_progress(event: TrainEvent) -> None:
    if isinstance(event, EpochEvent):
        print(
            f"epoch {event.epoch}: train_loss={event.train_loss:.4f} train_acc={event.train_acc:.3f} "
            f"val_loss={event.val_loss:.4f} val_acc={event.val_acc:.3f}",
            file=sys.stderr,
        )


def _cmd_evaluate(args: argparse.Namespace) -> int:
    written = write_evaluation_files(args.run, checkpoint=args.checkpoint)
    for path in written:
        print(path)
    return 0
