"""Files in a class folder that are not images are skipped and counted, never dropped silently."""

from __future__ import annotations

import logging
import shutil

from hrnet.tasks.classification.data import folder_classes, scan_folder


def test_non_image_files_in_class_folders_are_counted(cls_data, tmp_path, caplog):
    train = tmp_path / "train"
    shutil.copytree(cls_data / "train", train)
    classes = folder_classes(train)
    images = scan_folder(train, classes)
    (train / classes[0] / "notes.txt").write_text("not an image")
    (train / classes[1] / "Thumbs.db").write_bytes(b"\0" * 16)
    with caplog.at_level(logging.WARNING):
        assert scan_folder(train, classes) == images
    assert f"skipped 2 file(s) under {train} that are not images" in caplog.text
    assert "notes.txt" in caplog.text
