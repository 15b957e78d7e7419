"""Bad pose annotations: empty boxes are dropped and counted, a non-number field is named."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pytest

from hrnet.errors import DataError
from hrnet.tasks.pose.data import load_coco_instances
from hrnet.tasks.pose.meta import COCO_META
from hrnet.tasks.pose.transforms import sanitize_box

VAL_ANN = "coco_keypoints/annotations/person_keypoints_val2017.json"


def _edited_annotations(shared_data: Path, tmp_path: Path, edit) -> tuple[Path, Path]:
    data = json.loads((shared_data / VAL_ANN).read_text())
    edit(data["annotations"])
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps(data))  # NaN is written as the bare NaN that json (and pycocotools) read
    return ann, shared_data / "coco_keypoints/val2017"


def test_sanitize_box_refuses_empty_and_non_finite_sizes():
    assert sanitize_box([10, 20, 30, 40], 640, 480) == [10, 20, 29, 39]
    for box in ([10, 20, 0, 40], [10, 20, -5, 40], [10, 20, math.nan, 40], [10, 20, 30, math.inf],
                [math.nan, 20, 30, 40], [10, 20, 30, 0]):
        assert sanitize_box(box, 640, 480) is None, box


def test_boxes_of_zero_negative_or_nan_width_are_dropped_and_counted(shared_data, tmp_path, caplog):
    _, clean, clean_report = load_coco_instances(shared_data / VAL_ANN, shared_data / "coco_keypoints/val2017",
                                                 COCO_META, 0.75)

    def spoil(annotations):
        persons = [a for a in annotations if not a["iscrowd"] and max(a["keypoints"]) > 0 and a["area"] > 0]
        for ann, width in zip(persons[:3], (0, -12.5, math.nan), strict=True):
            ann["bbox"][2] = width

    ann, images = _edited_annotations(shared_data, tmp_path, spoil)
    with caplog.at_level(logging.WARNING):
        _, insts, report = load_coco_instances(ann, images, COCO_META, 0.75)
    assert len(insts) == len(clean) - 3
    assert report.dropped["empty box"] == clean_report.dropped.get("empty box", 0) + 3
    assert all(inst.scale.min() > 0 and math.isfinite(inst.scale.sum()) for inst in insts)
    assert f"dropped {report.dropped['empty box']} person box(es) that are empty" in caplog.text


@pytest.mark.parametrize("field", ["keypoints", "bbox"])
def test_a_string_in_a_numeric_field_names_the_annotation_and_the_field(shared_data, tmp_path, field):
    bad = {}

    def spoil(annotations):
        ann = next(a for a in annotations if not a["iscrowd"] and a["area"] > 0)
        ann[field][1] = "12,5"
        bad["id"] = ann["id"]

    ann, images = _edited_annotations(shared_data, tmp_path, spoil)
    with pytest.raises(DataError, match=rf"annotation id {bad['id']} .*field '{field}' that is not a list of numbers"):
        load_coco_instances(ann, images, COCO_META, 0.75)
