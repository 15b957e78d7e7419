"""The quickstart end to end on a tiny synthetic set (the real one is larger and trains longer)."""

import json

from hrnet.cli import quickstart
from hrnet.cli.main import main
from hrnet.data.synthetic import synthesize


def test_quickstart_writes_every_output(tmp_path, monkeypatch, capsys):
    def tiny_synthesize(task, out):
        return synthesize(task, out, num_train=8, num_val=3, image_size=(96, 128))

    monkeypatch.setattr(quickstart, "synthesize", tiny_synthesize)
    out = tmp_path / "qs"
    overrides = ["train.epochs=1", "train.batch_size=4", "train.workers=0", "train.max_iters_per_epoch=2"]
    overrides += ["model.overrides.width=8", "data.input_size=[64,64]", "eval.flip_test=false"]
    assert main(["quickstart", "--out", str(out), "--overlays", "2", *overrides]) == 0
    printed = capsys.readouterr().out
    assert "COCO keypoint AP on the synthetic val split" in printed

    assert (out / "checkpoints" / "last.pt").is_file() and (out / "checkpoints" / "best.pt").is_file()
    assert any(r["kind"] == "val" and "AP" in r for r in map(json.loads, (out / "metrics.jsonl").open()))
    assert (out / "curves.png").is_file()
    assert json.loads((out / "eval" / "keypoints_val_results.json").read_text())
    assert len(list((out / "overlays").glob("*.png"))) == 2
    # run again: data and training are already there, so it only redraws
    assert main(["quickstart", "--out", str(out), "--overlays", "1", *overrides]) == 0
    assert "Resuming from" in capsys.readouterr().err


def test_quickstart_config_is_found():
    assert quickstart.find_quickstart_config().name == "quickstart.yaml"
