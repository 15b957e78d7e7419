"""Bottom-up test time reproduces the official valid.py loop: resize per scale, flip test, multi-scale
aggregation, grouping and mapping back to the image (recorded official outputs, fake model)."""

import json
from pathlib import Path

import numpy as np
import pytest
from bottomup_cases import TEST_TIME_CASES, FakeHigherHRNet, fake_image

from hrnet.tasks.pose.bottomup import BottomUpPredictor, multiscale_size, resize_align
from hrnet.tasks.pose.grouping import GroupingParams
from hrnet.tasks.pose.meta import COCO_META

FIXTURE = json.loads((Path(__file__).parents[1] / "fixtures" / "higherhrnet_testtime_official.json").read_text())


@pytest.mark.parametrize("name", sorted(TEST_TIME_CASES))
def test_test_time_matches_official(name):
    case, ref = TEST_TIME_CASES[name], FIXTURE["cases"][name]
    image = fake_image(*case["image"])
    scales = case["scales"]
    sizes = [list(resize_align(image, case["input_size"], s, min(scales))[0].shape[:2])
             for s in sorted(scales, reverse=True)]
    assert sizes == ref["resized_hw"]
    base, _, _ = multiscale_size(*image.shape[:2], case["input_size"], 1.0, min(scales))
    assert list(base) == ref["base_size"]

    predictor = BottomUpPredictor(FakeHigherHRNet().eval(), COCO_META, case["input_size"], scales, case["flip"],
                                  case["project2image"], GroupingParams(max_num_people=5, detection_threshold=0.5))
    heatmaps, tags, center, scale = predictor.maps(image)
    np.testing.assert_allclose(center, ref["center"])
    np.testing.assert_allclose(scale, ref["scale"])
    assert list(heatmaps.shape) == ref["heatmaps_shape"] and list(tags.shape) == ref["tags_shape"]
    flat_h, flat_t = heatmaps.double().flatten(), tags.double().flatten()
    np.testing.assert_allclose(flat_h[ref["heatmaps_index"]].numpy(), ref["heatmaps_values"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(flat_t[ref["tags_index"]].numpy(), ref["tags_values"], rtol=0, atol=1e-5)
    assert flat_h.sum().item() == pytest.approx(ref["heatmaps_sum"], rel=1e-5)
    assert flat_t.sum().item() == pytest.approx(ref["tags_sum"], rel=1e-5)

    instances = predictor([image])[0]
    assert len(instances) == len(ref["people"]) > 0
    for inst, person, score in zip(instances, ref["people"], ref["scores"], strict=True):
        np.testing.assert_allclose(inst["keypoints"], person, rtol=0, atol=1e-3)
        assert inst["score"] == pytest.approx(score, abs=1e-6)


def test_scales_must_include_one():
    with pytest.raises(ValueError, match="include 1"):
        BottomUpPredictor(FakeHigherHRNet(), COCO_META, 128, scales=(2, 0.5))
