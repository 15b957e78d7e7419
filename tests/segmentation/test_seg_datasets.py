import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from seg_testutils import write_cityscapes, write_folder_dataset

from hrnet.errors import DataError
from hrnet.tasks.segmentation.classes import cityscapes_label_to_train_lut, official_palette
from hrnet.tasks.segmentation.datasets import (
    ADE20KDataset,
    CityscapesDataset,
    EvalResize,
    FolderDataset,
    LIPDataset,
    PascalContextDataset,
    TrainAugment,
    collate_segmentation,
    load_class_list,
    read_label,
)


@pytest.fixture(scope="module")
def lip_root(shared_data) -> Path:
    return shared_data / "segmentation_other" / "lip"


@pytest.fixture(scope="module")
def ade_root(shared_data) -> Path:
    return shared_data / "segmentation_other" / "ade20k"


def test_cityscapes_lut_maps_label_ids_to_train_ids():
    lut = cityscapes_label_to_train_lut()
    assert lut[7] == 0 and lut[8] == 1 and lut[11] == 2 and lut[26] == 13 and lut[33] == 18
    assert all(lut[i] == 255 for i in (0, 1, 2, 3, 4, 5, 6, 9, 10, 14, 15, 16, 18, 29, 30, 255))
    assert lut[34] == -1 and lut[100] == -1


def test_official_palette_spreads_id_bits_over_rgb():
    palette = official_palette(10)
    assert palette[0].tolist() == [0, 0, 0] and palette[1].tolist() == [128, 0, 0]
    assert palette[2].tolist() == [0, 128, 0] and palette[7].tolist() == [128, 128, 128]
    assert palette[8].tolist() == [64, 0, 0] and palette[9].tolist() == [192, 0, 0]


def test_lip_sample_grayscale_image_and_labels(lip_root):
    ds = LIPDataset(lip_root, "val")
    assert len(ds) == 1 and ds.num_classes == 20
    item = ds[0]
    raw = np.array(Image.open(lip_root / "TrainVal_parsing_annotations/val_segmentations/86_185913.png"))
    assert item["image"].shape == (3, 377, 130)  # a mode-L JPEG comes out as 3 channels
    np.testing.assert_array_equal(item["label"].numpy(), raw)
    assert set(np.unique(raw)) == {0, 1, 5, 9, 13, 15}
    # the official evaluation resize: image to 473x473, label untouched
    resized = LIPDataset(lip_root, "val", eval_resize=EvalResize("fixed", (473, 473)))[0]
    assert resized["image"].shape == (3, 473, 473) and resized["label"].shape == (377, 130)


def test_lip_training_item_is_a_473_crop_with_valid_labels(lip_root):
    aug = TrainAugment(crop_size=(473, 473), base_size=473, scale_factor=11)
    ds = LIPDataset(lip_root, "train", train=True, augment=aug)
    torch.manual_seed(0)
    for _ in range(3):
        item = ds[0]
        assert item["image"].shape == (3, 473, 473) and item["label"].shape == (473, 473)
        assert set(item["label"].unique().tolist()) <= {0, 2, 5, 13, 14, 15, 255}
    steps = [type(s).__name__ for s in ds.transform.steps]
    assert steps == ["RandomFlip", "ResizeFixed", "RandomScaleCrop"]
    assert ds.transform.steps[0].swap_pairs == ((14, 15), (16, 17), (18, 19))


def test_ade20k_sample_reduces_zero_label(ade_root):
    ds = ADE20KDataset(ade_root, "val")
    assert len(ds) == 3 and ds.num_classes == 150 and ds.classes[0] == "wall"
    item = ds[2]
    raw = np.array(Image.open(ade_root / "ADEChallengeData2016/annotations/validation/ADE_val_00000003.png"))
    expected = np.where(raw == 0, 255, raw.astype(np.int64) - 1)
    np.testing.assert_array_equal(item["label"].numpy(), expected)
    # official test resize: short side 520, padded to a multiple of 8; the pad is reported
    item = ADE20KDataset(ade_root, "validation", eval_resize=EvalResize("short_side", 520, 8))[0]
    h, w = item["image"].shape[1:]
    assert h % 8 == 0 and w % 8 == 0 and min(h - item["pad"][0], w - item["pad"][1]) == 520


