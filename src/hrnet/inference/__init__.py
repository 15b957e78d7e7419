"""One inference API for the four tasks: :class:`Inferencer`, its typed results, and deployed models.

Sits between ``tasks/`` and ``cli/``: it runs the tasks' own prediction code with the network forward in
any :mod:`hrnet.deploy` path, on images, folders, videos and webcams (see ``docs/inference.md``).
"""

from .deployed import DeployedModule, check_path, deploy_task_model, training_calibration
from .inferencer import OPTIONS, Inferencer, load_experiment_config
from .results import (
    ClassificationResult,
    DetectionResult,
    PoseResult,
    Result,
    SegmentationResult,
    decode_mask,
    encode_mask,
)

__all__ = [
    "Inferencer", "OPTIONS", "load_experiment_config", "Result", "PoseResult", "SegmentationResult",
    "DetectionResult", "ClassificationResult", "encode_mask", "decode_mask", "DeployedModule", "deploy_task_model",
    "training_calibration", "check_path",
]
