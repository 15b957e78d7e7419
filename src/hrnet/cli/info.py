"""``hrnet info``: parameters and GFLOPs of a preset (paper convention), the whole model zoo, or the
detectors beside the paper's Table 7."""

from __future__ import annotations

import argparse
import json
from typing import Any

import torch
import yaml

from ..errors import ConfigError
from ..models.complexity import complexity, matches_printed
from ..models.registry import PRESETS, build_model, get_preset
from ..tasks.detection.models import (
    PAPER_TABLE7,
    ParamsRow,
    format_params_table,
    list_detectors,
    measure_detector,
    paper_params_table,
    split_detector_name,
    table7_input,
)

# The paper's ablation variants with their own complexity (Sec. 4.5), shown by ``--all``.
ABLATION_ROWS = [
    ("pose_hrnet_w32", {"resolution": "all_from_start"}),
    ("pose_hrnet_w32", {"resolution": "high_only"}),
    ("pose_hrnet_w32", {"fusion": "across"}),
    ("pose_hrnet_w32", {"fusion": "final"}),
    ("pose_hrnet_w32", {"representation": "v1h"}),
    ("pose_hrnet_w32", {"representation": "v2"}),
]


def measure(name: str, input_size: tuple[int, int], **overrides: Any) -> dict[str, Any]:
    """Complexity of a preset built on the meta device (no memory, no compute), GFLOPs in the convention
    of the preset's published figures (multiply-adds / 1024^3, or / 1e9 for HigherHRNet)."""
    with torch.device("meta"):
        model = build_model(name, **overrides)
    c = complexity(model, input_size)
    giga = get_preset(name).giga
    return {"name": name, "overrides": overrides, "input": list(input_size), "params": c.params,
            "params_m": round(c.params_m, 2), "gflops": round(c.macs / giga, 2),
            "gflops_unit": "1e9" if giga == 1e9 else "1024^3"}


def zoo_rows() -> list[dict[str, Any]]:
    """One row per preset and quoted input size, with the paper's figures where it gives them."""
    rows = []
    for name, preset in sorted(PRESETS.items()):
        if preset.builder is not None:  # the detectors have their own table (--detectors)
            continue
        for fig in preset.paper or [None]:
            row = measure(name, fig.input_size if fig else preset.input_size)
            if fig:
                row.update(paper_params=fig.params, paper_gflops=fig.gflops, source=fig.source,
                           matches=matches_printed(row["params_m"], fig.params)
                           and matches_printed(row["gflops"], fig.gflops))
            rows.append(row)
    return rows


def markdown_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| model | options | input | params (M) | GFLOPs | paper params (M) | paper GFLOPs | source |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        opts = ", ".join(f"{k}={v}" for k, v in r["overrides"].items()) or ""
        paper = (r.get("paper_params", ""), r.get("paper_gflops", ""))
        mark = {True: " ✓", False: " ✗"}.get(r.get("matches"), "")
        lines.append(f"| {r['name']} | {opts} | {r['input'][0]}×{r['input'][1]} | {r['params_m']:.2f} | "
                     f"{r['gflops']:.2f} | {paper[0]} | {paper[1]}{mark} | {r.get('source', '')} |")
    return "\n".join(lines)


