"""``python -m cnndash sweep``: a budgeted hyperparameter search (:mod:`cnndash.search.study`) from a terminal.

The base configuration is what ``train`` would train (``--model auto`` by default: the app's one click);
the search varies the learning rate (and the models, image sizes and batch sizes given) around it. It takes
a ``search`` claim under the jobs rule, so it never trains beside another run on its device. Each trial is
reported on stderr as it ends; the result (every trial, the best, its config) is JSON on stdout, and
``--best-config FILE`` writes the best trial's settings for ``train --config FILE``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

from cnndash.cli.common import one_line_errors, print_json
from cnndash.device import DEVICE_CHOICES, resolve_device
from cnndash.jobs import claims
from cnndash.jobs.claims import SEARCH
from cnndash.search.job import SearchBusyError
from cnndash.search.study import MAX_TRIALS, SearchError, SearchSpace, TrialResult, new_search_id, run_search
from cnndash.training.auto import auto_config
from cnndash.training.config import TrainConfig


def add_parsers(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "sweep",
        help="search learning rates (and models, sizes) with Optuna: N trials in about twice one run's time",
    )
    one_line_errors(parser)
    parser.add_argument("--dataset", required=True, help="built-in name or image-folder dir/zip")
    parser.add_argument("--model", default="auto", help="the base model, or auto (the one click's choice)")
    parser.add_argument("--models", default="", help="models to try, comma-separated (default: the base's)")
    parser.add_argument(
        "--trials", type=int, default=8, help=f"configurations to try (1–{MAX_TRIALS}, default 8)"
    )
    parser.add_argument(
        "--budget-s",
        type=float,
        default=None,
        help="seconds for the whole search (default: 2x the first trial's)",
    )
    parser.add_argument("--epochs", type=int, default=None, help="epochs per trial (default: the base's)")
    parser.add_argument("--lr-range", default="", help="LOW:HIGH learning rates (default: base/10 to base*3)")
    parser.add_argument("--image-sizes", default="", help="image sides to try, comma-separated")
    parser.add_argument("--batch-sizes", default="", help="batch sizes to try, comma-separated")
    parser.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--best-config", default=None, help="write the best trial's config here (for train --config)"
    )
    parser.set_defaults(handler=_cmd_sweep)


def _ints(text: str, what: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise SearchError(
            "--{what} takes whole numbers separated by commas (e.g. 28,32), got {text}.",
            what=what,
            text=repr(text),
        ) from None


def _space(args: argparse.Namespace, base: TrainConfig) -> SearchSpace:
    models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    space = SearchSpace.around(base, models)
    if args.lr_range:
        try:
            low, high = (float(part) for part in args.lr_range.split(":"))
        except ValueError:
            raise SearchError(
                "--lr-range takes LOW:HIGH (e.g. 1e-4:1e-2), got {text}.", text=repr(args.lr_range)
            ) from None
        space = replace(space, lr_low=low, lr_high=high)
    return replace(
        space,
        image_sizes=_ints(args.image_sizes, "image-sizes"),
        batch_sizes=_ints(args.batch_sizes, "batch-sizes"),
    )


def _base(args: argparse.Namespace) -> TrainConfig:
    settings = {"dataset": args.dataset, "device": args.device, "seed": args.seed, "tensorboard": False}
    if args.model.strip().lower() == "auto":
        config = auto_config(TrainConfig.from_dict({**settings, "model": "lenet"})).config
    else:
        config = TrainConfig.from_dict({**settings, "model": args.model})
    return replace(config, epochs=args.epochs) if args.epochs is not None else config


def _report(result: TrialResult) -> None:
    value = "—" if result.value is None else f"{result.value:.3f}"
    params = ", ".join(
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in result.params.items()
    )
    note = f" ({result.note})" if result.note else ""
    print(f"trial {result.number}: {result.state} val_acc={value} after {result.epochs} epochs, {params}{note}",
          file=sys.stderr)  # fmt: skip


def _cmd_sweep(args: argparse.Namespace) -> int:
    base = _base(args)
    space = _space(args, base)
    space.check()
    base.validate()
    search_id = new_search_id()
    claim = claims.claim(SEARCH, resolve_device(base.device).type, search_id, holder=f"cli-{os.getpid()}",
                         error=SearchBusyError)  # fmt: skip
    try:
        result = run_search(base, trials=args.trials, budget_s=args.budget_s, space=space, search_id=search_id,
                            on_trial=_report, owner=claim.id)  # fmt: skip
    finally:
        claim.release()
    if result.not_started:
        print(f"{result.not_started} trials not started: the {result.deadline_s:.0f} s deadline came first",
              file=sys.stderr)  # fmt: skip
    if args.best_config and result.best_config is not None:
        Path(args.best_config).write_text(json.dumps(result.best_config.to_dict(), indent=2))
        print(f"best: trial {result.best.number}; train it with python -m cnndash train --config "
              f"{args.best_config} --out RUN_DIR", file=sys.stderr)  # fmt: skip
    print_json(result.to_dict())
    return 0
