"""``hrnet info`` for the detectors: parameters beside the paper's Table 7, backbone + pyramid GFLOPs."""

import json

import pytest

from hrnet.cli.info import measure
from hrnet.cli.main import main
from hrnet.tasks.detection.models import PAPER_TABLE7


def test_info_detectors_reports_table7_in_both_units(capsys):
    assert main(["info", "--detectors", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["paper_params"]) for r in rows] == [(f"{a}_{b}", p) for a, b, p, _ in PAPER_TABLE7]
    for row in rows:
        assert row["params_m"] == pytest.approx(row["params"] / 1e6, abs=0.005)
        assert row["params_mib"] == pytest.approx(row["params"] / 2**20, abs=0.005)
        ours = row["params_mib"] if row["paper_unit"] == "2^20" else row["params_m"]
        if row["name"].startswith("centernet"):  # not reproducible: the note says what differs
            assert ours == pytest.approx(row["paper_params"], rel=0.04) and "not reproducible" in row["note"]
        elif row["name"].startswith(("cascade", "htc")):  # 0.01-0.17M under the paper (see the notes)
            assert ours == pytest.approx(row["paper_params"], rel=0.003), row["name"]
        else:
            assert ours == pytest.approx(row["paper_params"], abs=0.06), row["name"]  # the printed figure, rounded
        assert row["note"]
    by_name = {r["name"]: r for r in rows}
    # Faster R-CNN rows are / 2^20: Table 19's two-decimal figures
    for backbone, precise in (("w18", 26.18), ("w32", 45.04), ("w48", 79.42)):
        assert by_name[f"faster_rcnn_hrnetv2p_{backbone}"]["params_mib"] == precise
    # the backbone + pyramid of a two-stage detector is the hrnetv2p preset, on the padded 800x1216 input;
    # the one-stage pyramid's stride-2 convs cost less
    w18 = measure("hrnetv2p_w18", (800, 1216))["gflops"]
    assert by_name["faster_rcnn_hrnetv2p_w18"]["backbone_gflops"] == pytest.approx(w18, abs=0.01)
    assert by_name["fcos_hrnetv2p_w18"]["backbone_gflops"] < w18


def test_info_one_detector(capsys):
    assert main(["info", "mask_rcnn_hrnetv2p_w32"]) == 0
    out = capsys.readouterr().out
    assert "mask_rcnn_hrnetv2p_w32" in out and "49.9" in out and "49.87" in out and "mask head" in out
    assert main(["info", "retinanet_hrnetv2p_w18", "--set", "num_classes=4", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["overrides"] == {"num_classes": 4} and 10 < row["params_m"] < 30 and "paper_params" not in row
    assert main(["info", "retinanet_hrnetv2p_w18", "--set", "num_clases=4"]) == 2
    assert "num_clases" in capsys.readouterr().err
