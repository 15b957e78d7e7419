"""The import rules of docs/architecture.md, checked on the source: each folder imports only the layers
below it (tasks never each other, deploy/ never cli/, engine/, tasks/; models/ never tasks/ or engine/;
inference/ sits between tasks/ and cli/, and only cli/ and the package's lazy ``hrnet.Inferencer`` import it)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import hrnet

PACKAGE = Path(hrnet.__file__).parent
FOUNDATION = {"errors", "io", "compat", "media"}
#: what each part of the package may import besides itself (docs/architecture.md, "Layers")
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "io": set(),
    "compat": set(),
    "media": {"errors", "io"},
    "models": FOUNDATION,
    "synthetic": FOUNDATION,
    "data": FOUNDATION | {"synthetic"},
    "engine": FOUNDATION | {"models"},
    "task": FOUNDATION | {"models", "engine"},  # every tasks/<name>/: no other task
    "deploy": FOUNDATION | {"models"},
    "experiments": FOUNDATION | {"models", "synthetic", "engine"},
    "inference": FOUNDATION | {"models", "synthetic", "engine", "tasks", "deploy"},
    "cli": FOUNDATION | {"models", "synthetic", "data", "engine", "tasks", "deploy", "experiments", "inference",
                         "package"},
    "package": FOUNDATION | {"models", "inference"},  # hrnet/__init__.py (Inferencer: imported on first use)
}


def _part(module: str) -> str | None:
    """``hrnet.tasks.pose.codecs`` -> ``tasks.pose``; ``hrnet.deploy.onnx`` -> ``deploy``; outside -> None."""
    parts = module.split(".")
    if parts[0] != "hrnet":
        return None
    if len(parts) == 1 or not any((PACKAGE / f"{parts[1]}{suffix}").exists() for suffix in ("", ".py")):
        return "package"  # hrnet itself, or a name defined in hrnet/__init__.py (e.g. __version__)
    return ".".join(parts[1:3]) if parts[1] == "tasks" and len(parts) > 2 else parts[1]


def _imports(source: str, module: str, is_package: bool) -> set[str]:
    """The absolute names of the modules ``source`` (the text of ``module``) imports."""
    package = module if is_package else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join([*base, node.module] if node.module else base)
            found |= {target} if node.module or not node.level else {f"{target}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return found


def _shared_by_tasks(part: str) -> bool:
    """``tasks.drawing``: a module directly in ``tasks/`` (not a task's folder), which every task may use."""
    return part.startswith("tasks.") and (PACKAGE / "tasks" / f"{part.removeprefix('tasks.')}.py").is_file()


def _violations(source: str, module: str, is_package: bool = False) -> list[str]:
    own = _part(module)
    if own == "tasks":  # tasks/__init__.py
        return []
    name, allowed = ("task", ALLOWED["task"]) if own.startswith("tasks.") else (own, ALLOWED[own])
    bad = []
    for target in _imports(source, module, is_package):
        other = _part(target)
        if other is None or other == own:
            continue
        if name == "task" and _shared_by_tasks(other):
            continue
        layer = "tasks" if other.startswith("tasks") and name in ("cli", "inference") else other
        if layer not in allowed:
            bad.append(f"{module} ({name}) imports {target}")
    return bad


FILES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_each_module_imports_only_the_layers_below_it(path):
    module = ".".join(("hrnet", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")
    assert _violations(path.read_text(), module, path.name == "__init__.py") == []


def test_the_rules_catch_forbidden_imports():
    assert _violations("from ..cli.common import model_from_source", "hrnet.deploy.onnx")
    assert _violations("from ..engine.task import Task", "hrnet.models.heads")
    assert _violations("import hrnet.tasks.pose", "hrnet.models.weights")
    assert _violations("from ..detection.models import build_detector", "hrnet.tasks.pose.task")
    assert _violations("from ...models import build_model\nfrom ...media import read_image",
                       "hrnet.tasks.pose.task") == []
    assert _violations("from ..tasks.pose.inference import load_boxes", "hrnet.cli.predict") == []
    assert _violations("from ..tasks.pose.task import PoseTask\nfrom ..deploy import deploy",
                       "hrnet.inference.inferencer") == []
    assert _violations("from ..cli.common import load_experiment", "hrnet.inference.inferencer")
    assert _violations("from ..inference import Inferencer", "hrnet.tasks.pose.task")
    assert _violations("from ..inference import Inferencer", "hrnet.engine.inference")
