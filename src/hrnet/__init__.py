"""HRNet: deep high-resolution representation learning for pose, segmentation, detection and classification.

The public entry points::

    hrnet.list_models()                          # preset names
    hrnet.build_model("pose_hrnet_w32")          # a preset, with optional overrides
    hrnet.from_official("w32_256x192.yaml", checkpoint="final_state.pth")  # an official config/checkpoint
    hrnet.load_weights(model, "weights.pth")     # official, timm or our safetensors weights
    hrnet.complexity(model, (256, 192))          # params and GFLOPs, paper convention
    hrnet.Inferencer("pose/coco/hrnet_w32_256x192", weights="w32.pt", path="onnxruntime")("photo.jpg")  # any task
"""

from typing import Any

from . import errors
from .models import build_model, complexity, list_models, load_weights, save_weights
from .models.official import from_official

__version__ = "0.1.0"
__all__ = ["Inferencer", "build_model", "list_models", "from_official", "load_weights", "save_weights", "complexity",
           "errors", "__version__"]


def __getattr__(name: str) -> Any:
    """``hrnet.Inferencer`` is imported on first use: it pulls in every task."""
    if name == "Inferencer":
        from .inference import Inferencer

        return Inferencer
    raise AttributeError(f"module 'hrnet' has no attribute {name!r}")
