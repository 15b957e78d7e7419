"""Dataset loading on the real samples, keypoint metas, and the bad inputs a user can feed in."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from hrnet.errors import ConfigError, DataError
from hrnet.tasks.pose.codecs import MSRAHeatmap
from hrnet.tasks.pose.datasets import (
    TopDownDataset,
    load_coco,
    load_coco_instances,
    load_detections,
    load_mpii_instances,
    read_image,
)
from hrnet.tasks.pose.meta import COCO_META, MPII_META, KeypointMeta, load_meta, resolve_meta

VAL_ANN = "coco_keypoints/annotations/person_keypoints_val2017.json"
DETS = "coco_keypoints/person_detection_results/COCO_val2017_detections_AP_H_56_person.json"


def _val(shared_data: Path, **kwargs):
    return load_coco_instances(shared_data / VAL_ANN, shared_data / "coco_keypoints/val2017", COCO_META, 0.75,
                               **kwargs)


def test_gt_instances_skip_crowd_and_keypointless_persons(shared_data):
    coco, insts, report = _val(shared_data)
    anns = coco.dataset["annotations"]
    expected = [a for a in anns if not a["iscrowd"] and max(a["keypoints"]) > 0]
    assert len(insts) == len(expected) == 67
    assert {x.ann_id for x in insts} == {a["id"] for a in expected}
    assert report.dropped == {"no keypoints": 28} and report.gt_boxes
    inst = insts[0]
    ann = next(a for a in anns if a["id"] == inst.ann_id)
    kpts = np.array(ann["keypoints"], dtype=float).reshape(17, 3)
    np.testing.assert_array_equal(inst.joints, kpts[:, :2])
    np.testing.assert_array_equal(inst.joints_vis, np.minimum(kpts[:, 2], 1))
    assert inst.image_path.is_file() and inst.score == 1.0


def test_train_split_and_images_without_persons(shared_data):
    root = shared_data / "coco_keypoints"
    coco, insts, _ = load_coco_instances(root / "annotations/person_keypoints_train2017.json",
                                         root / "train2017", COCO_META, 0.75)
    assert len(insts) == 66
    assert 70133 not in {x.image_id for x in insts} and 232357 not in {x.image_id for x in insts}


def test_detection_boxes(shared_data):
    _, insts, report = _val(shared_data, boxes="detections", det_file=shared_data / DETS)
    assert len(insts) == 118 and not report.gt_boxes
    assert {x.image_id for x in insts} == {785, 40083, 196141, 197388}
    assert all(x.joints_vis.all() for x in insts)
    _, kept, _ = _val(shared_data, boxes="detections", det_file=shared_data / DETS, det_score_thre=0.5)
    assert 0 < len(kept) < 118 and min(x.score for x in kept) >= 0.5


def test_detection_file_with_unknown_image_ids(shared_data, tmp_path):
    dets = json.loads((shared_data / DETS).read_text())
    dets.append({"image_id": 999999, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9})
    bad = tmp_path / "dets.json"
    bad.write_text(json.dumps(dets))
    with pytest.raises(DataError, match="999999"):
        _val(shared_data, boxes="detections", det_file=bad)
    bad.write_text(json.dumps([{"image_id": 785, "bbox": [1, 2, 3]}]))
    with pytest.raises(DataError, match="entry 0"):
        load_detections(bad, load_coco(shared_data / VAL_ANN), 1)
    with pytest.raises(DataError, match="does not exist"):
        _val(shared_data, boxes="detections", det_file=tmp_path / "nope.json")


def _copy_subset(shared_data: Path, tmp_path: Path, edit) -> tuple[Path, Path]:
    """A copy of the val annotations (edited by ``edit``) with links to the images."""
    data = json.loads((shared_data / VAL_ANN).read_text())
    edit(data)
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps(data))
    images = tmp_path / "images"
    images.mkdir()
    for img in data["images"]:
        src = shared_data / "coco_keypoints/val2017" / img["file_name"]
        if src.is_file():
            (images / img["file_name"]).symlink_to(src)
    return ann, images


def test_missing_image_is_named_or_skipped_and_counted(shared_data, tmp_path):
    ann, images = _copy_subset(shared_data, tmp_path, lambda d: None)
    missing = images / "000000000785.jpg"
    missing.unlink()
    with pytest.raises(DataError, match="000000000785.jpg"):
        load_coco_instances(ann, images, COCO_META, 0.75)
    _, insts, report = load_coco_instances(ann, images, COCO_META, 0.75, missing_images="skip")
    assert report.missing_images == [str(missing)]
    assert report.dropped["missing image"] == 1 and len(insts) == 66


def test_keypoints_of_the_wrong_length_name_the_annotation(shared_data, tmp_path):
    def truncate(d):
        d["annotations"][3]["keypoints"] = d["annotations"][3]["keypoints"][:-3]

    ann, images = _copy_subset(shared_data, tmp_path, truncate)
    bad_id = json.loads(ann.read_text())["annotations"][3]["id"]
    with pytest.raises(DataError, match=f"annotation id {bad_id}"):
        load_coco_instances(ann, images, COCO_META, 0.75)


def test_empty_image_list_and_broken_files(tmp_path):
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps({"images": [], "annotations": [], "categories": []}))
    with pytest.raises(DataError, match="lists no images"):
        load_coco(ann)
    ann.write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        load_coco(ann)
    with pytest.raises(DataError, match="does not exist"):
        load_coco(tmp_path / "missing.json")
    with pytest.raises(DataError, match="does not exist"):
        read_image(tmp_path / "missing.jpg")
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    with pytest.raises(DataError, match="cannot be decoded"):
        read_image(tmp_path / "bad.jpg")


def test_meta_mismatch_with_the_category(shared_data):
    with pytest.raises(DataError, match="17 keypoints"):
        load_coco_instances(shared_data / VAL_ANN, shared_data / "coco_keypoints/val2017", MPII_META, 0.75)


def test_mpii_official_json_layout(shared_data):
    root = shared_data / "mpii"
    insts, report = load_mpii_instances(root / "annot/test_mpii.json", root / "images")
    records = json.loads((root / "annot/test_mpii.json").read_text())
    assert len(insts) == len(records) == 5 and report.num_instances == 5
    rec, inst = records[0], insts[0]
    s = rec["scale"]
    np.testing.assert_allclose(inst.center, [rec["center"][0] - 1, rec["center"][1] + 15 * s - 1])
    np.testing.assert_allclose(inst.scale, [s * 1.25, s * 1.25])
    np.testing.assert_allclose(inst.joints, np.array(rec["joints"]) - 1)
    assert inst.image_id == 0 and inst.image_path.is_file()
    unlabelled = [x for x in insts if x.joints_vis.sum() == 14]
    assert len(unlabelled) == 2


def test_mpii_wrong_joint_count(shared_data, tmp_path):
    records = json.loads((shared_data / "mpii/annot/test_mpii.json").read_text())
    records[2]["joints"] = records[2]["joints"][:15]
    (tmp_path / "bad.json").write_text(json.dumps(records))
    with pytest.raises(DataError, match="record 2"):
        load_mpii_instances(tmp_path / "bad.json", shared_data / "mpii/images")


def test_custom_meta_file_by_names(tmp_path):
    path = tmp_path / "meta.yaml"
    path.write_text(
        "name: hand\nkeypoints: [wrist, thumb_l, thumb_r, tip]\nflip_pairs: [[thumb_l, thumb_r]]\n"
        "sigmas: [0.1, 0.05, 0.05, 0.02]\nskeleton: [[wrist, tip]]\nupper_body: [wrist]\n"
    )
    meta = load_meta(path)
    assert meta.flip_pairs == ((1, 2),) and meta.skeleton == ((0, 3),) and meta.upper_body_ids == (0,)
    assert meta.flip_index == [0, 2, 1, 3]
    np.testing.assert_array_equal(meta.weights[:, 0], [1, 1, 1, 1])
    assert KeypointMeta.from_dict(meta.to_dict()) == meta
    assert resolve_meta(str(path)) == meta and resolve_meta(None) is COCO_META and resolve_meta("mpii") is MPII_META
    path.write_text("keypoints: [a, b]\nsigmas: [0.1, 0.1]\nflip_pairs: [[a, c]]\n")
    with pytest.raises(ConfigError, match="'c'"):
        load_meta(path)
    path.write_text("keypoints: [a, b]\nsigmas: [0.1]\n")
    with pytest.raises(ConfigError, match="1 sigmas for 2"):
        load_meta(path)
    path.write_text("keypoints: [a]\nsigmas: [0.1]\nflip_pairz: []\n")
    with pytest.raises(ConfigError, match="flip_pairs"):
        load_meta(path)


def test_coco_meta_matches_the_annotation_file(shared_data):
    cat = load_coco(shared_data / VAL_ANN).loadCats(1)[0]
    assert list(COCO_META.keypoints) == cat["keypoints"]
    assert [(a + 1, b + 1) for a, b in COCO_META.skeleton] == [tuple(p) for p in cat["skeleton"]]
    assert [COCO_META.keypoints[i] for i in COCO_META.flip_index][1:3] == ["right_eye", "left_eye"]


def test_top_down_dataset_items(shared_data):
    _, insts, _ = _val(shared_data)
    codec = MSRAHeatmap((96, 128), (24, 32), 1.5)
    ds = TopDownDataset(insts[:4], codec, COCO_META)
    item = ds[1]
    assert item["image"].shape == (3, 128, 96) and item["target"].shape == (17, 32, 24)
    assert item["target_weight"].shape == (17, 1) and item["index"] == 1
    np.testing.assert_allclose(item["center"].numpy(), insts[1].center)
    expected, _ = codec.encode(codec.input_keypoints(insts[1].joints, insts[1].joints_vis, insts[1].center,
                                                     insts[1].scale), insts[1].joints_vis)
    np.testing.assert_array_equal(item["target"].numpy(), expected)
    weighted = TopDownDataset(insts[:4], codec, COCO_META, use_joint_weights=True)[1]["target_weight"]
    np.testing.assert_allclose(weighted.numpy(), item["target_weight"].numpy() * COCO_META.weights)


def test_training_augmentation_is_seeded_by_torch(shared_data):
    _, insts, _ = _val(shared_data)
    ds = TopDownDataset(insts[:3], MSRAHeatmap((96, 128), (24, 32), 1.5), COCO_META, train=True)
    torch.manual_seed(5)
    a = ds[0]
    torch.manual_seed(5)
    b = ds[0]
    c = ds[0]
    torch.testing.assert_close(a["image"], b["image"])
    assert not (torch.equal(b["image"], c["image"]) and b["rotation"] == c["rotation"])
    custom = KeypointMeta("x", COCO_META.keypoints, COCO_META.flip_pairs, COCO_META.sigmas)
    assert TopDownDataset(insts, ds.codec, custom, train=True).augment.half_body_prob == 0.0


def test_unreadable_image_at_load_time_names_it(shared_data, tmp_path):
    _, insts, _ = _val(shared_data)
    broken = tmp_path / "broken.jpg"
    shutil.copy(insts[0].image_path, broken)
    broken.write_bytes(broken.read_bytes()[:20])
    insts[0].image_path = broken
    with pytest.raises(DataError, match="broken.jpg"):
        TopDownDataset(insts[:1], MSRAHeatmap((96, 128), (24, 32)), COCO_META)[0]
