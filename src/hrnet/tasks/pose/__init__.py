"""Human pose estimation: top-down with HRNetV1 (COCO, MPII and custom COCO-format keypoint sets) and
bottom-up with HigherHRNet (COCO, CrowdPose; no person boxes).

The modules follow the pipeline: ``transforms`` (boxes, affine crops, augmentation), ``codecs`` (targets
and decoding), ``loss``, ``postprocess`` (flip test, rescoring, OKS-NMS, and the ``PoseDecoder`` step that
evaluation and prediction share), ``evaluation`` (COCO AP, MPII PCKh, the training ``accuracy``, the
``PoseEvaluator``), ``data``, ``inference`` (batched top-down prediction), ``visualize``; ``config`` holds
the config sections and ``task`` plugs them into the engine. Bottom-up: ``associative_embedding`` (targets
and losses), ``grouping`` (the official tag grouping), ``bottomup`` (test-time resizing, flip and
multi-scale aggregation, :class:`BottomUpPredictor`), ``bottomup_data`` and ``bottomup_task``
(``task: pose_bottomup``). See ``docs/pose.md``.
"""

from ...compat import alias_modules
from .bottomup import BottomUpPredictor, coco_results
from .codecs import DARKHeatmap, HeatmapCodec, MSRAHeatmap, UDPHeatmap, build_codec, get_max_preds
from .data import PersonInstance, TopDownDataset, load_coco_instances, load_mpii_instances
from .evaluation import (
    PoseEvaluator,
    accuracy,
    coco_keypoint_results,
    evaluate_coco_keypoints,
    evaluate_crowdpose_keypoints,
    mpii_pckh,
)
from .grouping import GroupingParams, group_people
from .inference import TopDownPredictor, boxes_for_image, load_boxes, predict_video
from .loss import JointsMSELoss, JointsOHKMMSELoss
from .meta import COCO_META, CROWDPOSE_META, MPII_META, KeypointMeta, load_meta
from .postprocess import PoseDecoder, oks_iou, oks_nms, rescore, rescore_and_nms, soft_oks_nms
from .transforms import box_to_center_scale, flip_back, get_affine_transform, transform_preds
from .visualize import draw_poses

alias_modules({"hrnet.tasks.pose.datasets": "hrnet.tasks.pose.data"})  # the module's name before 0.2

__all__ = [
    "MSRAHeatmap", "DARKHeatmap", "UDPHeatmap", "HeatmapCodec", "build_codec", "get_max_preds",
    "PersonInstance", "TopDownDataset", "load_coco_instances", "load_mpii_instances",
    "coco_keypoint_results", "evaluate_coco_keypoints", "mpii_pckh", "accuracy", "PoseEvaluator",
    "TopDownPredictor", "load_boxes", "boxes_for_image", "predict_video",
    "JointsMSELoss", "JointsOHKMMSELoss",
    "KeypointMeta", "COCO_META", "MPII_META", "CROWDPOSE_META", "load_meta",
    "BottomUpPredictor", "GroupingParams", "group_people", "coco_results", "evaluate_crowdpose_keypoints",
    "oks_iou", "oks_nms", "soft_oks_nms", "rescore", "rescore_and_nms", "PoseDecoder",
    "box_to_center_scale", "get_affine_transform", "transform_preds", "flip_back",
    "draw_poses",
]  # fmt: skip
