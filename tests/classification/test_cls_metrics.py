"""Top-k accuracy against hand-checked cases and a first-principles rank count."""

from __future__ import annotations

import torch

from hrnet.tasks.classification import accuracy, topk_correct


def test_hand_checked_case():
    logits = torch.tensor(
        [
            [0.1, 0.9, 0.0, 0.3, 0.2, 0.5],  # target 1: rank 1
            [0.8, 0.1, 0.7, 0.0, 0.6, 0.5],  # target 5: rank 4
            [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],  # target 0: rank 6
            [0.3, 0.2, 0.9, 0.1, 0.0, 0.4],  # target 5: rank 2
        ]
    )
    targets = torch.tensor([1, 5, 0, 5])
    assert topk_correct(logits, targets, (1, 2, 5)) == [1, 2, 3]
    top1, top5 = accuracy(logits, targets, (1, 5))
    assert top1.item() == 25.0 and top5.item() == 75.0


def test_matches_rank_counting():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(200, 10, generator=generator)
    targets = torch.randint(0, 10, (200,), generator=generator)
    # rank of the target = number of classes with a strictly higher score (no ties in random floats)
    rank = (logits > logits.gather(1, targets[:, None])).sum(dim=1)
    for k in (1, 3, 5):
        assert topk_correct(logits, targets, (k,)) == [int((rank < k).sum())]
        assert accuracy(logits, targets, (k,))[0].item() == 100.0 * float((rank < k).sum()) / 200


def test_k_beyond_the_number_of_classes_counts_everything():
    logits = torch.tensor([[0.2, 0.8, 0.1], [0.9, 0.05, 0.05]])
    assert topk_correct(logits, torch.tensor([2, 1]), (1, 5)) == [0, 2]
