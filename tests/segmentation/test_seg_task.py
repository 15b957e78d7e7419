"""The segmentation task inside the engine: configs, model, loss, training, evaluation, prediction."""

import json

import cv2
import numpy as np
import pytest
import torch
from seg_testutils import QuarterNet, write_cityscapes, write_folder_dataset
from torch.utils.data import DataLoader

from hrnet.engine.config import validate_config
from hrnet.engine.task import get_task_class
from hrnet.engine.trainer import train
from hrnet.errors import ConfigError, DataError
from hrnet.tasks.segmentation.classes import LIP_FLIP_PAIRS
from hrnet.tasks.segmentation.losses import OhemCrossEntropyLoss
from hrnet.tasks.segmentation.task import SegmentationTask

TINY = {"name": "seg_hrnetv2_w18_small_v1", "overrides": {"width": 8}}


def _config(data: dict, tmp_path, **sections) -> dict:
    return {
        "task": "segmentation",
        "model": TINY,
        "data": data,
        "output_dir": str(tmp_path / "run"),
        "device": "cpu",
        **sections,
    }


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "folder"
    write_folder_dataset(root, "train", count=4, num_classes=3, seed=0)
    write_folder_dataset(root, "val", count=2, num_classes=3, seed=1)
    return root


def _task(data, tmp_path, **sections) -> SegmentationTask:
    return SegmentationTask(validate_config(_config(data, tmp_path, **sections)))


def test_registered_and_every_section_is_strict(folder, tmp_path):
    assert get_task_class("segmentation") is SegmentationTask
    data = {"dataset": "folder", "root": str(folder)}
    with pytest.raises(ConfigError, match=r"unknown key 'data.crop_sise'.*'crop_size'"):
        validate_config(_config({**data, "crop_sise": [8, 8]}, tmp_path))
    with pytest.raises(ConfigError, match=r"unknown key 'loss.ohem_tresh'.*'ohem_thresh'"):
        validate_config(_config(data, tmp_path, loss={"ohem_tresh": 0.7}))
    with pytest.raises(ConfigError, match=r"unknown key 'eval.scale'.*'scales'"):
        validate_config(_config(data, tmp_path, eval={"scale": [1.0]}))
    with pytest.raises(ConfigError, match=r"data.dataset"):
        validate_config(_config({**data, "dataset": "cityscape"}, tmp_path))
    with pytest.raises(ConfigError, match=r"59 or 60 classes"):
        validate_config(_config({"dataset": "pascal_context", "root": "x", "num_classes": 61}, tmp_path))
    with pytest.raises(ConfigError, match=r"eval.scales"):
        validate_config(_config(data, tmp_path, eval={"scales": []}))


def test_dataset_defaults_are_the_official_recipes(tmp_path):
    city = validate_config(_config({"dataset": "cityscapes", "root": "c"}, tmp_path)).data
    assert (city.crop_size, city.base_size, city.scale_factor, city.eval_resize) == ((512, 1024), 2048, 16, "none")
    lip = validate_config(_config({"dataset": "lip", "root": "l"}, tmp_path)).data
    assert (lip.crop_size, lip.base_size, lip.scale_factor) == ((473, 473), 473, 11)
    assert (lip.eval_resize, lip.eval_size) == ("fixed", (473, 473))
    ade = validate_config(_config({"dataset": "ade20k", "root": "a"}, tmp_path)).data
    assert (ade.train_split, ade.val_split, ade.eval_resize, ade.eval_size, ade.eval_fit_stride) == (
        "training",
        "validation",
        "short_side",
        520,
        8,
    )
    ev = validate_config(_config({"dataset": "lip", "root": "l"}, tmp_path)).eval
    assert ev.flip_test is False and ev.scales == [1.0] and ev.fusion == "exp"


def test_inference_options_follow_dataset_and_model(shared_data, tmp_path):
    task = _task(
        {"dataset": "lip", "root": str(shared_data / "segmentation_other/lip")},
        tmp_path,
        eval={"flip_test": True, "scales": [0.75, 1.0]},
    )
    ocr = torch.nn.Module()
    ocr.cfg = type("Cfg", (), {"align_corners": True})()
    options = task.inference_options(ocr)
    assert options["flip_pairs"] == LIP_FLIP_PAIRS and options["align_corners"] is True
    assert (options["mode"], options["crop_size"], options["base_size"]) == ("base", (473, 473), 473)
    assert options["scales"] == (0.75, 1.0) and options["flip"] is True


