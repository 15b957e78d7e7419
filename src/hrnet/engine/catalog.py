"""The experiment configs shipped inside the package (``hrnet/configs/``), addressable by name.

A config's name is its path relative to that folder without ``.yaml``: ``pose/coco/hrnet_w32_256x192``.
Anything that accepts a config file accepts such a name too, so an installed package trains the paper's
experiments without a source checkout: ``hrnet train pose/coco/hrnet_w32_256x192 data.root=/data/coco``.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..errors import ConfigError, did_you_mean
from ..io import write_text

__all__ = ["ConfigEntry", "config_root", "list_configs", "find_config", "resolved_text", "copy_config"]

def config_root() -> Path:
    """The folder of the packaged configs (inside the installed package, or ``src/hrnet/configs``)."""
    return Path(str(importlib.resources.files("hrnet").joinpath("configs")))


@dataclass(frozen=True)
class ConfigEntry:
    """One packaged config: its name, file, and the first lines of its header comment."""

    name: str
    path: Path

    def header(self) -> list[str]:
        """The leading ``#`` comment lines, without the ``#``."""
        lines = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            if not line.startswith("#"):
                break
            lines.append(line.lstrip("#").strip())
        return lines

    @property
    def summary(self) -> str:
        """What the config is and the paper's figure it states: its first header paragraph, on one line."""
        header = self.header()
        paragraph = header[: header.index("")] if "" in header else header
        return " ".join(paragraph)


def list_configs(prefix: str = "") -> list[ConfigEntry]:
    """Every packaged experiment config whose name starts with ``prefix``, sorted by name (the ``base``
    files that others inherit from are included: they are configs too)."""
    root = config_root()
    entries = [ConfigEntry(p.relative_to(root).with_suffix("").as_posix(), p) for p in root.rglob("*.yaml")]
    return sorted((e for e in entries if e.name.startswith(prefix)), key=lambda e: e.name)


def find_config(name_or_path: str | Path) -> Path:
    """A config file: ``name_or_path`` itself when it is a file, else the packaged config of that name
    (``pose/coco/hrnet_w32_256x192``, with or without ``.yaml``, also with a leading ``configs/``)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    name = path.as_posix().removesuffix(".yaml").removeprefix("configs/")
    packaged = config_root() / f"{name}.yaml"
    if packaged.is_file():
        return packaged
    names = [entry.name for entry in list_configs()]
    raise ConfigError(f"config file not found: {name_or_path} (nor is {name!r} the name of a packaged config)."
                      f"{did_you_mean(name, names)} 'hrnet configs list' lists the {len(names)} packaged ones.")


def resolved_text(name_or_path: str | Path) -> str:
    """The config as one self-contained YAML text: its header comment, then its settings with the
    ``_base_`` files it inherits from merged in (what ``hrnet configs show`` prints and ``copy`` writes)."""
    from .config import read_yaml_tree

    path = find_config(name_or_path)
    header = "".join(f"# {line}\n" if line else "#\n" for line in ConfigEntry(path.stem, path).header())
    return header + yaml.safe_dump(read_yaml_tree(path), sort_keys=False)


def copy_config(name: str, destination: str | Path) -> Path:
    """Write the packaged config ``name``, its ``_base_`` files merged in so that the copy loads on its own,
    to ``destination`` (a file, or a folder that receives it under its own file name); never overwrites."""
    source = find_config(name)
    destination = Path(destination)
    target = destination / source.name if destination.is_dir() else destination
    if target.exists():
        raise ConfigError(f"{target} exists already; give another destination or remove it first")
    write_text(target, resolved_text(source))
    return target
