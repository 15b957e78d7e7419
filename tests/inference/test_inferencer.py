"""``hrnet.Inferencer`` on the four tasks: every kind of input, one JSON schema, overlays drawn where the
results say."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import yaml
from inference_testutils import SETUPS, first_image, make_video, val_images

import hrnet
from hrnet.errors import ConfigError, DataError
from hrnet.inference import (
    ClassificationResult,
    DetectionResult,
    Inferencer,
    PoseResult,
    SegmentationResult,
    decode_mask,
    load_experiment_config,
)
from hrnet.media import image_files, read_image

HEADER = {"image_id", "file", "frame", "task", "height", "width"}
RESULT_TYPES = {"pose": PoseResult, "segmentation": SegmentationResult, "detection": DetectionResult,
                "classification": ClassificationResult}
#: options that make a random tiny model's results visible (every keypoint, every detection)
SHOW_ALL = {"pose": {"kpt_thre": 0.0}, "detection": {"score_threshold": 0.0}}


def check_schema(record: dict, task: str) -> None:
    """The shared header, then each task's fields in the shared conventions."""
    json.dumps(record)  # JSON-ready as it is
    assert set(record) >= HEADER and record["task"] == task
    if task == "pose":
        assert set(record) == HEADER | {"keypoint_names", "instances"}
        for inst in record["instances"]:
            assert set(inst) == {"box", "box_score", "keypoints", "score", "track_id"}
            x1, y1, x2, y2 = inst["box"]
            assert x2 >= x1 and y2 >= y1
            assert np.array(inst["keypoints"]).shape == (len(record["keypoint_names"]), 3)
    elif task == "detection":
        assert set(record) == HEADER | {"instances"}
        for inst in record["instances"]:
            assert {"box", "score", "label", "name"} <= set(inst) and isinstance(inst["name"], str)
            assert inst["box"][2] >= inst["box"][0] and inst["box"][3] >= inst["box"][1]
    elif task == "segmentation":
        assert set(record) == HEADER | {"classes", "segments"}
        assert sum(s["area"] for s in record["segments"]) <= record["height"] * record["width"]
        for segment in record["segments"]:
            assert segment["name"] == record["classes"][segment["label"]]
            assert segment["mask"]["size"] == [record["height"], record["width"]]
    else:
        assert set(record) == HEADER | {"top"}
        scores = [t["score"] for t in record["top"]]
        assert scores == sorted(scores, reverse=True) and all(set(t) == {"label", "name", "score"}
                                                              for t in record["top"])


def task_fields(record: dict) -> dict:
    return {key: value for key, value in record.items() if key not in HEADER}


@pytest.mark.parametrize("task", list(SETUPS))
def test_array_path_folder_and_video_give_results_in_one_schema(task, tiny, tmp_path):
    config, weights, root = tiny(task)
    inferencer = Inferencer(config, weights=weights, **SHOW_ALL.get(task, {}))
    file = first_image(root)
    image = read_image(file)

    from_array = inferencer(image)
    from_path = inferencer(file)
    assert isinstance(from_array, list) and isinstance(from_path, list)  # one image: a list of one
    [a], [p] = from_array, from_path
    assert isinstance(a, RESULT_TYPES[task]) and (a.image_id, a.file) == (0, None)
    assert p.file == str(file) and (p.height, p.width) == image.shape[:2]
    assert task_fields(a.to_json()) == task_fields(p.to_json())  # the same image gives the same result

    folder = list(inferencer(val_images(root)))
    files = image_files(val_images(root), recursive=True)
    assert [r.file for r in folder] == [str(f) for f in files]

    video = make_video(tmp_path / "clip.mp4")
    frames = list(inferencer(video))
    assert [(r.frame, r.image_id, r.file) for r in frames] == [(n, n, str(video)) for n in range(3)]
    assert (frames[0].height, frames[0].width) == (48, 64)
    mixed = list(inferencer([image, file, video]))  # a list of inputs: one generator over them all
    assert len(mixed) == 5

    for result in [a, p, *folder, *frames]:
        check_schema(result.to_json(), task)
        drawn = inferencer.draw(image if result.frame is None else np.zeros((48, 64, 3), np.uint8), result)
        assert drawn.dtype == np.uint8 and drawn.shape == (result.height, result.width, 3)


