import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from hrnet.errors import DataError
from hrnet.tasks.detection.data import (
    CategoryMap,
    CocoDetection,
    annotation_mask,
    collate_detection,
    train_transforms,
)

VAL_ANN = "annotations/instances_val2017.json"


def write_dataset(root: Path, annotations: list[dict], categories: list[dict] | None = None,
                  size: tuple[int, int] = (40, 60)) -> Path:
    """A one-image COCO instances dataset under ``root`` (image 7, ``size`` = (height, width))."""
    import cv2

    (root / "images").mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(root / "images" / "a.png"), np.full((*size, 3), 128, np.uint8))
    dataset = {"images": [{"id": 7, "file_name": "a.png", "height": size[0], "width": size[1]}],
               "annotations": annotations,
               "categories": categories or [{"id": 3, "name": "car"}, {"id": 9, "name": "boat"}]}
    (root / "ann.json").write_text(json.dumps(dataset))
    return root


def box_ann(ann_id: int, bbox: list[float], category_id: int = 3, **extra) -> dict:
    x, y, w, h = bbox
    polygon = [[x, y, x + w, y, x + w, y + h, x, y + h]]
    return {"id": ann_id, "image_id": 7, "category_id": category_id, "bbox": bbox, "area": w * h,
            "iscrowd": 0, "segmentation": polygon, **extra}


def test_category_map_round_trips_non_contiguous_ids(coco_detection):
    categories = json.loads((coco_detection / VAL_ANN).read_text())["categories"]
    cmap = CategoryMap.from_categories(categories)
    assert len(cmap) == 80 and max(cmap.cat_ids) == 90
    assert [cmap.label(c) for c in cmap.cat_ids] == list(range(1, 81))
    assert all(cmap.cat_id(cmap.label(c["id"])) == c["id"] for c in categories)
    assert cmap.name(1) == "person" and cmap.cat_id(80) == 90


def test_sample_matches_the_annotation_file(coco_detection):
    dataset = CocoDetection(coco_detection / VAL_ANN, coco_detection / "val2017", with_masks=True)
    raw = json.loads((coco_detection / VAL_ANN).read_text())
    assert len(dataset) == len(raw["images"]) == 43
    image_id = 184324  # has a crowd annotation (RLE) beside polygons
    index = dataset.image_ids.index(image_id)
    image, target = dataset[index]
    anns = [a for a in raw["annotations"] if a["image_id"] == image_id and not a["iscrowd"]]
    assert any(a["iscrowd"] for a in raw["annotations"] if a["image_id"] == image_id)
    info = next(i for i in raw["images"] if i["id"] == image_id)
    assert image.dtype == torch.float32 and image.shape == (3, info["height"], info["width"])
    assert image.min() >= 0 and image.max() <= 1
    expected = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)])
    torch.testing.assert_close(target["boxes"], expected.float().clamp(min=0))
    assert target["labels"].tolist() == [dataset.categories.label(a["category_id"]) for a in anns]
    assert target["image_id"] == image_id
    assert target["masks"].shape == (len(anns), info["height"], info["width"])
    for mask, ann in zip(target["masks"], anns, strict=True):
        assert torch.equal(mask, torch.from_numpy(dataset.coco.annToMask(ann)))


def test_masks_from_polygon_and_both_rle_forms():
    h, w = 20, 30
    square = np.zeros((h, w), np.uint8)
    square[5:15, 10:22] = 1
    compressed = mask_utils.encode(np.asfortranarray(square))
    uncompressed = {"size": [h, w], "counts": _uncompressed_counts(square)}
    polygon = [[10, 5, 22, 5, 22, 15, 10, 15]]
    for segmentation in (compressed, {**compressed, "counts": compressed["counts"].decode()}, uncompressed):
        assert np.array_equal(annotation_mask({"id": 1, "segmentation": segmentation}, h, w), square)
    assert annotation_mask({"id": 1, "segmentation": polygon}, h, w).sum() == pytest.approx(square.sum(), rel=0.3)
    with pytest.raises(DataError, match="annotation 5 .*segmentation"):
        annotation_mask({"id": 5, "image_id": 2, "segmentation": []}, h, w)


def _uncompressed_counts(mask: np.ndarray) -> list[int]:
    """COCO's uncompressed RLE: run lengths of 0s and 1s in column-major order, starting with 0s."""
    flat = mask.flatten(order="F")
    counts, current, run = [], 0, 0
    for value in flat:
        if value != current:
            counts.append(run)
            current, run = value, 0
        run += 1
    return [*counts, run]


