"""Detection overlays stay readable: boxes with a contrasting edge, captions that never overlap."""

from __future__ import annotations

import numpy as np
import torch

from hrnet.tasks.detection import draw_boxes, draw_detections
from hrnet.tasks.detection.inference import draw_detections as draw_detections_alias
from hrnet.tasks.drawing import LabelPlacer, draw_box, line_width


def _overlap(a, b) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def test_light_box_on_white_photo_has_a_dark_edge():
    """A light-grey box on a white image: along a scanline through its left side, bright box pixels lie
    between dark edge pixels, so the box cannot vanish."""
    white = np.full((480, 640, 3), 255, np.uint8)
    drawn = draw_boxes(white, [[100, 100, 300, 300]], colors=[(230, 230, 230)])
    assert not (white != 255).any()  # the input is not drawn on
    row = drawn[200, 90:112].mean(axis=1)  # crosses the left side at x=100
    dark = np.flatnonzero(row < 60) + 90
    light = np.flatnonzero((row > 200) & (row < 245)) + 90
    assert dark.size >= 2 and light.size >= 1
    assert dark.min() < light.min() and light.max() < dark.max()  # dark | light | dark
    assert (drawn[200, 150:250] == 255).all()  # the inside is left alone


def test_line_width_grows_with_the_image():
    assert line_width((240, 320)) == 1 and line_width((480, 640)) == 2 and line_width((2160, 3840)) == 12
    big = np.full((1080, 1920, 3), 255, np.uint8)
    draw_box(big, (500, 500, 900, 900), (230, 230, 230))
    assert (big[700, 480:520].mean(axis=1) < 60).sum() >= 2 + 2  # both edges of a 6-px bright line


def test_labels_do_not_overlap_and_stay_inside():
    canvas = np.zeros((120, 160, 3), np.uint8)
    placer = LabelPlacer(canvas)
    anchors = [(10, 40), (12, 42), (14, 41), (150, 2), (-20, 200)]  # crowded, off the right, off the corners
    rects = [placer.place(f"person 0.9{i}", anchor, (255, 200, 0)) for i, anchor in enumerate(anchors)]
    for i, a in enumerate(rects):
        assert 0 <= a[0] <= a[2] < 160 and 0 <= a[1] <= a[3] < 120
        for b in rects[i + 1:]:
            assert not _overlap(a, b), (a, b)
    # each rectangle is the filled label: its fill colour covers it, with text in a contrasting ink
    x0, y0, x1, y1 = rects[0]
    patch = canvas[y0 + 1:y1, x0 + 1:x1].reshape(-1, 3)
    assert (patch == (255, 200, 0)).all(axis=1).mean() > 0.5 and (patch.sum(axis=1) < 100).any()


def test_draw_detections_two_captions_on_the_same_spot_do_not_overlap():
    image = torch.full((3, 200, 300), 255, dtype=torch.uint8)
    detection = {"boxes": torch.tensor([[50.0, 60, 150, 180], [52, 61, 160, 170]]),
                 "labels": torch.tensor([1, 2]), "scores": torch.tensor([0.9, 0.8])}
    drawn = draw_detections(image, detection, ["person", "bicycle"])
    assert drawn.dtype == torch.uint8 and drawn.shape == image.shape
    # the same drawing for an (H, W, 3) array, which comes back as an array
    array = draw_detections(image.permute(1, 2, 0).numpy(), detection, ["person", "bicycle"])
    assert isinstance(array, np.ndarray) and (array == drawn.permute(1, 2, 0).numpy()).all()
    # the two caption fills (one colour per label) occupy disjoint rows of the image
    from hrnet.tasks.drawing import label_color

    rows = [np.flatnonzero((array == label_color(label)).all(axis=2).sum(axis=1) > 20) for label in (1, 2)]
    assert rows[0].size and rows[1].size and not set(rows[0]) & set(rows[1])
    assert draw_detections_alias is draw_detections