def test_pose_overlay_draws_each_keypoint_where_the_result_says(tiny):
    config, weights, root = tiny("pose")
    [result] = Inferencer(config, weights=weights, kpt_thre=0.0)(read_image(first_image(root)))
    grey = np.full((result.height, result.width, 3), 128, np.uint8)
    drawn = result.draw(grey)
    assert result.keypoints.shape == (1, 17, 3) and result.boxes.tolist() == [[0, 0, 64, 64]]
    inside = [(x, y) for x, y, _ in result.keypoints[0] if 0 <= round(x) < 64 and 0 <= round(y) < 64]
    assert inside
    for x, y in inside:
        assert (drawn[round(y), round(x)] != 128).any(), (x, y)
    far = np.ones((64, 64), bool)  # pixels away from every keypoint and the box outline stay untouched
    ys, xs = np.mgrid[:64, :64]
    for x, y in inside:
        far &= (xs - x) ** 2 + (ys - y) ** 2 > 36
    far[:4], far[-4:], far[:, :4], far[:, -4:] = False, False, False, False
    assert far.any() and (drawn[far] == 128).mean() > 0.5


def test_segmentation_overlay_blends_the_class_colours(tiny):
    config, weights, root = tiny("segmentation")
    image = cv2.resize(read_image(first_image(root)), (256, 192))
    [result] = Inferencer(config, weights=weights, alpha=0.5)(image)
    assert result.labels.shape == image.shape[:2] and result.labels.dtype == np.uint8
    expected = 0.5 * image + 0.5 * result.palette[result.labels]
    differs = np.abs(result.draw(image).astype(float) - expected).max(axis=2) > 1
    ys, xs = np.nonzero(differs)  # only the legend, in the top-left corner, is not the blend
    assert ys.min() <= 8 and xs.min() <= 8 and ys.max() < 96 and xs.max() < 192
    for segment in result.to_json()["segments"]:  # the RLE masks are the label map's
        assert (decode_mask(segment["mask"]) == (result.labels == segment["label"])).all()


def test_detection_overlay_outlines_each_box(tiny):
    config, weights, root = tiny("detection")
    [result] = Inferencer(config, weights=weights, score_threshold=0.0)(read_image(first_image(root)))
    assert len(result.boxes) > 0 and result.label_names[0] in ("disc", "square", "triangle", "star", "cross", "ring")
    grey = np.full((result.height, result.width, 3), 128, np.uint8)
    drawn = result.draw(grey)
    for x1, y1, x2, _ in result.boxes.round().astype(int):
        if x2 - x1 > 2:
            x, y = (x1 + x2) // 2, min(max(y1, 0), result.height - 1)
            assert (drawn[y, x] != 128).any()


def test_classification_result_names_its_top_classes(tiny):
    config, weights, root = tiny("classification")
    image = read_image(first_image(root))
    [result] = Inferencer(config, weights=weights, topk=3)(image)
    assert len(result.indices) == 3 and result.probabilities.sum() <= 1 + 1e-6
    classes = sorted(p.name for p in (root / "train").iterdir())
    assert result.names == [classes[i] for i in result.indices]
    assert (result.draw(image)[:8, :20] != image[:8, :20]).any()


def test_a_webcam_is_read_through_opencv(tiny, fake_capture, monkeypatch):
    """A webcam index goes to OpenCV's capture; here a fake one giving two frames."""
    import hrnet.media

    opened = []

    def capture(source):
        opened.append(source)
        return fake_capture(count=2, size=(48, 64))

    monkeypatch.setattr(hrnet.media.cv2, "VideoCapture", capture)
    config, weights, _ = tiny("classification")
    results = list(Inferencer(config, weights=weights)("webcam:1"))
    assert opened == [1] and [(r.frame, r.file) for r in results] == [(0, "webcam:1"), (1, "webcam:1")]


def test_bad_inputs_are_clear_errors(tiny, tmp_path):
    config, weights, root = tiny("classification")
    inferencer = Inferencer(config, weights=weights)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    with pytest.raises(DataError, match="broken.mp4"):
        list(inferencer(broken))
    with pytest.raises(DataError, match="input not found"):
        list(inferencer(tmp_path / "missing"))
    with pytest.raises(DataError, match="image not found: .*missing.jpg"):
        inferencer(tmp_path / "missing.jpg")
    with pytest.raises(DataError, match="RGB uint8"):
        inferencer(np.zeros((8, 8), np.float32))
    with pytest.raises(ConfigError, match="Did you mean 'topk'"):
        Inferencer(config, weights=weights, top_k=3)
    with pytest.raises(ConfigError, match="serves top-down pose"):
        Inferencer(config, weights=weights, detector=lambda image: (np.zeros((0, 4)), np.zeros(0)))


