"""The ``hrnet`` command: ``hrnet <subcommand> --help`` documents each subcommand.

Exit codes: 0 success; 2 a problem the user can fix (bad config, missing or invalid data, unusable
checkpoint, output folder in use, full disk), reported as one paragraph on stderr; 130 interrupted
(SIGINT) and 143 terminated (SIGTERM), after ``hrnet train`` saved a resumable checkpoint. Anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Sequence

import torch

from .. import __version__
from ..engine.faults import TrainingInterrupted
from ..errors import HRNetError
from . import ablate, configs, convert, data, deploy, evaluate, info, predict, quickstart, train, weights
from .common import is_main_process_env

#: a config override on the command line: ``key.sub=value``
OVERRIDE = re.compile(r"^[A-Za-z_][\w-]*(\.[\w-]+)*=")
COMMANDS = [quickstart, train, evaluate, predict, deploy, convert, weights, configs, data, ablate]


def _add_info(subparsers: argparse._SubParsersAction) -> None:
    info.add_parser(subparsers)
    subparsers.choices["info"].set_defaults(run=info.run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hrnet",
        description="HRNet for pose estimation, segmentation, detection and classification.",
        epilog="Run 'hrnet COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"hrnet {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_info(subparsers)
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


class _StderrHandler(logging.StreamHandler):
    """Writes to the current ``sys.stderr``, which may have been replaced since (tests, progress bars)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure_logging() -> None:
    """Show the package's progress messages (dataset sizes, evaluation tables) on stderr: INFO on the main
    process, warnings only on the others."""
    log = logging.getLogger("hrnet")
    if not log.handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.INFO if is_main_process_env() else logging.WARNING)


def _subcommand_parser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The (innermost) subcommand parser ``args`` were parsed with, e.g. ``hrnet weights get``'s."""
    while True:
        action = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        name = getattr(args, action.dest, None) if action is not None else None
        if name not in getattr(action, "choices", {}):
            return parser
        parser = action.choices[name]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse a command line; ``KEY=VALUE`` config overrides are accepted anywhere on it (before or after the
    options), and any other leftover is a usage error printed with the subcommand's usage."""
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    takes_overrides = isinstance(getattr(args, "overrides", None), list)
    if takes_overrides and isinstance(getattr(args, "inputs", None), list):  # predict: INPUTs and overrides mix
        tokens = args.inputs + [t for t in extras if not t.startswith("-")]
        extras = [t for t in extras if t.startswith("-")]
        args.overrides += [t for t in tokens if OVERRIDE.match(t) and not os.path.exists(t)]
        args.inputs = [t for t in tokens if t not in args.overrides]
        if not args.inputs:
            _subcommand_parser(parser, args).error("the following arguments are required: INPUT")
    if extras:
        if not takes_overrides or not all(OVERRIDE.match(t) for t in extras):
            odd = [t for t in extras if not (takes_overrides and OVERRIDE.match(t))]
            _subcommand_parser(parser, args).error(f"unrecognized arguments: {' '.join(odd)}")
        args.overrides += extras
    return args


def error_message(error: HRNetError) -> str:
    """The one-paragraph message of ``error``; one raised in a DataLoader worker reaches the main
    process wrapped in the worker's traceback, whose last line is the original message."""
    text = str(error)
    if text.startswith("Caught ") and "Original Traceback" in text:
        text = text.strip().splitlines()[-1].split(": ", 1)[-1]
    return text


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if getattr(args, "threads", None):  # --threads of the compute commands
        torch.set_num_threads(args.threads)
    configure_logging()
    prog = getattr(args, "prog", f"hrnet {args.command}")
    if not is_main_process_env():  # under torchrun: say which process
        prog = f"[rank {os.environ['RANK']}] {prog}"
    try:
        return args.run(args)
    except TrainingInterrupted as e:  # a checkpoint was saved: not an error
        print(f"{prog}: {e}", file=sys.stderr)
        return e.exit_code
    except HRNetError as e:
        print(f"{prog}: error: {error_message(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
