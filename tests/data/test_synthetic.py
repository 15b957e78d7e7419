"""The synthetic datasets: real formats that the official evaluators accept, determinism, speed, safety."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from hrnet.data import shared_data_dir, synthesize
from hrnet.data.figures import COCO_KEYPOINT_NAMES, COCO_SKELETON
from hrnet.data.synthetic import CLS_CLASSES, DET_CATEGORIES, MANIFEST, SEG_CLASSES
from hrnet.errors import ConfigError, DataError

SMALL = {"num_train": 24, "num_val": 16}


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("synthetic")
    return {task: synthesize(task, root / task, seed=3, **SMALL) for task in ("pose", "seg", "det", "cls")}


def _quiet_coco(path: Path) -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))


def _gt_as_prediction_ap(gt: COCO, iou_type: str) -> float:
    """COCO AP when every ground-truth object is fed back as a prediction with score 1."""
    results = []
    for ann in gt.dataset["annotations"]:
        if iou_type == "keypoints" and ann["num_keypoints"] == 0:
            continue
        result = {"image_id": ann["image_id"], "category_id": ann["category_id"], "score": 1.0}
        if iou_type == "keypoints":
            result["keypoints"] = ann["keypoints"]
        elif iou_type == "bbox":
            result["bbox"] = ann["bbox"]
        else:
            result["segmentation"] = gt.annToRLE(ann)
        results.append(result)
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = COCOeval(gt, gt.loadRes(results), iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return float(evaluator.stats[0])


def _check_coco_images(coco: COCO, image_dir: Path) -> None:
    for image in coco.dataset["images"]:
        array = cv2.imread(str(image_dir / image["file_name"]))
        assert array is not None, image["file_name"]
        assert array.shape[:2] == (image["height"], image["width"])


@pytest.mark.parametrize("split", ["train", "val"])
def test_pose_layout_and_keypoint_semantics(datasets, split):
    path = datasets["pose"] / "annotations" / f"person_keypoints_{split}.json"
    coco = _quiet_coco(path)
    assert len(coco.getImgIds()) == SMALL[f"num_{split}"]
    category = coco.loadCats(1)[0]
    assert category["name"] == "person"
    assert tuple(category["keypoints"]) == COCO_KEYPOINT_NAMES and len(COCO_KEYPOINT_NAMES) == 17
    assert [tuple(p) for p in category["skeleton"]] == list(COCO_SKELETON)
    _check_coco_images(coco, datasets["pose"] / split)

    per_image = [len(coco.getAnnIds(imgIds=i)) for i in coco.getImgIds()]
    assert min(per_image) >= 1 and max(per_image) <= 3
    visibilities = []
    for ann in coco.dataset["annotations"]:
        image = coco.imgs[ann["image_id"]]
        kp = np.array(ann["keypoints"], dtype=float).reshape(17, 3)
        assert ann["num_keypoints"] == np.count_nonzero(kp[:, 2] > 0)
        assert set(np.unique(kp[:, 2])) <= {0, 1, 2}
        assert np.all(kp[kp[:, 2] == 0, :2] == 0)
        labelled = kp[kp[:, 2] > 0]
        assert np.all((labelled[:, 0] >= 0) & (labelled[:, 0] <= image["width"] - 1))
        assert np.all((labelled[:, 1] >= 0) & (labelled[:, 1] <= image["height"] - 1))
        x, y, w, h = ann["bbox"]
        assert w > 0 and h > 0 and x + w <= image["width"] + 1 and y + h <= image["height"] + 1
        assert ann["iscrowd"] == 0 and ann["area"] > 0 and ann["segmentation"]
        visibilities.extend(kp[:, 2].tolist())
    # Occlusion and truncation both occur, but most keypoints are visible.
    counts = np.bincount(np.array(visibilities, dtype=int), minlength=3)
    assert counts[2] > 0.6 * counts.sum() and counts[1] > 0


def test_pose_figures_face_the_camera(datasets):
    """The figure's left shoulder and hip lie to the image right of its right ones (a frontal person)."""
    coco = _quiet_coco(datasets["pose"] / "annotations" / "person_keypoints_train.json")
    names = {n: i for i, n in enumerate(COCO_KEYPOINT_NAMES)}
    for ann in coco.dataset["annotations"]:
        kp = np.array(ann["keypoints"], dtype=float).reshape(17, 3)
        for part in ("shoulder", "hip"):
            left, right = kp[names[f"left_{part}"]], kp[names[f"right_{part}"]]
            if left[2] > 0 and right[2] > 0:
                assert left[0] > right[0], (ann["id"], part)