def _parse_option(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    return key, yaml.safe_load(value)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser("info", help="params and GFLOPs of a model (paper convention)",
                              description="Print parameters and GFLOPs (multiply-adds of conv and linear layers "
                                          "/ 1024^3, the HRNet papers' convention; / 1e9 for HigherHRNet, as its "
                                          "README) of a preset, or with --all the model-zoo table beside the "
                                          "paper's figures.")
    p.add_argument("name", nargs="?", help="preset name (see --list), or a detector such as faster_rcnn_hrnetv2p_w18")
    p.add_argument("--input", nargs=2, type=int, metavar=("H", "W"), help="input size (default: the preset's)")
    p.add_argument("--set", dest="options", action="append", type=_parse_option, default=[], metavar="KEY=VALUE",
                   help="model option, e.g. --set resolution=all_from_start (repeatable)")
    p.add_argument("--all", action="store_true", help="the model-zoo table with the paper's figures")
    p.add_argument("--detectors", action="store_true",
                   help="the detectors' parameters beside the paper's Table 7 (800x1200 input)")
    p.add_argument("--list", action="store_true", help="list preset names")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def run(args: argparse.Namespace) -> int:
    if args.list:
        for name, preset in sorted(PRESETS.items()):
            if preset.builder is None:
                print(f"{name:28s} {preset.description}")
        print(f"detectors (hrnet info NAME, --detectors): {', '.join(list_detectors())}")
        return 0
    if args.all:
        rows = zoo_rows()
        ablations = [measure(n, PRESETS[n].input_size, **o) for n, o in ABLATION_ROWS]
        if args.json:
            print(json.dumps({"models": rows, "ablations": ablations}, indent=1))
        else:
            print(markdown_table(rows))
            print("\nAblation variants (paper Sec. 4.5):\n")
            print(markdown_table(ablations))
        return 0
    if args.detectors:
        return _print_detectors(paper_params_table(), args.json)
    if not args.name:
        raise SystemExit("hrnet info: give a preset name, --all, --detectors or --list")
    if args.name in list_detectors():
        return _print_detector(args.name, dict(args.options), args.json)
    preset = get_preset(args.name)
    sizes = [tuple(args.input)] if args.input else [f.input_size for f in preset.paper] or [preset.input_size]
    rows = [measure(args.name, size, **dict(args.options)) for size in sizes]
    for row in rows:
        fig = next((f for f in preset.paper if list(f.input_size) == row["input"]), None)
        if fig and not args.options:
            row.update(paper_params=fig.params, paper_gflops=fig.gflops, source=fig.source)
    if args.json:
        print(json.dumps(rows if len(rows) > 1 else rows[0], indent=1))
        return 0
    for row in rows:
        paper = ""
        if "source" in row:
            paper = f"   (paper: {row['paper_params']}M / {row['paper_gflops']}, {row['source']})"
        opts = "".join(f" {k}={v}" for k, v in row["overrides"].items())
        unit = " (multiply-adds / 1e9)" if row["gflops_unit"] == "1e9" else ""
        print(f"{row['name']}{opts} @ {row['input'][0]}x{row['input'][1]}: {row['params_m']:.2f}M params, "
              f"{row['gflops']:.2f} GFLOPs{unit}{paper}")
    return 0


def _detector_json(name: str, params: int, gflops: float, **extra: Any) -> dict[str, Any]:
    return {"name": name, **extra, "params": params, "params_m": round(params / 1e6, 2),
            "params_mib": round(params / 2**20, 2), "input": list(table7_input(split_detector_name(name)[0])),
            "backbone_gflops": round(gflops, 2)}


def _print_detectors(rows: list[ParamsRow], as_json: bool) -> int:
    if as_json:
        print(json.dumps([_detector_json(f"{r.arch}_{r.backbone}", r.params, r.backbone_gflops, paper_params=r.paper,
                                         paper_unit="2^20" if r.unit == 2**20 else "10^6", note=r.note)
                          for r in rows], indent=1))
    else:
        print("Detectors beside the paper's Table 7 (COCO, 80 categories, backbone BN frozen but in CenterNet; "
              "trainable parameters):\n")
        print(format_params_table(rows))
    return 0


def _print_detector(name: str, options: dict[str, Any], as_json: bool) -> int:
    """One detector preset: beside its Table 7 row when it has one (and no options change it)."""
    arch, backbone = split_detector_name(name)
    try:
        params, gflops = measure_detector(arch, backbone, **options)
    except TypeError as e:
        raise ConfigError(f"hrnet info {name}: {e}") from None
    paper = next((row for row in PAPER_TABLE7 if row[:2] == (arch, backbone)), None)
    if paper and not options:
        return _print_detectors([ParamsRow(arch, backbone, paper[2], params, paper[3], gflops)], as_json)
    if as_json:
        print(json.dumps(_detector_json(name, params, gflops, overrides=options), indent=1))
    else:
        opts = "".join(f" {k}={v}" for k, v in options.items())
        what, (height, width) = "network" if arch == "centernet" else "backbone + pyramid", table7_input(arch)
        print(f"{name}{opts}: {params / 1e6:.2f}M params (= {params / 2**20:.2f} x 2^20), {what} "
              f"{gflops:.2f} GFLOPs @ {height}x{width} (no row of the paper's Table 7)")
    return 0
