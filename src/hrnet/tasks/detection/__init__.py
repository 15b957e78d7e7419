"""Object detection and instance segmentation: HRNetV2p in torchvision's Faster/Mask R-CNN, FCOS, RetinaNet,
Cascade R-CNN, Cascade Mask R-CNN and Hybrid Task Cascade, and CenterNet on HRNetV2.

Presets are named ``<architecture>_<backbone>`` (:func:`list_detectors`, :func:`split_detector_name`);
:func:`build_detector` builds one, :func:`measure_detector` counts its parameters and GFLOPs as the
paper's Table 7 does (:func:`paper_params_table`).

Importing the task module registers ``task: detection`` with the engine. ``detect_people`` and
:class:`PersonDetector` (:func:`load_person_detector`) are the person detector of the top-down pose pipeline.
"""

from .centernet import CenterNet, CenterNetTrainTransform
from .data import CategoryMap, CocoDetection, collate_detection, eval_transforms, train_transforms
from .evaluation import detections_to_coco, evaluate_coco, write_results
from .inference import detect, detect_people, person_boxes
from .models import (
    ARCHITECTURES,
    BACKBONES,
    build_detector,
    format_params_table,
    list_detectors,
    measure_detector,
    paper_params_table,
    split_detector_name,
)
from .person import PersonDetector, list_torchvision_detectors, load_person_detector, person_label
from .task import DetectionDataConfig, DetectionTask
from .visualize import draw_boxes, draw_detections

__all__ = [
    "ARCHITECTURES",
    "BACKBONES",
    "build_detector",
    "list_detectors",
    "split_detector_name",
    "measure_detector",
    "paper_params_table",
    "format_params_table",
    "CenterNet",
    "CenterNetTrainTransform",
    "CategoryMap",
    "CocoDetection",
    "train_transforms",
    "eval_transforms",
    "collate_detection",
    "detections_to_coco",
    "evaluate_coco",
    "write_results",
    "detect",
    "detect_people",
    "person_boxes",
    "draw_detections",
    "draw_boxes",
    "PersonDetector",
    "person_label",
    "load_person_detector",
    "list_torchvision_detectors",
    "DetectionDataConfig",
    "DetectionTask",
]
