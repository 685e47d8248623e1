"""``python -m cnndash weights import FILE``: pretrained ImageNet weights downloaded on another machine."""

from __future__ import annotations

import argparse

from cnndash.cli.common import one_line_errors
from cnndash.pretrained import MODELS_WITH_WEIGHTS, import_weights, published_name, weights_installed


def add_parsers(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("weights", help="pretrained ImageNet weights (import a downloaded file, list)")
    one_line_errors(parser)
    actions = parser.add_subparsers(dest="weights_command", metavar="ACTION")
    importer = actions.add_parser(
        "import",
        help="verify a torchvision weights file (resnet18-f37072fd.pth, mobilenet_v2-b0353104.pth) against the "
        "hash in its name and install it for --pretrained",
    )
    one_line_errors(importer)
    importer.add_argument("file", help="the .pth file, named as torchvision publishes it")
    importer.set_defaults(handler=_cmd_import)
    listing = actions.add_parser("list", help="which models have their weights installed")
    one_line_errors(listing)
    listing.set_defaults(handler=_cmd_list)


def _cmd_import(args: argparse.Namespace) -> int:
    print(import_weights(args.file).text())
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    for model in MODELS_WITH_WEIGHTS:
        state = "installed" if weights_installed(model) else f"missing (import {published_name(model)})"
        print(f"{model}: {state}")
    return 0
