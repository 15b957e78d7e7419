"""``hrnet ablate``: the paper's ablation studies at small scale, with a Markdown + PNG report."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError, did_you_mean
from ..experiments.studies import STUDIES
from ..io import write_text


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "ablate", help="run the paper's ablation studies at small scale and write a report",
        description="Train every variant of a study (fusion, resolution, maintenance, heads, operators, or all) "
                    "with the same seed, data and schedule on the synthetic pose and segmentation sets, evaluate, "
                    "and write a Markdown table and PNG chart with params/GFLOPs and the paper's figures.")
    p.add_argument("study", help=f"one of {', '.join(STUDIES)}, or 'all'")
    p.add_argument("--out", type=Path, default=Path("runs/ablations"), help="output folder (default runs/ablations)")
    p.add_argument("--tasks", nargs="+", choices=["pose", "segmentation"], help="only these tasks")
    p.add_argument("--epochs", type=int, help="override the small-scale schedule's epochs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--report", type=Path, help="also write the combined Markdown report here (e.g. docs/ablations.md)")
    p.add_argument("--report-only", action="store_true",
                   help="train nothing: write --report from the results already under --out")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides for every run")
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    from ..experiments.ablation import combined_report, run_study

    names = list(STUDIES) if args.study == "all" else [args.study]
    for name in names:
        if name not in STUDIES:
            raise ConfigError(f"unknown study {name!r}.{did_you_mean(name, STUDIES)} Known: {', '.join(STUDIES)}, all")
    if args.report_only:
        if not args.report:
            raise ConfigError("--report-only needs --report FILE (where to write the report)")
        missing = [str(args.out / n / "results.json") for n in names if not (args.out / n / "results.json").is_file()]
        if missing:
            raise ConfigError(f"--report-only: no results to report at {', '.join(missing)}; run the studies first")
    else:
        for name in names:
            run_study(name, args.out / name, tasks=args.tasks, seed=args.seed, epochs=args.epochs,
                      data_root=args.out / "data", extra=args.overrides)
            print(f"hrnet ablate: {name} -> {args.out / name / 'report.md'}")
    if args.report:
        write_text(args.report, combined_report(args.out, names, assets=args.report.parent))
        print(f"hrnet ablate: report -> {args.report}")
    return 0