def test_ade20k_training_recipe(ade_root):
    aug = TrainAugment(crop_size=(64, 64), base_size=96, scale_factor=11)
    ds = ADE20KDataset(ade_root, "val", train=True, augment=aug)
    assert [type(s).__name__ for s in ds.transform.steps] == ["ResizeShortSide", "RandomScaleCrop", "RandomFlip"]
    assert ds[1]["image"].shape == (3, 64, 64)


def test_cityscapes_layout_and_unlabelled_test_split(tmp_path):
    expected = write_cityscapes(tmp_path, "val", count=2)
    ds = CityscapesDataset(tmp_path, "val")
    assert len(ds) == 2 and ds.samples[0].name.endswith("_000019")
    by_name = {s.name: i for i, s in enumerate(ds.samples)}
    for i, train_ids in enumerate(expected):
        city = "synthcity" if i % 2 == 0 else "othercity"
        item = ds[by_name[f"{city}_{i:06d}_000019"]]
        np.testing.assert_array_equal(item["label"].numpy(), train_ids)
    write_cityscapes(tmp_path, "test", count=1)
    test_item = CityscapesDataset(tmp_path, "test")[0]
    assert "label" not in test_item and test_item["image"].shape == (3, 48, 96)


def test_cityscapes_training_item(tmp_path):
    write_cityscapes(tmp_path, "train", count=1, size=(64, 128))
    aug = TrainAugment(crop_size=(32, 64), base_size=128, scale_factor=16, brightness_shift=10)
    ds = CityscapesDataset(tmp_path, "train", train=True, augment=aug)
    names = [type(s).__name__ for s in ds.transform.steps]
    assert names == ["RandomScaleCrop", "RandomBrightness", "RandomFlip"]
    item = ds[0]
    assert item["image"].shape == (3, 32, 64) and item["label"].dtype == torch.int64


def _write_pascal_context(root: Path, labels: list[np.ndarray]) -> None:
    voc = root / "VOCdevkit" / "VOC2010"
    (voc / "JPEGImages").mkdir(parents=True)
    (voc / "SegmentationClassContext").mkdir()
    (voc / "ImageSets" / "SegmentationContext").mkdir(parents=True)
    ids = []
    for i, label in enumerate(labels):
        ids.append(f"2008_{i:06d}")
        cv2.imwrite(str(voc / "JPEGImages" / f"{ids[-1]}.jpg"), np.zeros((*label.shape, 3), np.uint8))
        Image.fromarray(label).save(voc / "SegmentationClassContext" / f"{ids[-1]}.png")
    (voc / "ImageSets" / "SegmentationContext" / "val.txt").write_text("\n".join(ids) + "\n")


def test_pascal_context_59_and_60_classes(tmp_path):
    label = np.array([[0, 1, 59], [12, 0, 33]], dtype=np.uint8)
    _write_pascal_context(tmp_path, [label])
    ds59 = PascalContextDataset(tmp_path, "val", num_classes=59)
    np.testing.assert_array_equal(ds59[0]["label"].numpy(), [[255, 0, 58], [11, 255, 32]])
    assert ds59.num_classes == 59 and ds59.classes[0] == "aeroplane"
    ds60 = PascalContextDataset(tmp_path / "VOCdevkit" / "VOC2010", "val", num_classes=60)
    np.testing.assert_array_equal(ds60[0]["label"].numpy(), label)
    assert ds60.classes[0] == "background"


