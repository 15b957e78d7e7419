"""``hrnet data synth --task T --out DIR``: generate a synthetic dataset in a real format."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..synthetic import synthesize

SYNTH_TASKS = ("pose", "seg", "det", "cls")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("data", help="dataset tools", description="Dataset tools.")
    commands = parser.add_subparsers(dest="data_command", required=True, metavar="COMMAND")
    synth = commands.add_parser(
        "synth",
        help="generate a synthetic dataset",
        description=(
            "Generate a deterministic synthetic dataset in a real format: pose (COCO keypoints), seg "
            "(images + label PNGs), det (COCO instances), cls (ImageNet folders). The same arguments give "
            "the same files."
        ),
    )
    synth.add_argument("--task", required=True, choices=SYNTH_TASKS, help="which dataset")
    synth.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    synth.add_argument("--num-train", type=int, metavar="N", help="training images (default: per task)")
    synth.add_argument("--num-val", type=int, metavar="N", help="validation images (default: per task)")
    synth.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    synth.add_argument("--image-size", nargs=2, type=int, metavar=("H", "W"), help="image size (default: per task)")
    synth.add_argument("--overwrite", action="store_true", help="replace an existing different dataset in DIR")
    synth.add_argument("--stuff-maps", action="store_true",
                       help="det only: also write COCO-Stuff-style label maps (stuffthingmaps/<split>/), for HTC")
    synth.add_argument("--persons", nargs=2, type=int, metavar=("MIN", "MAX"),
                       help="pose only: MIN to MAX overlapping figures in every image (multi-person, bottom-up)")
    synth.set_defaults(run=run_synth, prog=synth.prog)
    return parser


def run_synth(args: argparse.Namespace) -> int:
    out = synthesize(
        args.task,
        args.out,
        num_train=args.num_train,
        num_val=args.num_val,
        seed=args.seed,
        image_size=tuple(args.image_size) if args.image_size else None,
        overwrite=args.overwrite,
        stuff_maps=args.stuff_maps,
        persons=tuple(args.persons) if args.persons else None,
    )
    print(f"Synthetic {args.task} dataset in {out}")
    return 0
