"""``hrnet eval CONFIG --weights W [--path P]``: evaluate weights on the config's validation split, with the
network in any deploy path (the same deployed model as ``hrnet predict --path P``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..engine.inference import evaluate
from ..inference import deploy_task_model
from .common import add_config_arguments, add_path_arguments, add_threads_argument, load_experiment, print_main


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "eval",
        help="evaluate weights on the validation split",
        description=(
            "Evaluate WEIGHTS (an hrnet checkpoint, an official or timm checkpoint, or a .safetensors file) "
            "on the validation split of CONFIG. Predictions and metrics.json are written to --out."
        ),
    )
    add_config_arguments(parser)
    parser.add_argument("--weights", type=Path, required=True, metavar="W", help="weights to evaluate")
    add_threads_argument(parser)
    parser.add_argument("--out", type=Path, metavar="DIR", help="output folder (default: <output_dir>/eval)")
    add_path_arguments(parser)
    parser.set_defaults(run=run, prog=parser.prog)
    return parser


def run(args: argparse.Namespace) -> int:
    cfg = load_experiment(args)
    out = args.out or Path(cfg.output_dir) / "eval"
    metrics = evaluate(cfg, args.weights, out, wrap_model=lambda task, model: deploy_task_model(
        task, model, args.path, args.calibration_images))
    width = max((len(name) for name in metrics), default=0)
    where = f"Results in {out}" + (f" (network in deploy path {args.path})" if args.path != "eager" else "")
    print_main(*(f"{name:<{width}}  {value:.4f}" for name, value in metrics.items()), where)
    return 0
