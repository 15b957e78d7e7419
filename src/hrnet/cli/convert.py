"""``hrnet convert SRC DST.safetensors``: official, timm or OpenMMLab checkpoint -> safetensors + metadata JSON."""

from __future__ import annotations

import argparse
from pathlib import Path

from torch import nn

from ..errors import ConfigError
from ..models.registry import build_model
from ..models.weights import convert_checkpoint
from .common import parse_key_value


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "convert",
        help="convert an official/timm/OpenMMLab checkpoint to safetensors",
        description=(
            "Convert a checkpoint (official HRNet .pth in any saved form, timm hrnet_* weights, a whole mmpose / "
            "mmsegmentation / mmdetection HRNet model, or a weights-registry name) to a .safetensors file plus a "
            "metadata JSON beside it (source, SHA-256, architecture). With --model the weights are first loaded "
            "strictly into that preset (or detector preset), so the output is known to fit it and holds the "
            "model's key layout."
        ),
    )
    parser.add_argument("src", type=Path, metavar="SRC", help="checkpoint to convert")
    parser.add_argument("dst", type=Path, nargs="?", metavar="DST", help="output .safetensors file")
    parser.add_argument("--out", type=Path, metavar="DST", help="output .safetensors file (the same as DST)")
    parser.add_argument("--model", metavar="PRESET",
                        help="preset or detector preset the weights must fit (see hrnet info --list)")
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


def _model(name: str, options: dict) -> nn.Module:
    from ..tasks.detection.models import build_detector, list_detectors

    if name in list_detectors():
        return build_detector(name, **options)
    return build_model(name, **options)


def run(args: argparse.Namespace) -> int:
    if args.dst is None and args.out is None:
        raise ConfigError("missing the output file: hrnet convert SRC DST (or --out DST)")
    if None not in (args.dst, args.out) and args.dst != args.out:
        raise ConfigError(f"two output files, {args.dst} and --out {args.out}: give DST once")
    model = _model(args.model, dict(args.options)) if args.model else None
    target = args.dst or args.out
    out = target if target.suffix == ".safetensors" else target.with_suffix(".safetensors")
    info = convert_checkpoint(args.src, out, model=model)
    print(f"Wrote {out} ({info['tensors']} tensors: {info['architecture']}) and {out.with_suffix('.json')}")
    return 0
