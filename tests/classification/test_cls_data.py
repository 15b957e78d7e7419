"""Folder and list datasets, bad input, and the train/val transforms against torchvision's v1 pipeline."""

from __future__ import annotations

import logging
import shutil

import pytest
import torch
from PIL import Image
from torchvision import transforms as v1

from hrnet.errors import DataError
from hrnet.tasks.classification.data import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ClassificationDataset,
    eval_transforms,
    folder_classes,
    read_class_names,
    read_list_file,
    train_transforms,
)


def test_folder_dataset_follows_imagefolder_order(cls_data):
    classes = folder_classes(cls_data / "train")
    assert classes == sorted(p.name for p in (cls_data / "train").iterdir())
    dataset = ClassificationDataset(cls_data / "train", classes)
    expected = [(path, i) for i, name in enumerate(classes) for path in sorted((cls_data / "train" / name).iterdir())]
    assert dataset.samples == expected
    item = dataset[3]
    assert item["label"] == expected[3][1] and item["index"] == 3
    assert isinstance(item["image"], Image.Image) and item["image"].mode == "RGB"


def test_list_files_give_the_same_samples_as_the_folder(cls_data, tmp_path):
    classes = folder_classes(cls_data / "train")
    folder = ClassificationDataset(cls_data / "train", classes)
    rows = [(p.relative_to(cls_data).as_posix(), label) for p, label in folder.samples]
    csv_file = tmp_path / "train.csv"
    csv_file.write_text("path,label\n" + "".join(f"{p},{classes[label]}\n" for p, label in rows))
    txt_file = tmp_path / "train.txt"
    txt_file.write_text("".join(f"{p} {label}\n" for p, label in rows))
    by_name = ClassificationDataset(csv_file, classes, root=cls_data)
    by_index = ClassificationDataset(txt_file, classes, root=cls_data)
    assert by_name.samples == folder.samples == by_index.samples


def test_list_file_errors_name_the_line_or_label(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a.jpg,cat\nb.jpg\n")
    with pytest.raises(DataError, match=r"bad.csv, line 2"):
        read_list_file(bad)
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("a.jpg,cat\nb.jpg,dgo\n")
    with pytest.raises(DataError, match=r"'dgo' of b.jpg is not a known class"):
        ClassificationDataset(unknown, ["cat", "dog"], root=tmp_path)
    out_of_range = tmp_path / "range.txt"
    out_of_range.write_text("a.jpg 0\nb.jpg 2\n")
    with pytest.raises(DataError, match=r"label 2 of b.jpg is out of range for 2 classes"):
        ClassificationDataset(out_of_range, ["cat", "dog"], root=tmp_path)


def test_empty_class_folder_warns_with_count_and_keeps_indices(cls_data, tmp_path, caplog):
    root = tmp_path / "train"
    shutil.copytree(cls_data / "train", root)
    for name in ("bar", "star"):
        for image in (root / name).iterdir():
            image.unlink()
    classes = folder_classes(root)
    with caplog.at_level(logging.WARNING):
        dataset = ClassificationDataset(root, classes)
    assert "2 of 8 classes have no images" in caplog.text and "bar, star" in caplog.text
    assert {label for _, label in dataset.samples} == set(range(8)) - {
        classes.index("bar"),
        classes.index("star"),
    }


def test_unreadable_image_error_names_the_file(cls_data, tmp_path):
    root = tmp_path / "train"
    shutil.copytree(cls_data / "train", root)
    broken = sorted((root / "disc").iterdir())[0]
    broken.write_bytes(b"not a jpeg at all")
    dataset = ClassificationDataset(root, folder_classes(root))
    index = [path for path, _ in dataset.samples].index(broken)
    with pytest.raises(DataError, match=f"cannot read image {broken}"):
        dataset[index]


def test_val_folder_with_a_class_unknown_to_train_is_an_error(cls_data, tmp_path):
    root = tmp_path / "val"
    shutil.copytree(cls_data / "val", root)
    (root / "disk").mkdir()
    with pytest.raises(DataError, match=r"class folder\(s\) \['disk'\]"):
        ClassificationDataset(root, folder_classes(cls_data / "train"))


def test_missing_split_and_class_file_errors(tmp_path):
    with pytest.raises(DataError, match="dataset split not found"):
        ClassificationDataset(tmp_path / "nowhere", ["a"])
    names = tmp_path / "names.txt"
    names.write_text("cat\n\ndog\ncat\n")
    with pytest.raises(DataError, match=r"names a class twice: \['cat'\]"):
        read_class_names(names)
    names.write_text("cat\n\ndog\n")
    assert read_class_names(names) == ["cat", "dog"]


@pytest.fixture(scope="module")
def photo():
    """A non-square RGB image with structure everywhere (resampling differences would show)."""
    generator = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (3, 300, 410), generator=generator, dtype=torch.uint8)
    return Image.fromarray(pixels.permute(1, 2, 0).numpy())


def test_eval_transform_equals_the_official_pipeline(photo):
    official = v1.Compose(
        [
            v1.Resize(int(224 / 0.875)),
            v1.CenterCrop(224),
            v1.ToTensor(),
            v1.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )
    ours = eval_transforms(224)
    # same pixels; the float conversion may differ in the last bit (x / 255 vs x * (1 / 255))
    torch.testing.assert_close(ours(photo), official(photo), rtol=0, atol=1e-6)
    assert ours(photo).shape == (3, 224, 224)


def test_train_transform_equals_the_official_pipeline_for_a_seed(photo):
    official = v1.Compose(
        [
            v1.RandomResizedCrop(224),
            v1.RandomHorizontalFlip(),
            v1.ToTensor(),
            v1.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )
    ours = train_transforms(224)
    for seed in range(6):
        torch.manual_seed(seed)
        expected = official(photo)
        torch.manual_seed(seed)
        torch.testing.assert_close(ours(photo), expected, rtol=0, atol=1e-6, msg=f"seed {seed}")