def test_number_of_classes_and_model_family_are_checked(folder, shared_data, tmp_path):
    task = _task({"dataset": "folder", "root": str(folder)}, tmp_path)
    assert task.classes == ["c0", "c1", "c2"]
    assert task.build_model().eval()(torch.zeros(1, 3, 32, 32)).shape == (1, 3, 8, 8)
    with pytest.raises(ConfigError, match="num_classes=5 but dataset folder has 3 classes"):
        _task(
            {"dataset": "folder", "root": str(folder)},
            tmp_path,
            model={"name": TINY["name"], "overrides": {"width": 8, "num_classes": 5}},
        ).build_model()
    with pytest.raises(ConfigError, match="is a pose model"):
        _task({"dataset": "folder", "root": str(folder)}, tmp_path, model={"name": "pose_hrnet_w32"}).build_model()
    with pytest.raises(ConfigError, match="data.num_classes=19, but dataset lip has 20 classes"):
        _task({"dataset": "lip", "root": str(shared_data), "num_classes": 19}, tmp_path)


def test_compute_loss_ce_and_ocr_ohem(folder, tmp_path):
    data = {"dataset": "folder", "root": str(folder), "crop_size": [32, 32], "scale_range": [0.5, 1.0]}
    task = _task(data, tmp_path)
    batch = task.collate_fn()([task.build_dataset("train")[i] for i in range(2)])
    assert batch["image"].shape == (2, 3, 32, 32) and batch["label"].shape == (2, 32, 32)
    model = task.build_model()
    loss, extras = task.compute_loss(model, batch)
    loss.backward()
    assert loss.ndim == 0 and torch.isfinite(loss) and extras == {}

    ocr_model = {
        "name": "seg_hrnetv2_w18_ocr",
        "overrides": {"width": 8, "ocr_mid_channels": 16, "ocr_key_channels": 8},
    }
    ocr_task = _task(data, tmp_path, model=ocr_model, loss={"name": "ohem", "ohem_min_kept": 100})
    ocr = ocr_task.build_model()
    loss, _ = ocr_task.compute_loss(ocr, batch)
    assert torch.isfinite(loss)
    assert ocr_task._loss.balance_weights == (0.4, 1.0)
    assert isinstance(ocr_task._loss.criterion, OhemCrossEntropyLoss) and ocr_task._loss.criterion.align_corners

    with pytest.raises(ConfigError, match="loss.class_weights has 2 values for the 3 classes"):
        _task(data, tmp_path, loss={"class_weights": [1.0, 2.0]})
    with pytest.raises(ConfigError, match="loss.class_weights has 19 values for the 3 classes"):
        _task(data, tmp_path, loss={"class_weights": "cityscapes"})


def test_one_epoch_of_training_on_synthetic_data(tmp_path):
    from hrnet.data.synthetic import synthesize

    root = synthesize("seg", tmp_path / "seg", num_train=4, num_val=2, image_size=(48, 64))
    cfg = validate_config(
        _config(
            {"dataset": "folder", "root": str(root), "crop_size": [32, 32], "scale_range": [0.75, 1.25]},
            tmp_path,
            train={
                "epochs": 1,
                "batch_size": 2,
                "workers": 0,
                "optimizer": {"name": "sgd", "lr": 0.01, "weight_decay": 5e-4},
                "schedule": {"name": "poly", "per": "iter", "power": 0.9},
            },
        )
    )
    summary = train(cfg)
    assert summary["steps"] == 2 and 0.0 <= summary["last_metrics"]["mIoU"] <= 1.0
    report = json.loads((tmp_path / "run" / "eval" / "per_class_iou.json").read_text())
    assert list(report["IoU"]) == ["background", "disc", "square", "triangle", "star", "cross", "ring"]


