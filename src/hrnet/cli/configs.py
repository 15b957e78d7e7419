"""``hrnet configs``: the experiment configs shipped with the package — list them, print one, copy one out."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from ..engine.catalog import copy_config, list_configs, resolved_text


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "configs", help="list, show or copy the packaged experiment configs",
        description="The experiment configs shipped with hrnet, one per paper experiment. Any command that takes a "
                    "CONFIG takes a name from this list (e.g. pose/coco/hrnet_w32_256x192) as well as a file.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    listing = actions.add_parser("list", help="names with what each config is and the paper's figure it states")
    listing.add_argument("prefix", nargs="?", default="", help="only names starting with this, e.g. pose/coco")
    show = actions.add_parser("show", help="print a config with its _base_ files merged in")
    show.add_argument("name", help="config name (see 'hrnet configs list') or file")
    copy = actions.add_parser("copy", help="copy a config out for editing (its _base_ files merged in)")
    copy.add_argument("name", help="config name (see 'hrnet configs list') or file")
    copy.add_argument("destination", type=Path, help="file or folder to write it to (never overwritten)")
    parser.set_defaults(run=run, action="list", prefix="")
    return parser


def run(args: argparse.Namespace) -> int:
    if args.action == "show":
        print(resolved_text(args.name), end="")
    elif args.action == "copy":
        print(f"wrote {copy_config(args.name, args.destination)}")
    else:
        for entry in list_configs(args.prefix):
            print(entry.name)
            if entry.summary:
                print(textwrap.fill(entry.summary, width=110, initial_indent="    ", subsequent_indent="    "))
    return 0