def test_degenerate_boxes_are_skipped_and_counted(tmp_path, caplog):
    anns = [box_ann(1, [5, 5, 20, 10]), box_ann(2, [8, 8, 0.5, 10]), box_ann(3, [10, 10, 12, 0]),
            box_ann(4, [70, 10, 5, 5]), box_ann(5, [2, 2, 4, 4], category_id=9)]  # 4 lies outside the image
    root = write_dataset(tmp_path, anns)
    with caplog.at_level(logging.WARNING):
        dataset = CocoDetection(root / "ann.json", root / "images")
    assert dataset.num_degenerate == 3
    assert "skipped 3 annotations" in caplog.text
    _, target = dataset[0]
    assert target["labels"].tolist() == [1, 2]
    assert target["boxes"].tolist() == [[5, 5, 25, 15], [2, 2, 6, 6]]


def test_unknown_category_is_an_error_naming_the_annotation(tmp_path):
    root = write_dataset(tmp_path, [box_ann(1, [5, 5, 20, 10]), box_ann(42, [1, 1, 5, 5], category_id=4)])
    with pytest.raises(DataError, match=r"annotation 42 \(image 7\).*category_id 4.*not in 'categories'"):
        CocoDetection(root / "ann.json", root / "images")


def test_undecodable_image_is_an_error_naming_the_file(tmp_path):
    root = write_dataset(tmp_path, [box_ann(1, [5, 5, 20, 10])])
    (root / "images" / "a.png").write_bytes(b"this is not a PNG file")
    dataset = CocoDetection(root / "ann.json", root / "images")
    with pytest.raises(DataError, match=r"cannot decode image .*a\.png"):
        dataset[0]
    (root / "images" / "a.png").unlink()
    with pytest.raises(DataError, match=r"image not found: .*a\.png"):
        dataset[0]


def test_bad_annotation_files_are_errors(tmp_path):
    with pytest.raises(DataError, match="annotation file not found"):
        CocoDetection(tmp_path / "missing.json", tmp_path)
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(DataError, match="broken.json is not valid JSON"):
        CocoDetection(tmp_path / "broken.json", tmp_path)
    root = write_dataset(tmp_path / "d", [{**box_ann(3, [5, 5, 20, 10]), "bbox": [1, 2]}])
    with pytest.raises(DataError, match=r"annotation 3 .*'bbox'"):
        CocoDetection(root / "ann.json", root / "images")


def test_crowd_and_empty_images_for_training(tmp_path):
    anns = [box_ann(1, [5, 5, 20, 10], iscrowd=1)]
    root = write_dataset(tmp_path, anns)
    assert len(CocoDetection(root / "ann.json", root / "images")) == 1
    assert len(CocoDetection(root / "ann.json", root / "images", skip_empty=True)) == 0
    _, target = CocoDetection(root / "ann.json", root / "images", with_masks=True)[0]
    assert target["boxes"].shape == (0, 4) and target["masks"].shape == (0, 40, 60)


def test_train_transforms_resize_and_flip_boxes_with_masks(tmp_path):
    root = write_dataset(tmp_path, [box_ann(1, [6, 4, 20, 10]), box_ann(2, [30, 20, 24, 16], category_id=9)])
    resize_only = CocoDetection(root / "ann.json", root / "images", train_transforms(80, 100, flip_prob=0.0),
                                with_masks=True)
    image, target = resize_only[0]
    assert image.shape == (3, int(40 * 100 / 60), 100)  # shorter side 80 would make the longer 120 > 100
    scale = 100 / 60
    torch.testing.assert_close(target["boxes"][0], torch.tensor([6, 4, 26, 14]) * scale, atol=0.5, rtol=0)
    flipped = CocoDetection(root / "ann.json", root / "images", train_transforms(80, 100, flip_prob=1.0),
                            with_masks=True)
    _, target_flipped = flipped[0]
    width = image.shape[2]
    torch.testing.assert_close(target_flipped["boxes"][:, [2, 0]], width - target["boxes"][:, [0, 2]])
    assert torch.equal(target_flipped["masks"], target["masks"].flip(-1))
    for box, mask in zip(target_flipped["boxes"], target_flipped["masks"], strict=True):
        ys, xs = torch.nonzero(mask, as_tuple=True)
        assert box[0] - 1 <= xs.min() and xs.max() <= box[2] and box[1] - 1 <= ys.min() and ys.max() <= box[3]


def test_collate_keeps_images_of_different_sizes(synthetic_det, coco_detection):
    a = CocoDetection(coco_detection / VAL_ANN, coco_detection / "val2017")[0]
    b = CocoDetection(synthetic_det / "annotations/instances_val.json", synthetic_det / "val")[0]
    images, targets = collate_detection([a, b])
    assert [tuple(i.shape) for i in images] == [tuple(a[0].shape), (3, 96, 128)]
    assert targets[1]["boxes"].shape[1] == 4