def test_one_epoch_of_training_on_the_lip_sample(shared_data, tmp_path):
    data = {
        "dataset": "lip",
        "root": str(shared_data / "segmentation_other/lip"),
        "crop_size": [64, 64],
        "base_size": 64,
    }
    cfg = validate_config(
        _config(
            data,
            tmp_path,
            train={"epochs": 1, "batch_size": 1, "workers": 0},
            eval={"flip_test": True, "mode": "whole", "base_size": 128},
        )
    )
    summary = train(cfg)
    assert summary["steps"] == 1 and "mIoU" in summary["last_metrics"]
    assert (tmp_path / "run" / "eval" / "per_class_iou.png").stat().st_size > 1000


def test_evaluate_writes_the_report_and_predictions(tmp_path):
    write_cityscapes(tmp_path / "city", "val", count=1, size=(32, 64))
    task = _task(
        {"dataset": "cityscapes", "root": str(tmp_path / "city")},
        tmp_path,
        eval={"mode": "slide", "crop_size": [16, 32], "base_size": 64, "save_predictions": True},
    )
    model = QuarterNet(19).eval()
    loader = DataLoader(task.build_dataset("val"), batch_size=1, collate_fn=task.collate_fn())
    metrics = task.evaluate(model, loader, tmp_path / "eval")
    assert set(metrics) == {"mIoU", "pixel_acc", "mean_acc", "mIoU_all_classes"}
    for name in ("per_class_iou.md", "per_class_iou.json", "per_class_iou.png", "confusion_matrix.json"):
        assert (tmp_path / "eval" / name).is_file()
    conf = np.array(json.loads((tmp_path / "eval" / "confusion_matrix.json").read_text())["matrix"])
    assert conf.shape == (19, 19) and conf.sum() > 0
    saved = cv2.imread(str(tmp_path / "eval/predictions/synthcity_000000_000019.png"), cv2.IMREAD_UNCHANGED)
    assert saved.shape == (32, 64) and set(np.unique(saved)) <= {
        7,
        8,
        11,
        12,
        13,
        17,
        19,
        20,
        21,
        22,
        23,
        24,
        25,
        26,
        27,
        28,
        31,
        32,
        33,
    }


def test_predict_writes_label_and_overlay_pngs(shared_data, tmp_path):
    write_cityscapes(tmp_path / "city", "val", count=1, size=(32, 64))
    task = _task(
        {"dataset": "cityscapes", "root": str(tmp_path / "city")}, tmp_path, eval={"mode": "whole", "base_size": 64}
    )
    model = QuarterNet(19).eval()
    lip_image = shared_data / "segmentation_other/lip/TrainVal_images/val_images/86_185913.jpg"
    images = tmp_path / "city/leftImg8bit/val/synthcity"
    written = task.predict(model, [lip_image, images], tmp_path / "pred", alpha=0.3)
    names = sorted(p.name for p in written)
    assert names == [
        "86_185913_label.png",
        "86_185913_labelIds.png",
        "86_185913_overlay.png",
        "synthcity_000000_000019_leftImg8bit_label.png",
        "synthcity_000000_000019_leftImg8bit_labelIds.png",
        "synthcity_000000_000019_leftImg8bit_overlay.png",
    ]
    label = cv2.imread(str(tmp_path / "pred/86_185913_label.png"), cv2.IMREAD_UNCHANGED)
    overlay = cv2.imread(str(tmp_path / "pred/86_185913_overlay.png"))
    assert label.shape == (377, 130) and label.max() < 19 and overlay.shape == (377, 130, 3)
    with pytest.raises(DataError, match="input not found"):
        task.predict(model, [tmp_path / "missing.jpg"], tmp_path / "pred")
    with pytest.raises(ConfigError, match=r"unknown segmentation predict option\(s\) \['colour'\]"):
        task.predict(model, [lip_image], tmp_path / "pred", colour="red")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        task.predict(model, [tmp_path / "empty"], tmp_path / "pred")


def test_evaluating_an_unlabelled_split_is_an_error(tmp_path):
    write_cityscapes(tmp_path / "city", "test", count=1, size=(32, 64))
    task = _task(
        {"dataset": "cityscapes", "root": str(tmp_path / "city"), "val_split": "test"},
        tmp_path,
        eval={"mode": "whole", "base_size": 64},
    )
    loader = DataLoader(task.build_dataset("val"), batch_size=1, collate_fn=task.collate_fn())
    with pytest.raises(DataError, match="split 'test' of .* has no labels"):
        task.evaluate(QuarterNet(19), loader, tmp_path / "eval")
