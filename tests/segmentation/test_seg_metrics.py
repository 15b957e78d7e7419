import math

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from hrnet.tasks.segmentation.metrics import confusion_matrix, reduce_confusion_matrix, segmentation_metrics


def _reference_confusion(label: np.ndarray, scores: np.ndarray, k: int, ignore: int) -> np.ndarray:
    """One pixel at a time: rows = label, columns = first argmax over the class axis."""
    pred = np.argmax(scores, axis=1)
    conf = np.zeros((k, k))
    for gt, p in zip(label.ravel(), pred.ravel(), strict=True):
        if gt != ignore and 0 <= gt < k:
            conf[gt, p] += 1
    return conf


def test_confusion_matrix_matches_pixelwise_count_with_ignore():
    rng = np.random.default_rng(0)
    label = rng.integers(0, 5, size=(2, 9, 11))
    label[rng.random(label.shape) < 0.2] = 255
    label[0, 0, :3] = 7  # a label outside the classes is not counted (the official matrix drops it)
    scores = rng.normal(size=(2, 5, 9, 11)).astype(np.float32)
    scores[0, :, 1, 1] = 0.0  # a tie: the first class wins
    conf = confusion_matrix(torch.from_numpy(label), torch.from_numpy(scores), 5, 255)
    assert conf.dtype == torch.int64 and conf.shape == (5, 5)
    np.testing.assert_array_equal(conf.numpy(), _reference_confusion(label, scores, 5, 255))
    # class ids instead of scores give the same matrix
    ids = torch.from_numpy(scores).argmax(1)
    torch.testing.assert_close(confusion_matrix(torch.from_numpy(label), ids, 5, 255), conf)


def test_confusion_matrix_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="does not match"):
        confusion_matrix(torch.zeros(4, 4), torch.zeros(4, 5), 3)


def test_metrics_official_formula_by_hand():
    conf = np.array([[5, 1, 0], [2, 3, 0], [0, 0, 0]])
    m = segmentation_metrics(conf, "zero")
    np.testing.assert_allclose(m["IoU"], [5 / 8, 3 / 6, 0.0])
    assert m["mIoU"] == pytest.approx((5 / 8 + 3 / 6 + 0) / 3)
    assert m["pixel_acc"] == pytest.approx(8 / 11)
    assert m["mean_acc"] == pytest.approx((5 / 6 + 3 / 5 + 0) / 3)


def test_metrics_ignoring_absent_classes():
    conf = np.array([[5, 1, 0], [2, 3, 0], [0, 0, 0]])
    m = segmentation_metrics(conf, "ignore")
    assert math.isnan(m["IoU"][2])
    assert m["mIoU"] == pytest.approx((5 / 8 + 3 / 6) / 2)
    assert m["mean_acc"] == pytest.approx((5 / 6 + 3 / 5) / 2)
    # a class that is predicted but never labelled is not absent: IoU 0 counts
    conf[2, 2] = 0
    conf[0, 2] = 4
    m = segmentation_metrics(conf, "ignore")
    assert m["IoU"][2] == 0 and m["mIoU"] == pytest.approx((5 / 12 + 3 / 6 + 0) / 3)


def test_perfect_prediction_gives_one():
    label = torch.tensor([[0, 1, 1], [2, 255, 0]])
    conf = confusion_matrix(label, label.clamp(max=2), 4, 255)
    assert segmentation_metrics(conf, "ignore")["mIoU"] == 1.0
    assert segmentation_metrics(conf, "zero")["mIoU"] == pytest.approx(3 / 4)


def test_reduce_without_process_group_is_identity():
    conf = torch.arange(9).view(3, 3)
    assert reduce_confusion_matrix(conf) is conf


def _ddp_worker(rank: int, folder: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{folder}/init", rank=rank, world_size=2)
    label = torch.tensor([[rank, 1], [2, 255]])
    conf = confusion_matrix(label, torch.tensor([[0, 1], [1, 2]]), 3, 255)
    torch.save(reduce_confusion_matrix(conf), f"{folder}/rank{rank}.pt")
    dist.destroy_process_group()


def test_reduce_sums_over_two_processes(tmp_path):
    mp.start_processes(_ddp_worker, args=(str(tmp_path),), nprocs=2, start_method="fork")
    # rank 0: (0->0), (1->1), (2->1); rank 1: (1->0), (1->1), (2->1)
    expected = torch.tensor([[1, 0, 0], [1, 2, 0], [0, 2, 0]])
    for rank in range(2):
        torch.testing.assert_close(torch.load(tmp_path / f"rank{rank}.pt"), expected)
