"""The detectors added beside Faster R-CNN train under DDP: two processes (torchrun, gloo on CPU) run
``hrnet train`` on the synthetic set, every parameter gets a gradient on both ranks (DDP refuses
otherwise), and the gathered evaluation counts every validation image once."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hrnet.engine.checkpoint import load_checkpoint
from hrnet.engine.config import read_yaml_tree

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "detection" / "synthetic"


def _ddp_config(path: Path, name: str, root: Path, out: Path, tiny_backbone: dict, light_rcnn: dict) -> Path:
    raw = read_yaml_tree(CONFIGS / f"{name}.yaml")
    overrides = raw["model"]["overrides"]
    if name == "centernet_tiny":
        overrides.update(backbone={k: v for k, v in tiny_backbone.items() if k != "out_channels"}, head_channels=8)
        raw["data"].update(min_size=96, max_size=96)
    else:
        overrides.update(backbone=tiny_backbone, mask_channels=16, **light_rcnn)
        raw["data"].update(min_size=96, max_size=128)
    raw["data"]["root"] = str(root)
    raw["train"].update(epochs=1, batch_size=1, max_iters_per_epoch=2, log_every=1, eval_every=1)
    raw["output_dir"] = str(out)
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cascade_mask_rcnn_tiny", "htc_tiny", "centernet_tiny"])
def test_new_detectors_train_with_two_processes(name, synthetic_det_stuff, tmp_path, tiny_backbone, light_rcnn):
    config = _ddp_config(tmp_path / "ddp.yaml", name, synthetic_det_stuff, tmp_path / "run", tiny_backbone,
                         light_rcnn)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "hrnet.cli.main", "train", str(config), "--threads", "1"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("Training done: 2 steps") == 1  # only rank 0 reports
    checkpoint = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert checkpoint["global_iter"] == 2 and checkpoint["world_size"] == 2
    val = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in val if r["kind"] == "val"]
    assert len(val) == 1 and 0 <= val[0]["bbox_AP"] <= 1
