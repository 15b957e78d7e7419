"""``hrnet export`` and ``hrnet bench``: their options and code live in ``hrnet.cli.export``.

Without the deployment tools (``hrnet.deploy`` or its optional dependencies, ``pip install hrnet[onnx]``)
both commands still exist and say why they cannot run.
"""

from __future__ import annotations

import argparse
import importlib
from types import ModuleType

from ..errors import HRNetError

COMMANDS = {"export": "export a model for deployment (ONNX)", "bench": "measure inference speed"}


def _deploy_cli() -> tuple[ModuleType | None, str]:
    try:
        return importlib.import_module("hrnet.cli.export"), ""
    except ModuleNotFoundError as e:
        return None, f"module {e.name!r} is missing"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    deploy_cli, reason = _deploy_cli()
    if deploy_cli is not None:
        deploy_cli.add_export_parser(subparsers)
        deploy_cli.add_bench_parser(subparsers)
        return
    for name, summary in COMMANDS.items():
        parser = subparsers.add_parser(name, help=f"{summary} (not available: {reason})", description=summary)
        parser.add_argument("arguments", nargs=argparse.REMAINDER, help="the command's arguments")
        parser.set_defaults(run=_unavailable, prog=parser.prog, reason=reason)


def _unavailable(args: argparse.Namespace) -> int:
    raise HRNetError(
        f"`{args.prog}` is not available yet in this installation ({args.reason}); it needs hrnet.deploy and "
        "the optional dependencies: pip install 'hrnet[onnx]'."
    )
