"""``hrnet predict CONFIG --weights W INPUTS... --out DIR``: run a trained model on your own files."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..engine.inference import predict
from .common import add_config_arguments, load_experiment, parse_key_value


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "predict",
        help="run a model on images, folders or videos",
        description=(
            "Run the model of CONFIG with WEIGHTS on INPUTS (what a task accepts: images, folders, videos) "
            "and write its outputs (JSON, overlays) to --out."
        ),
    )
    add_config_arguments(parser, positional_overrides=False)
    parser.add_argument("--weights", type=Path, required=True, metavar="W", help="weights to use")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="images, folders or videos")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    parser.add_argument(
        "--option",
        dest="options",
        action="append",
        type=parse_key_value,
        default=[],
        metavar="KEY=VALUE",
        help="task-specific prediction option, e.g. --option boxes=dets.json (repeatable)",
    )
    parser.set_defaults(run=run, prog=parser.prog)
    return parser


def run(args: argparse.Namespace) -> int:
    written = predict(load_experiment(args), args.weights, args.inputs, args.out, **dict(args.options))
    print(f"Wrote {len(written)} file(s) to {args.out}")
    return 0
