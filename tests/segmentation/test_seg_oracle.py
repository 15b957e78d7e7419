"""Ground truth fed back as one-hot logits through dataset -> inference -> confusion -> mIoU gives 1.0."""

import cv2
import numpy as np
import pytest
from seg_testutils import ColourOracle, LabelOracle, write_cityscapes
from torch.utils.data import DataLoader

from hrnet.engine.config import validate_config
from hrnet.tasks.segmentation.classes import CITYSCAPES_PALETTE, CITYSCAPES_TRAIN_TO_LABEL_ID, LIP_FLIP_PAIRS
from hrnet.tasks.segmentation.task import SegmentationTask


def _task(data: dict, eval_cfg: dict) -> SegmentationTask:
    cfg = validate_config(
        {"task": "segmentation", "model": {"name": "seg_hrnetv2_w18_small_v1"}, "data": data, "eval": eval_cfg}
    )
    return SegmentationTask(cfg)


def _evaluate(task: SegmentationTask, model, out_dir):
    loader = DataLoader(task.build_dataset("val"), batch_size=2, collate_fn=task.collate_fn())
    return task.evaluate(model, loader, out_dir)


def _label_oracle(task: SegmentationTask, swap=()) -> LabelOracle:
    pairs = [(item["image"], item["label"]) for item in task.build_dataset("val")]
    return LabelOracle(pairs, task.num_classes, swap)


@pytest.mark.parametrize("split", ["val", "train"])
def test_lip_oracle_with_flip_gives_miou_one(shared_data, tmp_path, split):
    task = _task(
        {"dataset": "lip", "root": str(shared_data / "segmentation_other/lip"), "val_split": split},
        {"flip_test": True, "native_resolution": True},
    )
    metrics = _evaluate(task, _label_oracle(task, LIP_FLIP_PAIRS), tmp_path)
    assert metrics["mIoU"] == 1.0 and metrics["pixel_acc"] == 1.0 and metrics["mean_acc"] == 1.0
    # the official all-class mean counts the 14 classes absent from this one image as 0
    assert metrics["mIoU_all_classes"] == pytest.approx(6 / 20)


def test_lip_flip_without_the_left_right_swap_is_caught(shared_data, tmp_path):
    # an oracle that does not exchange left/right on mirrored input disagrees with the flip test
    task = _task(
        {"dataset": "lip", "root": str(shared_data / "segmentation_other/lip")},
        {"flip_test": True, "native_resolution": True},
    )
    assert _evaluate(task, _label_oracle(task, swap=()), tmp_path)["mIoU"] < 1.0


def test_lip_oracle_through_the_official_473_resize(shared_data, tmp_path):
    task = _task({"dataset": "lip", "root": str(shared_data / "segmentation_other/lip")}, {"flip_test": True})
    metrics = _evaluate(task, _label_oracle(task, LIP_FLIP_PAIRS), tmp_path)
    assert 0.8 < metrics["mIoU"] < 1.0  # resized to 473x473 and back: only boundaries move


def test_ade20k_oracle_gives_miou_one(shared_data, tmp_path):
    task = _task(
        {"dataset": "ade20k", "root": str(shared_data / "segmentation_other/ade20k")},
        {"native_resolution": True, "mode": "whole"},
    )  # flip is covered by LIP and Cityscapes
    metrics = _evaluate(task, _label_oracle(task), tmp_path)
    assert metrics["mIoU"] == 1.0 and metrics["pixel_acc"] == 1.0
    report = (tmp_path / "per_class_iou.md").read_text()
    assert "| 0 | wall | 100.00 |" in report and "| 3 | floor | — |" in report


@pytest.mark.parametrize("mode", ["slide", "cityscapes"])
def test_synthetic_cityscapes_oracle_gives_miou_one(tmp_path, mode):
    expected = write_cityscapes(tmp_path / "cityscapes", "val", count=2, size=(48, 96))
    task = _task(
        {"dataset": "cityscapes", "root": str(tmp_path / "cityscapes")},
        {
            "flip_test": True,
            "native_resolution": True,
            "mode": mode,
            "crop_size": [32, 40],
            "scales": [1.0],
            "save_predictions": True,
        },
    )
    metrics = _evaluate(task, ColourOracle(CITYSCAPES_PALETTE), tmp_path / "eval")
    assert metrics["mIoU"] == 1.0 and metrics["mIoU_all_classes"] == 1.0
    # predictions exported as Cityscapes labelIds, equal to the ground truth where it is labelled
    label_ids = np.array(CITYSCAPES_TRAIN_TO_LABEL_ID)
    for i, train_ids in enumerate(expected):
        city = "synthcity" if i % 2 == 0 else "othercity"
        exported = cv2.imread(str(tmp_path / "eval/predictions" / f"{city}_{i:06d}_000019.png"), cv2.IMREAD_UNCHANGED)
        known = train_ids != 255
        np.testing.assert_array_equal(exported[known], label_ids[train_ids[known]])
