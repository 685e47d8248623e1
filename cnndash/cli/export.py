"""``python -m cnndash export`` and ``predict``: a run's model outside the app, with the app's answers."""

from __future__ import annotations

import argparse
import sys

from cnndash.cli.common import one_line_errors
from cnndash.evaluate import predict_files
from cnndash.evaluate.metrics import EvaluationError
from cnndash.export import bundle as export
from cnndash.runs import load_run


def add_parsers(sub: argparse._SubParsersAction) -> None:
    exp = sub.add_parser("export", help="write a self-contained bundle (TorchScript, ONNX, predict.py)")
    one_line_errors(exp)
    exp.add_argument("--run", required=True, help="run directory (or run name)")
    exp.add_argument("--out", required=True, help="bundle directory to write")
    exp.add_argument("--checkpoint", choices=["best", "last"], default="best")
    exp.add_argument(
        "--formats",
        default=",".join(export.DEFAULT_FORMATS),
        help=f"comma-separated, from {', '.join(export.FORMATS)} (default: %(default)s)",
    )
    exp.set_defaults(handler=_cmd_export)

    pred = sub.add_parser("predict", help="classify images, folders or zips; CSV on stdout")
    one_line_errors(pred)
    pred.add_argument("--run", required=True, help="run directory (or run name)")
    pred.add_argument("paths", nargs="+", metavar="PATHS", help="image files, folders or zips")
    pred.add_argument("--top-k", type=int, default=1, help="also list the next K-1 classes")
    pred.add_argument("--checkpoint", choices=["best", "last"], default="best")
    pred.set_defaults(handler=_cmd_predict)


def _cmd_export(args: argparse.Namespace) -> int:
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    result = export.export_run(args.run, args.out, formats, checkpoint=args.checkpoint)
    print(result.path)
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    if args.top_k < 1:
        raise EvaluationError(f"--top-k must be at least 1, got {args.top_k}.")
    run = load_run(args.run)
    sources = predict_files.image_sources(args.paths)  # bad paths fail before the model is loaded
    probs = predict_files.predict_sources(run, sources, checkpoint=args.checkpoint)
    sys.stdout.write(predict_files.predictions_csv([s.name for s in sources], probs, run.classes, args.top_k))
    return 0