def test_pose_main_person_is_large(datasets):
    coco = _quiet_coco(datasets["pose"] / "annotations" / "person_keypoints_train.json")
    for image_id in coco.getImgIds():
        tallest = max(ann["bbox"][3] for ann in coco.loadAnns(coco.getAnnIds(imgIds=image_id)))
        assert tallest >= 0.3 * coco.imgs[image_id]["height"]


@pytest.mark.parametrize("split", ["train", "val"])
def test_pose_ground_truth_as_prediction_scores_ap_1(datasets, split):
    coco = _quiet_coco(datasets["pose"] / "annotations" / f"person_keypoints_{split}.json")
    assert _gt_as_prediction_ap(coco, "keypoints") == pytest.approx(1.0)


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_det_ground_truth_as_prediction_scores_ap_1(datasets, iou_type):
    coco = _quiet_coco(datasets["det"] / "annotations" / "instances_val.json")
    assert _gt_as_prediction_ap(coco, iou_type) == pytest.approx(1.0)


def test_det_layout(datasets):
    coco = _quiet_coco(datasets["det"] / "annotations" / "instances_train.json")
    assert [c["id"] for c in coco.dataset["categories"]] == list(range(1, len(DET_CATEGORIES) + 1))
    _check_coco_images(coco, datasets["det"] / "train")
    per_image = [len(coco.getAnnIds(imgIds=i)) for i in coco.getImgIds()]
    assert min(per_image) >= 1 and max(per_image) >= 5  # several objects, some crowded images
    areas = [ann["area"] for ann in coco.dataset["annotations"]]
    assert max(areas) > 10 * min(areas)  # scale variety
    for ann in coco.dataset["annotations"]:
        assert all(len(polygon) >= 6 and len(polygon) % 2 == 0 for polygon in ann["segmentation"])
        # the box is the polygon's box
        rle = coco.annToRLE(ann)
        assert np.allclose(mask_utils.toBbox(rle), ann["bbox"], atol=0.01)


def test_seg_layout(datasets):
    root = datasets["seg"]
    meta = json.loads((root / "classes.json").read_text())
    assert [c["name"] for c in meta["classes"]] == list(SEG_CLASSES) and meta["ignore_index"] == 255
    assert all(len(c["color"]) == 3 for c in meta["classes"])
    seen = set()
    for split in ("train", "val"):
        images = sorted((root / "images" / split).glob("*.jpg"))
        labels = sorted((root / "labels" / split).glob("*.png"))
        assert [p.stem for p in images] == [p.stem for p in labels] and len(images) == SMALL[f"num_{split}"]
        for image_path, label_path in zip(images, labels, strict=True):
            label = cv2.imread(str(label_path), cv2.IMREAD_UNCHANGED)
            assert label.dtype == np.uint8 and label.ndim == 2
            assert label.shape == cv2.imread(str(image_path)).shape[:2]
            values = set(np.unique(label).tolist())
            assert values <= set(range(len(SEG_CLASSES))) | {255}
            seen |= values
    assert seen == set(range(len(SEG_CLASSES))) | {255}


def test_cls_layout(datasets):
    for split in ("train", "val"):
        folders = sorted(p.name for p in (datasets["cls"] / split).iterdir())
        assert folders == sorted(CLS_CLASSES)
        counts = [len(list((datasets["cls"] / split / c).glob("*.jpg"))) for c in CLS_CLASSES]
        assert sum(counts) == SMALL[f"num_{split}"] and max(counts) - min(counts) <= 1


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("task", ["pose", "seg", "det", "cls"])
def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, task):
    first = _digests(synthesize(task, tmp_path / "a", num_train=8, num_val=8, seed=5))
    second = _digests(synthesize(task, tmp_path / "b", num_train=8, num_val=8, seed=5))
    other = _digests(synthesize(task, tmp_path / "c", num_train=8, num_val=8, seed=6))
    assert first == second
    assert first.keys() - {MANIFEST} and all(
        first[k] != other[k] for k in first.keys() & other.keys() if k.endswith((".jpg", ".png"))
    )


