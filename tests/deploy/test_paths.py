"""Every deploy path this machine can run returns the eager model's outputs on a tiny HRNet."""

import pytest
import torch
from conftest import SIZE

import hrnet
from hrnet.deploy import PATHS, deploy, example_input, get_path, list_paths
from hrnet.errors import ConfigError

FAST = [p for p in list_paths("cpu") if not p.startswith("compile")]
COMPILED = [p for p in list_paths("cpu") if p.startswith("compile")]


def _check(model, images, path):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    deployed = deploy(model, path, example=images[:1], calibration=[images])
    parity = deployed.check(model, images)  # batch 3: not the traced batch size
    assert parity.ok, f"{path}: {parity}"
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()), "deploy changed the model"
    return parity


@pytest.mark.parametrize("path", FAST)
def test_path_matches_eager(pose_model, images, path):
    parity = _check(pose_model, images, path)
    if PATHS[path].precision == "fp32":
        assert parity.max_abs_diff <= 1e-4 * parity.scale


@pytest.mark.timeout(600)
@pytest.mark.parametrize("path", COMPILED)
def test_compiled_path_matches_eager(pose_model, images, path):
    _check(pose_model, images, path)


def test_default_example_is_the_preset_input_size():
    with torch.device("meta"):
        model = hrnet.build_model("pose_hrnet_w32")
    assert example_input(model, device="meta").shape == (1, 3, 256, 192)
    with pytest.raises(ConfigError, match="input_size"):
        example_input(torch.nn.Conv2d(3, 3, 1))


def test_unknown_and_unavailable_paths_are_explained(pose_model):
    with pytest.raises(ConfigError, match="Did you mean 'compile'"):
        deploy(pose_model, "compil", input_size=SIZE)
    if not torch.cuda.is_available():
        assert "cuda_amp" not in list_paths() and "cuda_amp" in list_paths(available_only=False)
        with pytest.raises(ConfigError, match="CUDA GPU"):
            get_path("cuda_amp")
