"""Bottom-up targets and losses: parity with the official HigherHRNet code on recorded inputs, and behaviour."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hrnet.errors import ConfigError, DataError
from hrnet.tasks.pose.associative_embedding import (
    AELoss,
    MultiResolutionAELoss,
    heatmap_targets,
    ignore_mask,
    tag_indices,
)

FIXTURE = json.loads((Path(__file__).parents[1] / "fixtures" / "official_higherhrnet_targets.json").read_text())
RES = FIXTURE["resolutions"]
K = FIXTURE["num_joints"]


def keypoints_at(image: int, res: int) -> np.ndarray:
    """The recorded keypoints (given in pixels of the 32x32 map) in pixels of a ``res`` map."""
    j = np.array(FIXTURE["keypoints"][image])
    j[..., :2] *= res / 32
    return j


def assert_summary(array: np.ndarray, ref: dict) -> None:
    flat = array.astype(np.float64).ravel()
    assert list(array.shape) == ref["shape"] and array.dtype == np.float32
    np.testing.assert_allclose(flat[ref["index"]], ref["values"], rtol=0, atol=1e-6)
    assert np.count_nonzero(flat) == ref["nonzero"]
    assert flat.sum() == pytest.approx(ref["sum"], abs=1e-5)
    assert (flat**2).sum() == pytest.approx(ref["sumsq"], abs=1e-5)


@pytest.mark.parametrize("image", range(len(FIXTURE["keypoints"])))
@pytest.mark.parametrize("res", RES)
def test_targets_match_the_official_generators(image, res):
    ref = FIXTURE["targets"][image][str(res)]
    joints = keypoints_at(image, res)
    assert_summary(heatmap_targets(joints, res, sigma=2), ref["heatmaps"])
    assert_summary(heatmap_targets(joints, res, scale_aware=True), ref["scale_aware"])
    np.testing.assert_array_equal(tag_indices(joints, res, FIXTURE["max_people"]), ref["tags_per_joint"])
    np.testing.assert_array_equal(tag_indices(joints, (res, res), FIXTURE["max_people"], tag_per_joint=False),
                                  ref["tags_shared"])


def loss_inputs(tag_per_joint: bool):
    n = len(FIXTURE["keypoints"])
    g = torch.Generator().manual_seed(2)
    tags = K if tag_per_joint else 1
    outputs = [torch.randn(n, K + tags, 16, 16, generator=g), torch.randn(n, K, 32, 32, generator=g)]
    g = torch.Generator().manual_seed(3)
    masks = [(torch.rand(n, r, r, generator=g) > 0.2).float() for r in RES]
    heatmaps = [torch.from_numpy(np.stack([heatmap_targets(keypoints_at(i, r), r) for i in range(n)])) for r in RES]
    joints = [torch.from_numpy(np.stack([tag_indices(keypoints_at(i, r), r, FIXTURE["max_people"], tag_per_joint)
                                         for i in range(n)])) for r in RES]
    return outputs, heatmaps, masks, joints


@pytest.mark.parametrize("case", FIXTURE["losses"], ids=lambda c: f"{c['ae_loss_type']}-tpj{c['tag_per_joint']}")
def test_loss_matches_the_official_multi_loss_factory(case):
    outputs, heatmaps, masks, joints = loss_inputs(case["tag_per_joint"])
    criterion = MultiResolutionAELoss(K, with_ae=(True, False), heatmap_factors=case["heatmap_factors"],
                                      push_factors=case["push_factors"], pull_factors=case["pull_factors"],
                                      ae_loss_type=case["ae_loss_type"])
    losses = criterion(outputs, heatmaps, masks, joints)
    expected = {}
    for part in ("heatmaps", "push", "pull"):
        for i, ref in enumerate(case[part]):
            got = getattr(losses, part)[i]
            if ref is None:
                assert got is None
                continue
            assert got.item() == pytest.approx(float(np.mean(ref)), abs=1e-6)
            expected[part, i] = float(np.mean(ref))
    assert losses.total.item() == pytest.approx(sum(expected.values()), abs=1e-6)
    # per image, push and pull as the official AELoss (before the factors)
    push, pull = AELoss(case["ae_loss_type"])(outputs[0][:, K:].reshape(len(outputs[0]), -1), joints[0])
    np.testing.assert_allclose(push.numpy() * case["push_factors"][0], case["push"][0], rtol=0, atol=1e-9)
    np.testing.assert_allclose(pull.numpy() * case["pull_factors"][0], case["pull"][0], rtol=0, atol=1e-9)


def test_push_separates_and_pull_gathers():
    """Two people, two keypoints each, on a 1x4 tag map."""
    joints = torch.tensor([[[[0, 1], [1, 1]], [[2, 1], [3, 1]]]])
    same = AELoss("exp")(torch.tensor([[0.0, 0.0, 5.0, 5.0]]), joints)
    assert same[0].item() == pytest.approx(0.5 * np.exp(-25.0)) and same[1].item() == 0.0  # halved, as the official
    mixed = AELoss("max")(torch.tensor([[0.0, 1.0, 0.2, 0.2]]), joints)
    assert mixed[0].item() == pytest.approx(0.5 * (1 - 0.3)) and mixed[1].item() == pytest.approx(0.25 / 2)
    tags = torch.tensor([[0.0, 1.0, 0.2, 0.2]], requires_grad=True)
    sum(AELoss("exp")(tags, joints)).sum().backward()
    assert tags.grad.abs().sum() > 0


def test_heatmaps_keep_the_maximum_where_people_overlap():
    joints = np.array([[[5, 5, 2]], [[7, 5, 1]], [[9, 9, 0]]], dtype=float)
    hm = heatmap_targets(joints, (12, 16))
    assert hm.shape == (1, 12, 16)
    assert hm[0, 5, 5] == hm[0, 5, 7] == 1.0
    assert hm[0, 5, 6] == pytest.approx(np.exp(-1 / 8))  # the max of two equal Gaussians, not their sum
    assert hm[0, 9, 12] == pytest.approx(np.exp(-((12 - 7) ** 2 + 4**2) / 8))  # the invisible keypoint adds nothing


def test_ignore_mask_covers_crowds_and_people_without_keypoints():
    from pycocotools import mask as mask_utils

    crowd = np.zeros((20, 30), np.uint8, order="F")
    crowd[2:6, 3:9] = 1
    rle = mask_utils.encode(crowd)
    rle["counts"] = rle["counts"].decode()  # compressed, as COCO-style files may store it
    anns = [{"iscrowd": 1, "segmentation": rle, "num_keypoints": 0},
            {"iscrowd": 1, "segmentation": {"size": [20, 30], "counts": [0, 40, 560]}},  # uncompressed: columns 0-1
            {"iscrowd": 0, "num_keypoints": 0, "segmentation": [[20, 10, 28, 10, 28, 18, 20, 18]]},
            {"iscrowd": 0, "num_keypoints": 3, "segmentation": [[0, 10, 10, 10, 10, 19, 0, 19]]}]
    mask = ignore_mask(anns, 20, 30)
    assert mask.dtype == bool and mask.shape == (20, 30)
    assert not mask[2:6, 3:9].any() and not mask[:, :2].any() and mask[0:2, 2:].all()
    assert not mask[12:17, 21:27].any()  # the person without keypoints
    assert mask[12:17, 2:8].all()  # a labelled person is supervised


def test_bad_inputs_are_explained():
    with pytest.raises(DataError, match="joints must be"):
        heatmap_targets(np.zeros((3, 2)), 16)
    with pytest.raises(DataError, match="sigma"):
        heatmap_targets(np.zeros((1, 2, 3)), 16, scale_aware=True)
    with pytest.raises(ConfigError, match="AE loss type"):
        AELoss("sum")
    with pytest.raises(ConfigError, match="one entry per output"):
        MultiResolutionAELoss(5, with_ae=(True, False), push_factors=(1.0,))
    with pytest.raises(ValueError, match="2 outputs"):
        MultiResolutionAELoss(5)([torch.zeros(1, 10, 4, 4)], [], [], [])


def test_a_tiny_higherhrnet_learns_from_the_targets():
    """Model outputs, targets of both resolutions and the loss fit together; a few Adam steps lower the loss."""
    import hrnet

    torch.manual_seed(0)
    model = hrnet.build_model("pose_higherhrnet_w32", num_joints=K, width=4, blocks=1, modules=(1, 1, 1),
                              stage1_blocks=1)
    images = torch.randn(2, 3, 64, 64)
    people = [keypoints_at(0, 32)[..., :3], keypoints_at(1, 32)[..., :3]]  # in pixels of the 32x32 (1/2) map
    heatmaps, masks, joints = [], [], []
    for res in (16, 32):
        scaled = [np.concatenate([p[..., :2] * res / 32, p[..., 2:]], axis=-1) for p in people]
        heatmaps.append(torch.from_numpy(np.stack([heatmap_targets(p, res) for p in scaled])))
        masks.append(torch.ones(2, res, res))
        joints.append(torch.from_numpy(np.stack([tag_indices(p, res, max_people=4) for p in scaled])))
    criterion = MultiResolutionAELoss(K, push_factors=1.0, pull_factors=1.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    totals = []
    for _ in range(6):
        losses = criterion(model(images), heatmaps, masks, joints)
        optimizer.zero_grad()
        losses.total.backward()
        optimizer.step()
        totals.append(losses.total.item())
    assert losses.push[1] is None and losses.heatmaps[1] is not None
    assert totals[-1] < 0.8 * totals[0], totals
