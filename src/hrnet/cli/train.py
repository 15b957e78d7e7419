"""``hrnet train CONFIG [KEY=VALUE ...]``: train an experiment (one process, or many under torchrun)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..engine.trainer import train
from .common import add_config_arguments, add_threads_argument, load_experiment, print_main


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "train",
        help="train an experiment config",
        description=(
            "Train the experiment described by CONFIG. Outputs go to output_dir (default "
            "runs/<config name>): config.yaml, checkpoints/{last,best}.pt, metrics.jsonl, tensorboard/, "
            "curves.png. Several "
            "processes: torchrun --nproc_per_node N -m hrnet.cli.main train CONFIG."
        ),
    )
    add_config_arguments(parser)
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue from output_dir/checkpoints/last.pt if it exists (else start): the same command "
        "starts and restarts a run",
    )
    add_threads_argument(parser)
    parser.add_argument("--resume-from", type=Path, metavar="CKPT", help="continue from this checkpoint")
    parser.set_defaults(run=run, prog=parser.prog)
    return parser


def run(args: argparse.Namespace) -> int:
    summary = train(load_experiment(args), resume=args.resume, resume_from=args.resume_from)
    lines = [f"Training done: {summary['steps']} steps, outputs in {summary['output_dir']}"]
    if summary["best_metric"] is not None:
        lines.append(
            f"best {summary['main_metric']}: {summary['best_metric']:.4f} at epoch {summary['best_epoch']} "
            f"({summary['best_checkpoint']})"
        )
    print_main(*lines)
    return 0