def test_generation_is_fast(tmp_path):
    """100 pose and 100 cls images in well under a few seconds (CPU time: robust to a busy machine)."""
    start = time.process_time()
    synthesize("pose", tmp_path / "pose", num_train=80, num_val=20)
    synthesize("cls", tmp_path / "cls", num_train=80, num_val=20)
    assert time.process_time() - start < 5.0


def test_existing_folder_is_reused_refused_or_replaced(tmp_path):
    out = synthesize("classification", tmp_path / "d", num_train=8, num_val=8)
    stamp = (out / MANIFEST).stat().st_mtime_ns
    assert synthesize("cls", out, num_train=8, num_val=8) == out  # same arguments: reused as is
    assert (out / MANIFEST).stat().st_mtime_ns == stamp
    with pytest.raises(DataError, match="already exists"):
        synthesize("cls", out, num_train=16, num_val=8)
    synthesize("cls", out, num_train=16, num_val=8, overwrite=True)
    assert len(list((out / "train").rglob("*.jpg"))) == 16
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]  # no temporary folders left
    (tmp_path / "empty").mkdir()
    assert synthesize("cls", tmp_path / "empty", num_train=8, num_val=8) == tmp_path / "empty"
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="already exists"):
        synthesize("cls", tmp_path / "file", num_train=8, num_val=8)


def test_interrupted_generation_leaves_nothing(tmp_path, monkeypatch):
    import hrnet.data.synthetic as synthetic

    def broken(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(synthetic, "_write_cls", broken)
    with pytest.raises(KeyboardInterrupt):
        synthesize("cls", tmp_path / "d", num_train=8, num_val=8)
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(DataError, match="unknown synthetic task 'psoe'.*'pose'"):
        synthesize("psoe", tmp_path / "x")
    with pytest.raises(DataError, match="image_size"):
        synthesize("seg", tmp_path / "x", image_size=(16, 16))
    with pytest.raises(DataError, match="num_train"):
        synthesize("det", tmp_path / "x", num_train=0)


def test_shared_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("HRNET_SHARED_DATA", str(tmp_path))
    assert shared_data_dir() == tmp_path
    monkeypatch.delenv("HRNET_SHARED_DATA")
    with pytest.raises(ConfigError, match="HRNET_SHARED_DATA is not set"):
        shared_data_dir()


def test_pose_crowds_have_several_overlapping_people(tmp_path):
    """``persons``: every image holds that many figures, and neighbours overlap (boxes intersect)."""
    out = synthesize("pose", tmp_path / "crowd", num_train=12, num_val=4, image_size=(128, 128), persons=(2, 4))
    gt = _quiet_coco(out / "annotations" / "person_keypoints_train.json")
    counts = [len(gt.getAnnIds(imgIds=i)) for i in gt.getImgIds()]
    assert min(counts) >= 2 and max(counts) <= 4 and len(set(counts)) > 1

    def overlap(a, b):
        (ax, ay, aw, ah), (bx, by, bw, bh) = a["bbox"], b["bbox"]
        return min(ax + aw, bx + bw) > max(ax, bx) and min(ay + ah, by + bh) > max(ay, by)

    overlapping = [any(overlap(a, b) for a in anns for b in anns if a is not b)
                   for anns in (gt.loadAnns(gt.getAnnIds(imgIds=i)) for i in gt.getImgIds())]
    assert np.mean(overlapping) > 0.8
    assert _gt_as_prediction_ap(gt, "keypoints") == pytest.approx(1.0)
    assert json.loads((out / MANIFEST).read_text())["persons"] == [2, 4]
    with pytest.raises(DataError, match="persons"):
        synthesize("det", tmp_path / "x", persons=(2, 3))
    with pytest.raises(DataError, match="persons"):
        synthesize("pose", tmp_path / "y", persons=(3, 2))
