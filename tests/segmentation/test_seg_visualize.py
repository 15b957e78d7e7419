"""Segmentation overlays carry a legend of exactly the classes present."""

from __future__ import annotations

import numpy as np

from hrnet.tasks.segmentation.visualize import legend_entries, overlay

CLASSES = ["road", "sidewalk", "building", "wall", "fence"]
PALETTE = np.array([[128, 64, 128], [244, 35, 232], [70, 70, 70], [102, 102, 156], [190, 153, 153]], np.uint8)


def test_legend_lists_exactly_the_classes_present():
    label = np.zeros((120, 200), np.uint8)
    label[60:, :] = 2
    label[:, 150:] = 4
    label[:10, :10] = 255  # ignored
    entries = legend_entries(label, CLASSES, PALETTE)
    assert [(i, name) for i, name, _ in entries] == [(0, "road"), (2, "building"), (4, "fence")]
    assert entries[1][2] == (70, 70, 70)


def test_overlay_draws_the_legend_swatches():
    image = np.full((200, 300, 3), 127, np.uint8)
    label = np.zeros((200, 300), np.uint8)
    label[100:, :] = 1
    plain = overlay(image, label, PALETTE)
    legend = overlay(image, label, PALETTE, classes=CLASSES)
    changed = (plain != legend).any(axis=2)
    ys, xs = np.nonzero(changed)
    assert ys.max() < 100 and xs.max() < 150  # a panel in the top-left corner, not over the whole image
    panel = legend[: ys.max() + 1, : xs.max() + 1].reshape(-1, 3)
    for rgb in PALETTE[[0, 1]]:  # a swatch (BGR) for each class present, none for the others
        assert (panel == rgb[::-1]).all(axis=1).sum() >= 16
    for rgb in PALETTE[2:]:
        assert not (panel == rgb[::-1]).all(axis=1).any()
    assert (panel == 255).all(axis=1).sum() > 20  # the names, in white
