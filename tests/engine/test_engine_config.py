from pathlib import Path

import pytest
import yaml
from engine_testutils import toy_config, write_config

from hrnet.engine.config import (
    ExperimentConfig,
    apply_overrides,
    config_to_dict,
    load_config,
    read_yaml_tree,
    save_config,
    validate_config,
)
from hrnet.errors import ConfigError


def test_valid_config_is_typed_and_task_sections_are_the_tasks(tmp_path):
    raw = toy_config(tmp_path, eval={"write_predictions": False}, loss={"kind": "l1"})
    cfg = validate_config(raw)
    assert isinstance(cfg, ExperimentConfig)
    assert type(cfg.data).__name__ == "ToyDataConfig" and cfg.data.root == Path(raw["data"]["root"])
    assert type(cfg.eval).__name__ == "ToyEvalConfig" and cfg.eval.write_predictions is False
    assert cfg.loss.kind == "l1"
    # defaults of the generic sections
    assert cfg.train.optimizer.weight_decay == 0.0  # Adam without weight decay unless asked
    assert cfg.eval.flip_test is True


@pytest.mark.parametrize(
    ("section", "key", "dotted", "suggestion"),
    [
        (None, "trian", "trian", "train"),
        ("train", "optimzer", "train.optimzer", "optimizer"),
        ("data", "num_trian", "data.num_trian", "num_train"),
        ("eval", "write_prediction", "eval.write_prediction", "write_predictions"),
    ],
)
def test_unknown_key_names_it_and_suggests_the_closest(tmp_path, section, key, dotted, suggestion):
    raw = toy_config(tmp_path)
    (raw if section is None else raw.setdefault(section, {}))[key] = 1
    with pytest.raises(ConfigError) as info:
        validate_config(raw)
    message = str(info.value)
    assert repr(dotted) in message
    assert f"Did you mean {suggestion!r}" in message


def test_unknown_nested_key_from_an_override(tmp_path):
    path = write_config(tmp_path / "toy.yaml", toy_config(tmp_path))
    with pytest.raises(ConfigError, match=r"'train\.schedule\.warmup_iter'.*Did you mean 'warmup_iters'"):
        load_config(path, ["train.schedule.warmup_iter=100"])


def test_bad_override_type_names_the_key(tmp_path):
    path = write_config(tmp_path / "toy.yaml", toy_config(tmp_path))
    with pytest.raises(ConfigError, match=r"train\.epochs: .*integer.*'ten'"):
        load_config(path, ["train.epochs=ten"])
    with pytest.raises(ConfigError, match=r"train\.optimizer\.name: .*'sgd', 'adam' or 'adamw'"):
        load_config(path, ["train.optimizer.name=rmsprop"])
    with pytest.raises(ConfigError, match="'train.epochs' is a value"):
        load_config(path, ["train.epochs.max=3"])
    with pytest.raises(ConfigError, match="key.sub=value"):
        load_config(path, ["train.epochs"])


def test_overrides_are_parsed_as_yaml(tmp_path):
    path = write_config(tmp_path / "toy.yaml", toy_config(tmp_path))
    cfg = load_config(
        path,
        [
            "train.optimizer.lr=1e-3",
            "train.schedule.name=multistep",
            "train.schedule.milestones=[3, 5]",
            "train.grad_clip=null",
            "train.amp=bf16",
            "model.overrides.hidden=8",
        ],
    )
    assert cfg.train.optimizer.lr == 1e-3
    assert cfg.train.schedule.milestones == [3, 5]
    assert cfg.train.grad_clip is None and cfg.train.amp == "bf16"
    assert cfg.model.overrides == {"hidden": 8}


def test_cross_field_checks(tmp_path):
    with pytest.raises(ConfigError, match=r"train\.optimizer: nesterov: true needs name: sgd"):
        validate_config(toy_config(tmp_path, train={"optimizer": {"name": "adam", "nesterov": True}}))
    with pytest.raises(ConfigError, match=r"train\.schedule: name: multistep needs milestones"):
        validate_config(toy_config(tmp_path, train={"schedule": {"name": "multistep"}}))
    with pytest.raises(ConfigError, match="device: expected auto, cpu"):
        validate_config(toy_config(tmp_path, device="gpu"))