def test_paths_are_checked_by_name_device_and_package(tiny, monkeypatch, tmp_path):
    config, weights, _ = tiny("classification")
    with pytest.raises(ConfigError, match="Did you mean 'onnxruntime'"):
        Inferencer(config, weights=weights, path="onnxruntim")
    if not __import__("torch").cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA"):
            Inferencer(config, weights=weights, path="cuda_amp")
    import hrnet.inference.deployed as deployed

    pose_config, pose_weights, _ = tiny("pose")
    empty = tmp_path / "no_train.yaml"  # int8 calibrates on the train split: a missing one is said at once
    raw = yaml.safe_load(pose_config.read_text())
    empty.write_text(yaml.safe_dump({**raw, "data": {**raw["data"], "root": str(tmp_path / "nothing")}}))
    with pytest.raises(ConfigError, match="int8 calibration reads the config's train split"):
        Inferencer(empty, weights=pose_weights, path="onnxruntime_int8")
    monkeypatch.setattr(deployed, "_importable", lambda module: module != "onnxruntime")
    with pytest.raises(ConfigError, match="needs the Python package.*onnxruntime.*pip install onnxruntime"):
        Inferencer(config, weights=weights, path="onnxruntime")


def test_a_detector_backbone_runs_in_onnxruntime(tiny):
    """For a detector only the backbone is deployed (the heads' data-dependent shapes stay eager): the
    detections are the eager model's."""
    config, weights, root = tiny("detection")
    image = read_image(first_image(root))
    [eager] = Inferencer(config, weights=weights, score_threshold=0.0)(image)
    [onnx] = Inferencer(config, weights=weights, score_threshold=0.0, path="onnxruntime")(image)
    assert len(eager.boxes) > 0 and onnx.labels.tolist() == eager.labels.tolist()
    np.testing.assert_allclose(onnx.boxes, eager.boxes, atol=1e-2)
    np.testing.assert_allclose(onnx.scores, eager.scores, atol=1e-4)
    with pytest.raises(ConfigError, match="int8 .* detector"):
        Inferencer(config, weights=weights, path="onnxruntime_int8")


def test_a_pose_person_detector_and_box_files(tiny, tmp_path):
    """A detector callable gives the person boxes (xywh); a box file gives those of the images it lists."""
    config, weights, root = tiny("pose")
    file = first_image(root)
    detector = lambda image: (np.array([[4.0, 6, 30, 40], [0, 0, 2, 2]]), np.array([0.9, 0.1]))  # noqa: E731
    [result] = Inferencer(config, weights=weights, detector=detector, box_thre=0.5)(file)
    assert result.boxes.tolist() == [[4, 6, 34, 46]] and result.box_scores.tolist() == [0.9]
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps([{"image": file.name, "bbox": [10, 12, 20, 30], "score": 0.7}]))
    inferencer = Inferencer(config, weights=weights, boxes=str(boxes))
    [listed] = inferencer(file)
    assert listed.boxes.tolist() == [[10, 12, 30, 42]] and listed.to_json()["instances"][0]["box_score"] == 0.7
    [unlisted] = inferencer(val_images(root) / sorted(p.name for p in val_images(root).iterdir())[1])
    assert len(unlisted.boxes) == 0


def test_a_preset_name_finds_the_config_that_trains_it_as_it_is():
    cfg = load_experiment_config("pose_hrnet_w32")
    assert (cfg.task, cfg.model.name, cfg.model.overrides) == ("pose", "pose_hrnet_w32", {})
    assert tuple(cfg.data.input_size) == (192, 256)
    with pytest.raises(ConfigError, match="Did you mean 'pose_hrnet_w32'"):
        load_experiment_config("pose_hrnet_w3")


def test_the_package_exports_the_inferencer():
    assert hrnet.Inferencer is Inferencer and "Inferencer" in hrnet.__all__


