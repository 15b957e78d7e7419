"""HRNet: deep high-resolution representation learning for pose, segmentation, detection and classification.

The public entry points::

    hrnet.list_models()                          # preset names
    hrnet.build_model("pose_hrnet_w32")          # a preset, with optional overrides
    hrnet.from_official("w32_256x192.yaml", checkpoint="final_state.pth")  # an official config/checkpoint
    hrnet.load_weights(model, "weights.pth")     # official, timm or our safetensors weights
    hrnet.complexity(model, (256, 192))          # params and GFLOPs, paper convention
"""

from . import errors
from .models import build_model, complexity, list_models, load_weights, save_weights
from .models.official import from_official

__version__ = "0.1.0"
__all__ = ["build_model", "list_models", "from_official", "load_weights", "save_weights", "complexity", "errors",
           "__version__"]
