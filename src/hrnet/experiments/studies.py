"""The paper's ablation studies (TPAMI Sec. 4.5, Table 12, Figs. 9-10) as data.

Each study is a list of variants; a variant is a set of model options (the backbone/head knobs of
``hrnet.build_model``) plus the paper's figures for it, COCO pose AP (W32, 256x192) and Cityscapes
mIoU (W48), where the paper gives them. ``None`` means the paper reports no number for that cell.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Variant", "Study", "STUDIES"]


@dataclass(frozen=True)
class Variant:
    name: str
    options: dict[str, Any] = field(default_factory=dict)
    paper_pose_ap: float | None = None
    paper_seg_miou: float | None = None
    #: pose only: a variant that only changes how heatmaps are decoded has no segmentation counterpart
    pose_only: bool = False
    #: the tasks for which this variant is HRNet as published: it recurs across studies, and the spread of
    #: its results measures the run-to-run noise of the small-scale runs
    reference_for: tuple[str, ...] = ()


@dataclass(frozen=True)
class Study:
    name: str
    title: str
    paper_source: str
    variants: tuple[Variant, ...]
    tasks: tuple[str, ...] = ("pose", "segmentation")


STUDIES: dict[str, Study] = {s.name: s for s in [
    Study("fusion", "Multi-resolution fusion: final only / + across stages / + within stages",
          "Table 12 (from scratch)", (
              Variant("final", {"fusion": "final"}, 70.8, 74.8),
              Variant("across", {"fusion": "across"}, 71.9, 75.4),
              Variant("within (HRNet)", {"fusion": "within"}, 73.4, 76.4, reference_for=("pose", "segmentation")),
          )),
    Study("resolution", "Resolution of the representation: heatmaps from the 1x, 2x, 4x branch",
          "Fig. 9 (W32, ImageNet-pretrained)", (
              Variant("1x", {"branch": 0}, 74.4, pose_only=True, reference_for=("pose",)),
              Variant("2x", {"branch": 1}, 68.9, pose_only=True),
              Variant("4x", {"branch": 2}, 55.0, pose_only=True),
          ), tasks=("pose",)),
    Study("maintenance", "Resolution maintenance: progressive / all four streams from the start / high only",
          "Sec. 4.5 text", (
              Variant("progressive (HRNet)", {"resolution": "progressive"}, 73.4, 76.4,
                      reference_for=("pose", "segmentation")),
              Variant("all from start", {"resolution": "all_from_start"}, 72.5, 75.7),
              Variant("high-resolution only", {"resolution": "high_only"}),
          )),
    Study("heads", "Representation head: V1 vs V1h vs V2",
          "Fig. 10a (Cityscapes, W48; read from the plot) and Sec. 4.5 (pose V2, W32 from scratch)", (
              Variant("V1", {"representation": "v1"}, 73.4, 81.0, reference_for=("pose",)),
              Variant("V1h", {"representation": "v1h"}, None, 81.0),
              Variant("V2", {"representation": "v2"}, 73.6, 81.1, reference_for=("segmentation",)),
          )),
    Study("operators", "Fusion operators: strided conv vs bilinear downsampling; sum vs multiplication",
          "Sec. 4.5 text", (
              Variant("strided conv + sum (HRNet)", {}, 73.4, 76.4, reference_for=("pose", "segmentation")),
              Variant("bilinear downsampling", {"downsample": "bilinear"}, 72.6, 74.2),
              Variant("multiplication", {"fuse_method": "mul"}, 54.7, 66.0),
          )),
]}
