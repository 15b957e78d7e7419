import json

import pytest
import torch

from hrnet.tasks.detection.data import CategoryMap, CocoDetection
from hrnet.tasks.detection.evaluation import STAT_NAMES, detections_to_coco, evaluate_coco, write_results


@pytest.fixture(scope="module")
def coco_val(coco_detection):
    return CocoDetection(coco_detection / "annotations/instances_val2017.json", coco_detection / "val2017",
                         with_masks=True)


@pytest.fixture(scope="module")
def ground_truth_as_detections(coco_val) -> tuple[list[dict], list[int]]:
    """Every (non-crowd) ground-truth object as a detector output: box, label, score 1, mask probability."""
    outputs, image_ids = [], []
    for index in range(len(coco_val)):
        _, target = coco_val[index]
        outputs.append({"boxes": target["boxes"], "labels": target["labels"],
                        "scores": torch.ones(len(target["labels"])),
                        "masks": target["masks"][:, None].float()})
        image_ids.append(target["image_id"])
    return outputs, image_ids


def test_oracle_ground_truth_gives_ap_one(coco_val, ground_truth_as_detections, tmp_path):
    """Ground truth sent through the evaluation path (COCO results, JSON files, COCOeval) scores AP 1."""
    outputs, image_ids = ground_truth_as_detections
    paths = write_results(tmp_path, detections_to_coco(outputs, image_ids, coco_val.categories))
    assert [p.name for p in paths] == ["detections_bbox.json", "detections_segm.json"]
    for path, iou_type in zip(paths, ("bbox", "segm"), strict=True):
        results = json.loads(path.read_text())
        assert len(results) == sum(len(o["labels"]) for o in outputs) == 403  # 410 objects, 7 crowds
        stats, table = evaluate_coco(coco_val.coco, results, iou_type, image_ids)
        assert list(stats) == [f"{iou_type}_{name}" for name in STAT_NAMES]
        for name in ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR100"):
            assert stats[f"{iou_type}_{name}"] == pytest.approx(1.0), name
        assert "Average Precision" in table


def test_evaluation_is_not_trivially_perfect(coco_val, ground_truth_as_detections):
    outputs, image_ids = ground_truth_as_detections
    shifted = []
    for output in outputs:  # shift every box right by a quarter of its width: IoU 0.6 with its object
        boxes = output["boxes"].clone()
        boxes[:, [0, 2]] += (boxes[:, 2] - boxes[:, 0])[:, None] / 4
        shifted.append({**output, "boxes": boxes})
    results = detections_to_coco(shifted, image_ids, coco_val.categories)["bbox"]
    stats, _ = evaluate_coco(coco_val.coco, results, "bbox", image_ids)
    assert stats["bbox_AP50"] == pytest.approx(1.0, abs=0.01) and stats["bbox_AP75"] == 0.0
    assert 0.1 < stats["bbox_AP"] < 0.35


def test_results_use_file_category_ids_and_xywh_boxes():
    categories = CategoryMap((3, 9, 42), ("car", "boat", "kite"))
    output = {"boxes": torch.tensor([[10.0, 20.0, 30.0, 60.0], [0.0, 0.0, 5.0, 5.0], [1.0, 1.0, 2.0, 2.0]]),
              "labels": torch.tensor([3, 1, 0]), "scores": torch.tensor([0.9, 0.5, 0.7]),
              "masks": torch.zeros(3, 1, 8, 8)}
    output["masks"][0, 0, 2:4, 3:6] = 0.8
    results = detections_to_coco([output], [17], categories)
    assert [r["category_id"] for r in results["bbox"]] == [42, 3]  # label 0 (background) is dropped
    assert results["bbox"][0] == {"image_id": 17, "category_id": 42, "score": pytest.approx(0.9),
                                  "bbox": [10.0, 20.0, 20.0, 40.0]}
    from pycocotools import mask as mask_utils

    assert mask_utils.area(results["segm"][0]["segmentation"]) == 6
    assert mask_utils.area(results["segm"][1]["segmentation"]) == 0


def test_no_detections_score_zero(coco_val):
    stats, _ = evaluate_coco(coco_val.coco, [], "segm")
    assert stats == {f"segm_{name}": 0.0 for name in STAT_NAMES}
    with pytest.raises(ValueError, match="iou_type"):
        evaluate_coco(coco_val.coco, [], "keypoints")


class ReplayDetector(torch.nn.Module):
    """Answers each image with the next of a list of outputs (the ground truth, in the loader's order)."""

    def __init__(self, outputs: list[dict]) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.outputs = iter(outputs)

    def forward(self, images):
        return [next(self.outputs) for _ in images]


@pytest.mark.parametrize("name", ["cascade_rcnn_hrnetv2p_w18", "cascade_mask_rcnn_hrnetv2p_w18", "htc_hrnetv2p_w18"])
def test_ground_truth_through_each_cascade_s_evaluation_gives_ap_one(name, coco_detection, ground_truth_as_detections,
                                                                    tmp_path):
    """The detection task's evaluation of each cascade framework (bbox, plus segm for the mask ones, with
    the results files it writes) scores the ground truth AP 1 on the COCO sample."""
    from torch.utils.data import DataLoader

    from hrnet.engine.config import validate_config
    from hrnet.tasks.detection.models import ARCHITECTURES, split_detector_name
    from hrnet.tasks.detection.task import DetectionTask

    cfg = validate_config({"task": "detection", "model": {"name": name}, "data": {"root": str(coco_detection)},
                           "output_dir": str(tmp_path)})
    task = DetectionTask(cfg)
    dataset = task.build_dataset("val")
    outputs, image_ids = ground_truth_as_detections
    assert dataset.image_ids == image_ids
    masks = ARCHITECTURES[split_detector_name(name)[0]].predicts_masks
    outputs = [o if masks else {k: v for k, v in o.items() if k != "masks"} for o in outputs]
    loader = DataLoader(dataset, batch_size=8, collate_fn=task.collate_fn())
    metrics = task.evaluate(ReplayDetector(outputs), loader, tmp_path)
    iou_types = ("bbox", "segm") if masks else ("bbox",)
    assert sorted(p.name for p in tmp_path.glob("detections_*.json")) == [f"detections_{t}.json" for t in iou_types]
    for iou_type in iou_types:
        for stat in ("AP", "AP50", "AP75", "AR100"):
            assert metrics[f"{iou_type}_{stat}"] == pytest.approx(1.0), (iou_type, stat)
    assert masks == ("segm_AP" in metrics)