def test_missing_files_and_keys(tmp_path):
    with pytest.raises(ConfigError, match="config file not found: .*nowhere.yaml"):
        load_config(tmp_path / "nowhere.yaml")
    raw = toy_config(tmp_path)
    raw["_base_"] = "base_missing.yaml"
    with pytest.raises(ConfigError, match="_base_ file not found: .*base_missing.yaml"):
        load_config(write_config(tmp_path / "child.yaml", raw))
    del raw["_base_"], raw["model"]
    with pytest.raises(ConfigError, match="missing required key 'model'"):
        validate_config(raw)


def test_unknown_task_and_unimportable_module(tmp_path):
    with pytest.raises(ConfigError, match="unknown task 'tyo'.*Did you mean 'toy'"):
        validate_config(toy_config(tmp_path, task="tyo"))
    with pytest.raises(ConfigError, match="cannot import module 'no_such_module'"):
        validate_config(toy_config(tmp_path, imports=["no_such_module"]))


def test_base_inheritance_merges_sections_and_replaces_lists(tmp_path):
    base = toy_config(tmp_path, train={"schedule": {"name": "multistep", "milestones": [1, 2, 3]}})
    write_config(tmp_path / "base.yaml", base)
    (tmp_path / "exp").mkdir()
    child = {"_base_": "../base.yaml", "train": {"epochs": 9, "schedule": {"milestones": [5]}}}
    write_config(tmp_path / "exp" / "child.yaml", child)
    merged = read_yaml_tree(tmp_path / "exp" / "child.yaml")
    assert merged["train"]["epochs"] == 9
    assert merged["train"]["batch_size"] == base["train"]["batch_size"]  # kept from the base
    assert merged["train"]["schedule"] == {"name": "multistep", "milestones": [5]}
    assert "_base_" not in merged


def test_base_cycle_is_an_error(tmp_path):
    write_config(tmp_path / "a.yaml", {"_base_": "b.yaml"})
    write_config(tmp_path / "b.yaml", {"_base_": "a.yaml"})
    with pytest.raises(ConfigError, match="cycle"):
        read_yaml_tree(tmp_path / "a.yaml")


def test_invalid_yaml_names_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("train: {epochs: [1, \n")
    with pytest.raises(ConfigError, match="broken.yaml is not valid YAML"):
        load_config(path)


def test_resolved_config_round_trips(tmp_path):
    raw = toy_config(tmp_path, train={"amp": True, "schedule": {"name": "poly", "per": "iter"}})
    del raw["output_dir"]
    path = write_config(tmp_path / "my_exp.yaml", raw)
    cfg = load_config(path, ["eval.write_predictions=false", "model.weights=init.pt"])
    assert cfg.output_dir == Path("runs/my_exp")  # default from the file name
    assert cfg.model.init_from == Path("init.pt")  # 'weights' is accepted for init_from
    save_config(cfg, tmp_path / "resolved.yaml")
    resolved = yaml.safe_load((tmp_path / "resolved.yaml").read_text())
    assert resolved["eval"]["write_predictions"] is False and resolved["data"]["num_train"] == 40
    again = load_config(tmp_path / "resolved.yaml")
    assert config_to_dict(again) == config_to_dict(cfg)


def test_apply_overrides_leaves_the_input_alone():
    raw = {"train": {"epochs": 1}}
    assert apply_overrides(raw, ["train.epochs=2", "new.key=x"]) == {"train": {"epochs": 2}, "new": {"key": "x"}}
    assert raw == {"train": {"epochs": 1}}


def test_loss_section_for_a_task_without_one(tmp_path):
    from engine_toy_task import ToyTask

    from hrnet.engine.task import register_task

    @register_task
    class ToyWithoutLoss(ToyTask):
        name = "toy_without_loss"
        LossConfig = None

    assert validate_config(toy_config(tmp_path, task="toy_without_loss")).loss == {}
    with pytest.raises(ConfigError, match="task 'toy_without_loss' takes no 'loss' section"):
        validate_config(toy_config(tmp_path, task="toy_without_loss", loss={"kind": "l1"}))
