"""Fast, faithful inference: BN folding, channels_last, torch.compile, bf16, ONNX Runtime, int8.

    import hrnet, hrnet.deploy as deploy
    model = hrnet.build_model("pose_hrnet_w32", weights="pose_w32.safetensors")
    fast = deploy.deploy(model, "compile")                # or "onnxruntime", "compile_bf16", ...
    heatmaps = fast(images)                               # same outputs as model(images), in fp32
    print(fast.check(model, images))                      # max-abs-diff against the eager model
    deploy.export_onnx(model, "pose.onnx", deploy.example_input(model))

Every path and its tolerance is listed in :mod:`hrnet.deploy.paths`; ``hrnet bench MODEL`` times
them all against eager fp32 (:mod:`hrnet.deploy.bench`).
"""

from .calibration import calibration_batches
from .compile import cache_root, compile_for_inference, enable_compile_cache, prepare_for_inference
from .fold import conv_bn_pairs, fold_batchnorm
from .onnx import OnnxRunner, export_onnx, quantize_onnx
from .parity import Parity, compare_outputs
from .paths import PATHS, DeployedModel, DeployPath, deploy, example_input, get_path, list_paths

__all__ = [
    "deploy", "DeployedModel", "DeployPath", "PATHS", "list_paths", "get_path", "example_input",
    "fold_batchnorm", "conv_bn_pairs", "prepare_for_inference", "compile_for_inference", "enable_compile_cache",
    "cache_root", "export_onnx", "OnnxRunner", "quantize_onnx", "calibration_batches", "Parity", "compare_outputs",
]
