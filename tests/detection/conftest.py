from pathlib import Path

import pytest

from hrnet.data.synthetic import synthesize


@pytest.fixture(scope="session")
def tiny_backbone() -> dict:
    """A reduced HRNetV2p: width 2, one unit per stage, a 64-channel pyramid (FCOS's GroupNorm has 32
    groups, and needs two values per group on the 1x1 top level of a small image)."""
    return {"width": 2, "blocks": 1, "modules": (1, 1, 1), "stage1_blocks": 1, "out_channels": 64}


@pytest.fixture(scope="session")
def light_rcnn() -> dict:
    """Fewer proposals and sampled anchors / RoIs than the paper's, to keep tiny train steps fast."""
    return {"rpn_post_nms_top_n_train": 200, "rpn_batch_size_per_image": 64, "box_batch_size_per_image": 64}


@pytest.fixture(scope="session")
def coco_detection(shared_data: Path) -> Path:
    root = shared_data / "coco_detection"
    if not root.is_dir():
        pytest.skip(f"{root} not found")
    return root


@pytest.fixture(scope="session")
def synthetic_det(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize("det", tmp_path_factory.mktemp("det") / "synthetic", num_train=4, num_val=3,
                      image_size=(96, 128))


@pytest.fixture(scope="session")
def synthetic_det_stuff(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic detection set with COCO-Stuff-style label maps (for HTC's semantic branch)."""
    return synthesize("det", tmp_path_factory.mktemp("det_stuff") / "synthetic", num_train=4, num_val=3,
                      image_size=(96, 128), stuff_maps=True)