def test_one_image_from_an_rgb_frame_of_a_video_is_the_frame(tiny, tmp_path):
    """A video's frames are predicted as the RGB arrays OpenCV decodes (not BGR)."""
    config, weights, _ = tiny("segmentation")
    inferencer = Inferencer(config, weights=weights)
    video = make_video(tmp_path / "clip.mp4", frames=1)
    capture = cv2.VideoCapture(str(video))
    ok, bgr = capture.read()
    capture.release()
    [from_video] = list(inferencer(video))
    [from_array] = inferencer(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    assert (from_video.labels == from_array.labels).all()


def test_a_torchvision_person_detector_by_name(tiny, tmp_path):
    """``detector="torchvision:NAME"`` with a state dict file: the poses are of the persons it finds, at most
    ``detector_max_persons`` of them."""
    import torch
    from torchvision.models import get_model

    from hrnet.tasks.detection.person import load_person_detector

    torch.manual_seed(0)
    ssd = get_model("ssdlite320_mobilenet_v3_large", weights=None, weights_backbone=None)
    with torch.no_grad():  # raise the person's logit so that the untrained model finds persons
        for head in ssd.head.classification_head.module_list:
            head[-1].bias.view(-1, 91)[:, 1] += 5.0
    torch.save(ssd.state_dict(), tmp_path / "ssd.pt")
    config, weights, root = tiny("pose")
    image = read_image(first_image(root))
    name = "torchvision:ssdlite320_mobilenet_v3_large"
    [result] = Inferencer(config, weights=weights, detector=name, detector_weights=tmp_path / "ssd.pt",
                          detector_threshold=0.0, detector_max_persons=2)(image)
    boxes, scores = load_person_detector(name, tmp_path / "ssd.pt", 0.0, max_persons=2)(image)
    assert 0 < len(result.boxes) <= 2
    xyxy = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)
    assert all(any(np.allclose(box, b, atol=1e-3) for b in xyxy) for box in result.boxes)
    with pytest.raises(ConfigError, match="needs detector_weights"):
        Inferencer(config, weights=weights, detector=name)


def test_detection_masks_are_run_length_encoded_and_drawn():
    import torch

    masks = torch.zeros(2, 1, 40, 60)
    masks[0, 0, 12:20, 10:30] = 0.9
    masks[1, 0, 0:5, 0:5] = 0.8
    output = {"boxes": torch.tensor([[10.0, 12, 30, 20], [0, 0, 5, 5]]), "labels": torch.tensor([2, 1]),
              "scores": torch.tensor([0.8, 0.3]), "masks": masks}
    result = DetectionResult.from_output(output, ["person", "car"], 0.5, image_id=7, height=40, width=60,
                                         file="a.jpg")
    record = result.to_json()
    check_schema(record, "detection")
    [instance] = record["instances"]  # the 0.3 one is under the threshold
    assert (instance["name"], instance["label"], instance["box"]) == ("car", 2, [10, 12, 30, 20])
    mask = decode_mask(instance["mask"])
    assert mask.shape == (40, 60) and mask.sum() == 8 * 20 and mask[12:20, 10:30].all()
    drawn = result.draw(np.zeros((40, 60, 3), np.uint8))
    assert drawn[16, 20].any() and not drawn[30:, 40:].any()  # the mask is filled, far pixels untouched


def test_pose_video_with_a_detector_is_tracked(tiny, tmp_path):
    """With a person detector, a video goes through the pose video pipeline: each person gets a track id
    (their stability is the tracker's tests', on poses that know the truth); the video options are checked."""
    config, weights, _ = tiny("pose")
    calls = []

    def detector(frame):
        calls.append(frame.shape)
        return np.array([[4.0, 6, 30, 40], [34, 8, 26, 36]]), np.array([0.9, 0.8])

    video = make_video(tmp_path / "clip.mp4", frames=4)
    results = list(Inferencer(config, weights=weights, detector=detector, detect_every=2)(video))
    assert len(results) == 4 and len(calls) >= 2  # frames 0 and 2 at least (more when poses carry no box)
    ids = [r.track_ids.tolist() for r in results]
    assert all(len(set(frame_ids)) == 2 and all(isinstance(i, int) for i in frame_ids) for frame_ids in ids)
    assert [inst["track_id"] for inst in results[0].to_json()["instances"]] == ids[0]
    untracked = list(Inferencer(config, weights=weights, detector=detector, track=False)(video))
    assert all(r.track_ids is None for r in untracked)
    with pytest.raises(ConfigError, match="detect_every must be at least 1"):
        list(Inferencer(config, weights=weights, detector=detector, detect_every=0)(video))
    with pytest.raises(ConfigError, match="needs track=true"):
        list(Inferencer(config, weights=weights, detector=detector, track=False, smooth=True)(video))
