from collections import OrderedDict

import pytest
import torch

from hrnet.deploy import compare_outputs
from hrnet.deploy.parity import flatten_outputs, map_tensors


def test_structures_are_flattened_and_mapped_in_order():
    a, b, c = torch.zeros(1), torch.ones(2), torch.full((3,), 2.0)
    outputs = OrderedDict(p2=a, p3=[b, c])
    assert [t.numel() for t in flatten_outputs(outputs)] == [1, 2, 3]
    doubled = map_tensors(lambda t: t * 2, outputs)
    assert isinstance(doubled, OrderedDict) and list(doubled) == ["p2", "p3"]
    assert torch.equal(doubled["p3"][1], c * 2)


def test_tolerance_is_absolute_below_one_and_relative_above():
    small = torch.tensor([0.5, -0.2])
    assert compare_outputs(small, small + 5e-5, 1e-4).ok
    assert not compare_outputs(small, small + 2e-4, 1e-4).ok
    large = torch.tensor([100.0, -3.0])
    parity = compare_outputs(large, large + 5e-3, 1e-4)  # 5e-5 of the output range
    assert parity.ok and parity.scale == 100.0


def test_nan_never_passes_and_shapes_must_match():
    ref = torch.ones(2, 2)
    assert not compare_outputs(ref, torch.full((2, 2), float("nan")), 1.0).ok
    with pytest.raises(ValueError, match="shapes differ"):
        compare_outputs(ref, torch.ones(2, 3), 1.0)
    with pytest.raises(ValueError, match="structure"):
        compare_outputs([ref, ref], [ref], 1.0)


def test_detections_compare_as_sets():
    from hrnet.deploy.parity import compare_detections

    reference = {"scores": torch.tensor([0.9, 0.5, 0.5, 0.2]), "labels": torch.tensor([1, 2, 3, 1]),
                 "boxes": torch.arange(16.0).view(4, 4)}
    swapped = {key: value[[0, 2, 1, 3]] for key, value in reference.items()}  # a tie in either order
    assert compare_detections([reference], [swapped], 1e-4).max_abs_diff == 0
    moved = {**swapped, "boxes": swapped["boxes"] + torch.tensor([0, 0, 0, 0.5]) * (torch.arange(4) == 1)[:, None]}
    assert compare_detections([reference], [moved], 1e-4).max_abs_diff == 0.5
    # the last of a top-k output may be another detection tied with it
    other_last = {**reference, "labels": torch.tensor([1, 2, 3, 4])}
    assert compare_detections([reference], [other_last], 1e-4).ok
    with pytest.raises(ValueError, match="4 detections vs 2"):
        compare_detections([reference], [{key: value[:2] for key, value in reference.items()}], 1e-4)
