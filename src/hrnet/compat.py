"""Old module paths kept importable after a module moved (``import hrnet.tasks.pose.datasets`` still works).

A package that renamed a module calls :func:`alias_modules` from its ``__init__``; the alias is the
moved module itself, not a copy, so its names and their identity are unchanged.
"""

from __future__ import annotations

import importlib
import sys

__all__ = ["alias_modules"]


def alias_modules(aliases: dict[str, str]) -> None:
    """Make each old dotted module name (key) refer to the module now at the new name (value)."""
    for old, new in aliases.items():
        module = importlib.import_module(new)
        sys.modules[old] = module
        parent, _, name = old.rpartition(".")
        setattr(sys.modules[parent], name, module)
