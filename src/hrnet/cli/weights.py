"""``hrnet weights list|get|add``: the registry of released HRNet checkpoints and the local cache."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..models.download import add_weights, cached_weights, fetch_weights, weights_cache_dir
from ..models.zoo import TASKS, get_weights_entry, list_weights


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "weights", help="list, download and register released HRNet checkpoints",
        description="The registry of released HRNet checkpoints (official, timm, mmpose, mmsegmentation, "
                    "mmdetection). Downloaded and added files are checked, converted to safetensors and kept in "
                    "$HRNET_CACHE_DIR (default ~/.cache/hrnet/weights); every command that takes --weights, and "
                    "build_model(..., weights=NAME), accepts a registry NAME.")
    commands = parser.add_subparsers(dest="weights_command", required=True, metavar="COMMAND")
    show = commands.add_parser("list", help="list the registry", description="List the registry's checkpoints.")
    show.add_argument("--task", choices=[*TASKS, "seg", "cls", "det"], help="only this task's checkpoints")
    show.add_argument("--json", action="store_true", help="machine-readable output (all fields)")
    show.set_defaults(run=run_list, prog=show.prog)
    get = commands.add_parser(
        "get", help="download a checkpoint into the cache",
        description="Download NAME (progress bar; an interrupted download is resumed), check its SHA-256, and "
                    "convert it to safetensors in the cache. Prints the converted file's path.")
    get.add_argument("name", metavar="NAME", help="registry name (hrnet weights list)")
    get.add_argument("--force", action="store_true", help="convert again even if the cache has it")
    get.set_defaults(run=run_get, prog=get.prog)
    add = commands.add_parser(
        "add", help="register a checkpoint you downloaded by hand",
        description="Register FILE, downloaded by hand (e.g. from a share page), as NAME: its SHA-256 is "
                    "checked, it is copied into the cache and converted to safetensors.")
    add.add_argument("name", metavar="NAME", help="registry name (hrnet weights list)")
    add.add_argument("file", type=Path, metavar="FILE", help="the downloaded checkpoint")
    add.set_defaults(run=run_add, prog=add.prog)
    return parser


def run_list(args: argparse.Namespace) -> int:
    entries = list_weights(args.task)
    if args.json:
        print(json.dumps([{**vars(e), "cached": cached_weights(e).is_file()} for e in entries], indent=1))
        return 0
    width = max(len(e.name) for e in entries)
    print(f"{'name':<{width}}  {'preset':<24} {'from':<8} {'download':<8} {'licence':<10} description")
    for e in entries:
        how = "cached" if cached_weights(e).is_file() else "yes" if e.downloadable else "by hand"
        print(f"{e.name:<{width}}  {e.preset:<24} {e.origin:<8} {how:<8} {e.licence:<10} {e.description}")
    print(f"\n{len(entries)} checkpoints; cache: {weights_cache_dir()}. 'by hand': `hrnet weights get NAME` says "
          "where to download the file and `hrnet weights add NAME FILE` registers it.")
    return 0


def run_get(args: argparse.Namespace) -> int:
    entry = get_weights_entry(args.name)
    path = fetch_weights(entry, force=args.force)
    options = "".join(f" {k}={v}" for k, v in entry.overrides.items())
    print(f"{entry.name}: {path}\n  preset {entry.preset}{options}; licence {entry.licence}")
    return 0


def run_add(args: argparse.Namespace) -> int:
    entry = get_weights_entry(args.name)
    path = add_weights(entry, args.file)
    print(f"{entry.name}: registered {args.file} as {path}")
    return 0
