"""Associative-embedding grouping reproduces the official ``HeatmapParser`` on recorded inputs.

The fixture holds the official groupings and scores, recorded by running the official
``lib/core/group.py`` on the inputs that ``bottomup_cases.py`` draws from a seed.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from bottomup_cases import CASES, case_inputs

from hrnet.tasks.pose.grouping import GroupingParams, group_people, grouping_order, match_by_tag

FIXTURE = json.loads((Path(__file__).parents[1] / "fixtures" / "higherhrnet_grouping_official.json").read_text())


@pytest.mark.parametrize("name", sorted(CASES))
def test_grouping_matches_official(name):
    case, ref = CASES[name], FIXTURE["cases"][name]
    heatmaps, tags = case_inputs(case["seed"], case["joints"], case["size"], case["people"], case["tag_dim"],
                                 case["spread"])
    assert float(heatmaps.astype(np.float64).sum()) == pytest.approx(ref["input_sum"], rel=1e-9)
    assert float(tags.astype(np.float64).sum()) == pytest.approx(ref["tag_sum"], rel=1e-9)
    people, scores = group_people(torch.from_numpy(heatmaps), torch.from_numpy(tags), GroupingParams(**case["params"]))
    expected = np.asarray(ref["people"], dtype=np.float32).reshape(-1, case["joints"], 3 + case["tag_dim"])
    assert people.shape == expected.shape
    np.testing.assert_array_equal(people[:, :, :2], expected[:, :, :2])  # same joints of the same people
    np.testing.assert_allclose(people, expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(scores, np.asarray(ref["scores"]), rtol=0, atol=1e-6)


def test_grouping_order_crowdpose_is_official_prefix():
    assert grouping_order(17)[:9] == [0, 1, 2, 3, 4, 5, 6, 11, 12]
    assert sorted(grouping_order(14)) == list(range(14)) and grouping_order(14)[-1] == 13
    assert grouping_order(19)[-2:] == [17, 18]


def test_ideal_tags_group_each_person():
    """Two people with distinct tags and all joints visible come out as two complete people."""
    k, h, w = 3, 16, 16
    tags_k = np.array([[[0.0], [3.0]]] * k, dtype=np.float32)
    locations = np.array([[[2, 2], [10, 10]], [[3, 2], [11, 10]], [[2, 4], [10, 12]]])
    values = np.array([[0.9, 0.8]] * k, dtype=np.float32)
    people = match_by_tag(tags_k, locations, values, GroupingParams(), order=[0, 1, 2])
    assert people.shape == (2, k, 4)
    assert {tuple(p[:, 3]) for p in people} == {(0.0, 0.0, 0.0), (3.0, 3.0, 3.0)}
    assert np.all(people[:, :, 2] > 0) and (h, w) == (16, 16)


def test_bad_params():
    with pytest.raises(ValueError, match="nms_kernel"):
        GroupingParams(nms_kernel=4)
