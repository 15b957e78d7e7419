"""``hrnet convert SRC --out DST.safetensors``: official or timm checkpoint -> safetensors + metadata JSON."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..models.registry import build_model
from ..models.weights import convert_checkpoint
from .common import parse_key_value


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "convert",
        help="convert an official/timm checkpoint to safetensors",
        description=(
            "Convert a checkpoint (official HRNet .pth in any saved form, timm hrnet_* weights) to a "
            ".safetensors file plus a metadata JSON beside it (source, SHA-256, architecture). With --model "
            "the weights are first loaded strictly into that preset, so the output is known to fit it."
        ),
    )
    parser.add_argument("src", type=Path, metavar="SRC", help="checkpoint to convert")
    parser.add_argument("--out", type=Path, required=True, metavar="DST", help="output .safetensors file")
    parser.add_argument("--model", metavar="PRESET", help="preset the weights must fit (see hrnet info --list)")
    parser.add_argument(
        "--set",
        dest="options",
        action="append",
        type=parse_key_value,
        default=[],
        metavar="KEY=VALUE",
        help="option of --model, e.g. num_classes=19 (repeatable)",
    )
    parser.set_defaults(run=run, prog=parser.prog)
    return parser


def run(args: argparse.Namespace) -> int:
    model = build_model(args.model, **dict(args.options)) if args.model else None
    out = args.out if args.out.suffix == ".safetensors" else args.out.with_suffix(".safetensors")
    info = convert_checkpoint(args.src, out, model=model)
    print(f"Wrote {out} ({info['tensors']} tensors: {info['architecture']}) and {out.with_suffix('.json')}")
    return 0
