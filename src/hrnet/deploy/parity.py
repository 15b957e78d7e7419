"""Comparing a deployed model's outputs with the eager model's.

HRNet models return a tensor (pose, seg, cls), a list (OCR: ``[aux, logits]``) or a dict (HRNetV2p
pyramid levels); these helpers treat all three alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

__all__ = ["Parity", "flatten_outputs", "map_tensors", "compare_outputs", "compare_detections"]


def map_tensors(fn: Callable[[Tensor], Any], outputs: Any) -> Any:
    """Apply ``fn`` to every tensor of a model output, keeping its structure (tensor, list, dict)."""
    if isinstance(outputs, Tensor):
        return fn(outputs)
    if isinstance(outputs, dict):
        return type(outputs)((key, map_tensors(fn, value)) for key, value in outputs.items())
    if isinstance(outputs, list | tuple):
        return type(outputs)(map_tensors(fn, value) for value in outputs)
    raise TypeError(f"model outputs must be tensors, lists or dicts of tensors, got {type(outputs).__name__}")


def flatten_outputs(outputs: Any) -> list[Tensor]:
    """The tensors of a model output in order (dict values in insertion order)."""
    if isinstance(outputs, Tensor):
        return [outputs]
    values = outputs.values() if isinstance(outputs, dict) else outputs
    return [t for value in values for t in flatten_outputs(value)]


@dataclass(frozen=True)
class Parity:
    """How far a path's outputs are from the eager fp32 outputs.

    ``max_abs_diff`` is over all output tensors; ``scale`` is ``max(1, max |reference|)``, so the
    test ``max_abs_diff <= tolerance * scale`` is an absolute bound for outputs within [-1, 1]
    (heatmaps, probabilities) and a relative one for larger logits.
    """

    max_abs_diff: float
    scale: float
    tolerance: float

    @property
    def relative_diff(self) -> float:
        return self.max_abs_diff / self.scale

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.tolerance * self.scale

    def __str__(self) -> str:
        verdict = "ok" if self.ok else "FAILED"
        return (f"max-abs-diff {self.max_abs_diff:.2e} (scale {self.scale:.3g}, tolerance "
                f"{self.tolerance:.0e} x scale): {verdict}")


def compare_outputs(reference: Any, candidate: Any, tolerance: float) -> Parity:
    """Compare two model outputs of the same structure; raises if the structures or shapes differ.

    Empty outputs compare equal; a NaN anywhere in ``candidate`` counts as an infinite difference.
    """
    refs, cands = flatten_outputs(reference), flatten_outputs(candidate)
    if len(refs) != len(cands):
        raise ValueError(f"outputs differ in structure: {len(refs)} tensors vs {len(cands)}")
    diff, scale = 0.0, 1.0
    for ref, cand in zip(refs, cands, strict=True):
        if ref.shape != cand.shape:
            raise ValueError(f"output shapes differ: {tuple(ref.shape)} vs {tuple(cand.shape)}")
        if ref.numel() == 0:
            continue
        ref, cand = ref.detach().float().cpu(), cand.detach().float().cpu()
        gap = (ref - cand).abs().nan_to_num(nan=float("inf"))  # a NaN output never passes
        diff = max(diff, gap.max().item())
        scale = max(scale, ref.abs().max().item())
    return Parity(diff, scale, tolerance)


def _detection_rows(detections: dict[str, Tensor]) -> Tensor:
    return torch.cat([detections["scores"].float()[:, None], detections["labels"].float()[:, None],
                      detections["boxes"].float()], dim=1).cpu()


def compare_detections(reference: list[dict[str, Tensor]], candidate: list[dict[str, Tensor]],
                       tolerance: float) -> Parity:
    """Compare two detectors' outputs (one ``{boxes, labels, scores}`` per image) as sets of detections.

    Each (score, label, box) row is matched to the nearest row of the other side, so detections whose
    scores tie within rounding may come in either order. A top-k output (CenterNet) may keep a different
    one of the detections tied with its lowest score: rows scoring within ``tolerance`` of the reference's
    lowest score are left out when the two outputs are equally long. Raises ``ValueError`` when the numbers of
    detections differ otherwise.
    """
    diff, scale = 0.0, 1.0
    for ref, cand in zip(reference, candidate, strict=True):
        ref_rows, cand_rows = _detection_rows(ref), _detection_rows(cand)
        if len(ref_rows) == 0 and len(cand_rows) == 0:
            continue
        scale = max(scale, ref_rows.abs().max().item())
        if len(ref_rows) == len(cand_rows):
            floor = ref_rows[:, 0].min() + tolerance  # scores lie in [0, 1]
            ref_rows, cand_rows = ref_rows[ref_rows[:, 0] > floor], cand_rows[cand_rows[:, 0] > floor]
        if len(ref_rows) != len(cand_rows):
            raise ValueError(f"{len(ref_rows)} detections vs {len(cand_rows)}")
        if len(ref_rows):
            gaps = (ref_rows[:, None] - cand_rows[None]).abs().amax(dim=2).nan_to_num(nan=float("inf"))
            diff = max(diff, gaps.min(dim=1).values.max().item(), gaps.min(dim=0).values.max().item())
    return Parity(diff, scale, tolerance)
