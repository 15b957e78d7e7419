"""Packaged configs: addressable by name, listed with what they state, copied out so that they load alone."""

import pytest

from hrnet.cli.main import main
from hrnet.engine.catalog import config_root, copy_config, find_config, list_configs
from hrnet.engine.config import load_config, read_yaml_tree
from hrnet.errors import ConfigError


def test_configs_live_inside_the_package():
    import hrnet

    assert config_root().is_relative_to(hrnet.__path__[0])
    names = [entry.name for entry in list_configs()]
    assert "pose/coco/hrnet_w32_256x192" in names and "pose/synthetic/quickstart" in names
    assert all(not name.endswith(".yaml") for name in names)


@pytest.mark.parametrize("spelling", ["pose/coco/hrnet_w32_256x192", "pose/coco/hrnet_w32_256x192.yaml",
                                      "configs/pose/coco/hrnet_w32_256x192.yaml"])
def test_a_config_is_found_by_name(spelling):
    found = find_config(spelling)  # from a checkout's root, configs/... is the file itself (the same file)
    assert found.resolve() == (config_root() / "pose" / "coco" / "hrnet_w32_256x192.yaml").resolve()
    cfg = load_config(spelling, ["train.epochs=3"])
    assert cfg.model.name == "pose_hrnet_w32" and cfg.train.epochs == 3


def test_a_file_wins_over_a_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pose").mkdir()
    (tmp_path / "pose" / "mine.yaml").write_text("task: pose\n")
    assert find_config("pose/mine.yaml").resolve() == tmp_path / "pose" / "mine.yaml"


def test_an_unknown_name_suggests_close_ones():
    with pytest.raises(ConfigError, match=r"config file not found: pose/coco/hrnet_w32_256x19\b.*"
                                          r"Did you mean 'pose/coco/hrnet_w32_256x192'"):
        find_config("pose/coco/hrnet_w32_256x19")


def test_listing_states_the_papers_figure():
    entry = next(e for e in list_configs("detection/coco") if e.name.endswith("faster_rcnn_hrnetv2p_w18_1x"))
    assert "AP 36.2" in entry.summary and "Table 8" in entry.summary


def test_copy_merges_the_bases_and_loads_alone(tmp_path):
    name = "segmentation/cityscapes/hrnetv2_w48_ocr_512x1024"
    assert "_base_" in find_config(name).read_text()
    copied = copy_config(name, tmp_path)
    assert copied == tmp_path / "hrnetv2_w48_ocr_512x1024.yaml"
    assert "_base_" not in copied.read_text() and copied.read_text().startswith("#")
    assert read_yaml_tree(copied) == read_yaml_tree(find_config(name))
    with pytest.raises(ConfigError, match="exists already"):
        copy_config(name, copied)


def test_configs_command(tmp_path, capsys):
    assert main(["configs", "list", "pose/coco"]) == 0
    out = capsys.readouterr().out
    assert "pose/coco/hrnet_w48_384x288" in out and "detection/" not in out and "AP 74.4" in out
    assert main(["configs", "show", "pose/synthetic/quickstart"]) == 0
    assert "task: pose" in capsys.readouterr().out
    assert main(["configs", "copy", "pose/synthetic/quickstart", str(tmp_path / "q.yaml")]) == 0
    assert (tmp_path / "q.yaml").is_file()
    assert main(["configs", "show", "nope/none"]) == 2
    assert "config file not found" in capsys.readouterr().err
