"""HRNet models: the backbone, its heads, the preset registry, complexity and official compatibility."""

from .complexity import Complexity, complexity
from .heads import ClsHRNet, HRNetV2p, PoseHRNet, SegHRNet, SegHRNetOCR
from .higherhrnet import PoseHigherHRNet
from .hrnet import BackboneConfig, HighResolutionNet, StageConfig, backbone_config
from .registry import PRESETS, build_model, get_preset, list_models
from .weights import LoadReport, convert_checkpoint, load_state_dict_file, load_weights, save_weights

__all__ = [
    "BackboneConfig", "StageConfig", "backbone_config", "HighResolutionNet",
    "PoseHRNet", "PoseHigherHRNet", "SegHRNet", "SegHRNetOCR", "ClsHRNet", "HRNetV2p",
    "PRESETS", "build_model", "get_preset", "list_models", "Complexity", "complexity",
    "LoadReport", "convert_checkpoint", "load_state_dict_file", "load_weights", "save_weights",
]