def test_folder_dataset_reads_the_synthetic_layout(tmp_path):
    from hrnet.data.synthetic import synthesize

    root = synthesize("seg", tmp_path / "seg", num_train=2, num_val=1, image_size=(48, 64))
    ds = FolderDataset(root, "val")
    assert ds.classes[0] == "background" and ds.num_classes == 7 and ds.ignore_index == 255
    item = ds[0]
    raw = cv2.imread(str(root / "labels" / "val" / "000000.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(item["label"].numpy(), raw)
    train = FolderDataset(root, "train", train=True, augment=TrainAugment((32, 32), None, scale_range=(0.5, 1.5)))
    assert train[1]["image"].shape == (3, 32, 32)


def test_palette_label_png_is_read_as_indices(tmp_path):
    image = Image.fromarray(np.array([[0, 3], [2, 1]], dtype=np.uint8), mode="P")
    image.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 756)
    image.save(tmp_path / "p.png")
    np.testing.assert_array_equal(read_label(tmp_path / "p.png"), [[0, 3], [2, 1]])


def test_collate_stacks_equal_sizes_and_lists_others():
    items = [{"image": torch.zeros(3, 4, 4), "name": "a"}, {"image": torch.zeros(3, 4, 4), "name": "b"}]
    batch = collate_segmentation(items)
    assert batch["image"].shape == (2, 3, 4, 4) and batch["name"] == ["a", "b"]
    items[1]["image"] = torch.zeros(3, 5, 4)
    assert isinstance(collate_segmentation(items)["image"], list)


# ------------------------------------------------------------------------------------------- bad input


def test_label_value_outside_the_classes_names_file_and_value(tmp_path):
    write_folder_dataset(tmp_path, "val", count=1, num_classes=3)
    label_path = tmp_path / "labels" / "val" / "000.png"
    label = cv2.imread(str(label_path), cv2.IMREAD_UNCHANGED)
    label[5, 5] = 7
    cv2.imwrite(str(label_path), label)
    with pytest.raises(DataError, match=r"000\.png: label value 7 ") as info:
        FolderDataset(tmp_path, "val")[0]
    assert "ignore" in str(info.value)


def test_unknown_cityscapes_label_id_is_an_error(tmp_path):
    write_cityscapes(tmp_path, "val", count=1)
    path = next((tmp_path / "gtFine").rglob("*_labelIds.png"))
    label = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    label[0, 0] = 40
    cv2.imwrite(str(path), label)
    with pytest.raises(DataError, match=r"gtFine_labelIds\.png: label value 40"):
        CityscapesDataset(tmp_path, "val")[0]


def test_image_label_size_mismatch(tmp_path):
    write_folder_dataset(tmp_path, "val", count=1)
    cv2.imwrite(str(tmp_path / "labels" / "val" / "000.png"), np.zeros((10, 12), np.uint8))
    with pytest.raises(DataError, match=r"000\.png is 56x40 but its label .*000\.png is 12x10"):
        FolderDataset(tmp_path, "val")[0]


def test_missing_label_file(tmp_path):
    write_folder_dataset(tmp_path, "val", count=2)
    (tmp_path / "labels" / "val" / "001.png").unlink()
    with pytest.raises(DataError, match=r"label file not found for .*001\.png: expected .*labels/val/001\.png"):
        FolderDataset(tmp_path, "val")


def test_empty_split(tmp_path):
    write_folder_dataset(tmp_path, "val", count=1)
    (tmp_path / "images" / "train").mkdir(parents=True)
    with pytest.raises(DataError, match=r"no samples found for folder in .*images/train"):
        FolderDataset(tmp_path, "train")
    with pytest.raises(DataError, match=r"image folder not found: .*images/test"):
        FolderDataset(tmp_path, "test")


def test_empty_lip_id_list(tmp_path, lip_root):
    root = tmp_path / "lip"
    (root / "TrainVal_images" / "val_images").mkdir(parents=True)
    (root / "val_id.txt").write_text("\n")
    with pytest.raises(DataError, match="no samples found for lip in .*val_id.txt"):
        LIPDataset(root, "val")


def test_colour_label_image_is_refused(tmp_path):
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(DataError, match=r"rgb\.png has PIL mode 'RGB'"):
        read_label(tmp_path / "rgb.png")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"classes": []}, "non-empty list"),
        ({"classes": [{"name": "a", "color": [1, 2]}]}, r"classes\[0\] \('a'\) 'color'"),
        ({"classes": [{"color": [1, 2, 3]}]}, r"classes\[0\] needs a string 'name'"),
        ({"classes": ["a"], "ignore_index": 300}, "ignore_index"),
    ],
)
def test_bad_class_list(tmp_path, spec, message):
    (tmp_path / "classes.json").write_text(json.dumps(spec))
    with pytest.raises(DataError, match=message):
        load_class_list(tmp_path / "classes.json")


def test_unreadable_image(tmp_path):
    write_folder_dataset(tmp_path, "val", count=1)
    (tmp_path / "images" / "val" / "000.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match=r"cannot decode image .*000\.png"):
        FolderDataset(tmp_path, "val")[0]
