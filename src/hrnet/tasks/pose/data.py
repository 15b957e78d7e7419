"""Top-down pose datasets: person instances from COCO-format or MPII annotations, and the crop dataset.

Loading is split from sampling:

* :func:`load_coco_instances` reads a COCO keypoint file (COCO itself or any custom set described by a
  :class:`~hrnet.tasks.pose.meta.KeypointMeta`) and returns one :class:`PersonInstance` per person box —
  ground-truth boxes (crowd and keypoint-less persons excluded, boxes clipped as the official loader), or
  the boxes of a person-detection results file;
* :func:`load_mpii_instances` reads the official MPII JSON layout (``annot/{train,valid}.json``);
* :class:`TopDownDataset` turns instances into network inputs: read image, (train) official augmentation,
  affine crop, ImageNet normalisation, and codec targets.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pycocotools.coco import COCO
from torch.utils.data import Dataset

from ...errors import DataError
from ...media import read_image
from .codecs import HeatmapCodec
from .meta import KeypointMeta
from .transforms import AugmentConfig, box_to_center_scale, random_augmentation, sanitize_box, to_input_tensor

__all__ = [
    "PersonInstance",
    "LoadReport",
    "read_image",
    "load_coco",
    "load_coco_instances",
    "load_detections",
    "load_mpii_instances",
    "TopDownDataset",
]

logger = logging.getLogger(__name__)

MissingImages = Literal["error", "skip"]


@dataclass
class PersonInstance:
    """One person to crop: where (``center``, ``scale``), what is known (``joints`` ``(K, 2)``, ``joints_vis``
    ``(K,)`` in {0, 1}) and how sure the box is (``score``: 1 for GT boxes, the detector's otherwise)."""

    image_path: Path
    image_id: int | str
    center: np.ndarray
    scale: np.ndarray
    joints: np.ndarray
    joints_vis: np.ndarray
    score: float = 1.0
    ann_id: int | None = None


@dataclass
class LoadReport:
    """What a loader kept and dropped, for logs and evaluation reports."""

    source: str
    num_images: int = 0
    num_instances: int = 0
    gt_boxes: bool = True
    missing_images: list[str] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)

    def drop(self, reason: str, n: int = 1) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + n


def _read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise DataError(f"{what} {str(path)!r} does not exist")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{what} {str(path)!r} is not valid JSON: {e}") from e


def load_coco(ann_file: str | os.PathLike) -> COCO:
    """A pycocotools ``COCO`` for a keypoint annotation file, with readable errors for bad files."""
    path = Path(ann_file)
    data = _read_json(path, "COCO annotation file")
    if not isinstance(data, dict) or "images" not in data or "annotations" not in data:
        raise DataError(f"COCO annotation file {str(path)!r} must be a mapping with 'images' and 'annotations'")
    if not data["images"]:
        raise DataError(f"COCO annotation file {str(path)!r} lists no images")
    data.setdefault("categories", [])
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _person_category(coco: COCO, ann_file: Path, meta: KeypointMeta) -> int:
    """The keypoint category: the first one (official ``cls == 1``), checked against the meta's size."""
    cats = coco.loadCats(coco.getCatIds())
    if not cats:
        raise DataError(f"COCO annotation file {str(ann_file)!r} has no categories")
    cat = cats[0]
    names = cat.get("keypoints")
    if names is not None and len(names) != meta.num_keypoints:
        raise DataError(
            f"{str(ann_file)!r}: category {cat.get('name')!r} has {len(names)} keypoints but the "
            f"keypoint meta {meta.name!r} has {meta.num_keypoints}; pass the matching meta file"
        )
    return int(cat["id"])


def _numbers(ann: dict[str, Any], key: str, ann_file: Path) -> np.ndarray:
    """``ann[key]`` as float64, or a ``DataError`` naming the annotation and the field."""
    try:
        return np.asarray(ann[key], dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise DataError(
            f"{str(ann_file)!r}: annotation id {ann.get('id')} (image {ann.get('image_id')}) has a field "
            f"'{key}' that is not a list of numbers ({e})"
        ) from None


def _check_keypoints(ann: dict[str, Any], k: int, ann_file: Path) -> np.ndarray:
    kpts = ann.get("keypoints")
    if kpts is None or len(kpts) != 3 * k:
        n = "no" if kpts is None else len(kpts)
        raise DataError(
            f"{str(ann_file)!r}: annotation id {ann.get('id')} (image {ann.get('image_id')}) has {n} "
            f"keypoint values; expected {3 * k} ({k} keypoints x (x, y, v))"
        )
    return _numbers(ann, "keypoints", ann_file).reshape(k, 3)


def _image_path(image_dir: Path, img: dict[str, Any]) -> Path:
    name = img.get("file_name") or f"{int(img['id']):012d}.jpg"
    return image_dir / name


def load_detections(
    det_file: str | os.PathLike, coco: COCO, category_id: int, score_thre: float = 0.0
) -> list[dict[str, Any]]:
    """Person boxes of a COCO detection results file (``image_id``, ``category_id``, ``bbox``, ``score``).

    Boxes of other categories and with ``score < score_thre`` (official ``IMAGE_THRE``) are dropped; a box
    on an image id the annotation file does not list is an error naming those ids.
    """
    path = Path(det_file)
    dets = _read_json(path, "person detection file")
    if not isinstance(dets, list):
        raise DataError(f"person detection file {str(path)!r} must hold a JSON list of detections")
    for i, d in enumerate(dets):
        if not isinstance(d, dict) or not {"image_id", "bbox", "score"} <= d.keys() or len(d["bbox"]) != 4:
            raise DataError(
                f"person detection file {str(path)!r}: entry {i} is not "
                "{'image_id', 'category_id', 'bbox': [x, y, w, h], 'score'}"
            )
    known = set(coco.getImgIds())
    unknown = sorted({d["image_id"] for d in dets} - known, key=str)
    if unknown:
        shown = ", ".join(str(u) for u in unknown[:10]) + (" ..." if len(unknown) > 10 else "")
        raise DataError(
            f"person detection file {str(path)!r} has boxes for {len(unknown)} image id(s) that are "
            f"not in the annotation file: {shown}"
        )
    return [d for d in dets if d.get("category_id", category_id) == category_id and d["score"] >= score_thre]


def load_coco_instances(
    ann_file: str | os.PathLike,
    image_dir: str | os.PathLike,
    meta: KeypointMeta,
    aspect_ratio: float,
    boxes: Literal["gt", "detections"] = "gt",
    det_file: str | os.PathLike | None = None,
    det_score_thre: float = 0.0,
    missing_images: MissingImages = "error",
    padding: float = 1.25,
    box_to_cs: Callable[[Sequence[float], float], tuple[np.ndarray, np.ndarray]] | None = None,
) -> tuple[COCO, list[PersonInstance], LoadReport]:
    """Person instances of a COCO-format keypoint file, as the official ``COCODataset._get_db``.

    ``boxes='gt'``: one instance per non-crowd annotation of the keypoint category with ``area > 0``, a
    non-empty clipped box (:func:`~hrnet.tasks.pose.transforms.sanitize_box`) and at least one labelled
    keypoint; visibility is ``min(v, 1)``. ``boxes='detections'``: one instance per box of ``det_file``
    (:func:`load_detections`), keypoints unknown. Center/scale come from ``box_to_cs(box, padding)``, by
    default :func:`~hrnet.tasks.pose.transforms.box_to_center_scale` (aspect ``aspect_ratio``); pass the
    codec's ``box_to_center_scale`` for a codec with its own geometry (DARK).

    Every annotation's keypoint list must have ``3 K`` values (the error names the annotation id). An image
    file that does not exist is an error naming it, or with ``missing_images='skip'`` its instances are
    dropped and the file is listed in the report.
    """
    ann_file, image_dir = Path(ann_file), Path(image_dir)
    if box_to_cs is None:
        def box_to_cs(box: Sequence[float], pad: float) -> tuple[np.ndarray, np.ndarray]:
            return box_to_center_scale(box, aspect_ratio, pad)
    coco = load_coco(ann_file)
    cat_id = _person_category(coco, ann_file, meta)
    k = meta.num_keypoints
    report = LoadReport(source=str(ann_file), num_images=len(coco.getImgIds()), gt_boxes=boxes == "gt")
    for ann in coco.dataset["annotations"]:
        if ann.get("category_id") == cat_id:
            _check_keypoints(ann, k, ann_file)

    instances: list[PersonInstance] = []
    if boxes == "gt":
        for img_id in coco.getImgIds():
            img = coco.loadImgs(img_id)[0]
            for ann in coco.loadAnns(coco.getAnnIds(imgIds=img_id, iscrowd=False)):
                if ann.get("category_id") != cat_id:
                    continue
                box = _numbers(ann, "bbox", ann_file)
                clean = sanitize_box(box, img["width"], img["height"]) if ann.get("area", 1) > 0 else None
                if clean is None:
                    report.drop("empty box")
                    continue
                kpts = _check_keypoints(ann, k, ann_file)
                if kpts.max() == 0:
                    report.drop("no keypoints")
                    continue
                center, scale = box_to_cs(clean, padding)
                instances.append(
                    PersonInstance(
                        _image_path(image_dir, img),
                        img_id,
                        center,
                        scale,
                        kpts[:, :2].copy(),
                        np.minimum(kpts[:, 2], 1.0),
                        1.0,
                        ann.get("id"),
                    )
                )
    elif boxes == "detections":
        if det_file is None:
            raise DataError("evaluation on detected person boxes needs a detection results file")
        for det in load_detections(det_file, coco, cat_id, det_score_thre):
            img = coco.loadImgs(det["image_id"])[0]
            center, scale = box_to_cs(det["bbox"], padding)
            instances.append(
                PersonInstance(
                    _image_path(image_dir, img),
                    det["image_id"],
                    center,
                    scale,
                    np.zeros((k, 2)),
                    np.ones(k),
                    float(det["score"]),
                )
            )
    else:
        raise DataError(f"boxes={boxes!r}: expected 'gt' or 'detections'")
    if report.dropped.get("empty box"):
        logger.warning("%s: dropped %d person box(es) that are empty (zero, negative or non-finite width or "
                       "height, or outside the image)", ann_file, report.dropped["empty box"])
    instances = _handle_missing(instances, missing_images, report)
    report.num_instances = len(instances)
    return coco, instances, report


def _handle_missing(instances: list[PersonInstance], policy: MissingImages, report: LoadReport) -> list[PersonInstance]:
    exists: dict[Path, bool] = {}
    for inst in instances:
        if inst.image_path not in exists:
            exists[inst.image_path] = inst.image_path.is_file()
    missing = [p for p, ok in exists.items() if not ok]
    if not missing:
        return instances
    if policy == "error":
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise DataError(
            f"image {str(missing[0])!r} does not exist{more}; fix the image folder, or set "
            "data.missing_images=skip to leave such images out"
        )
    report.missing_images = [str(p) for p in missing]
    logger.warning("skipped %d missing image(s), e.g. %s", len(missing), missing[0])
    kept = [inst for inst in instances if exists[inst.image_path]]
    report.drop("missing image", len(instances) - len(kept))
    return kept


def load_mpii_instances(
    json_file: str | os.PathLike,
    image_dir: str | os.PathLike,
    num_joints: int = 16,
    missing_images: MissingImages = "error",
    has_joints: bool = True,
) -> tuple[list[PersonInstance], LoadReport]:
    """Person instances of the official MPII JSON layout (``MPIIDataset._get_db``).

    Each record has ``image``, ``center`` (x, y), ``scale`` (height / 200) and, unless ``has_joints`` is
    false (test set), ``joints`` (16 x [x, y]) and ``joints_vis``. As upstream: ``center_y += 15 * scale``,
    ``scale *= 1.25`` (when ``center_x != -1``), then center and joints move from MATLAB 1-based to
    0-based pixels. ``image_id`` is the record's position in the file (the order of ``gt_valid.mat``).
    """
    path, image_dir = Path(json_file), Path(image_dir)
    records = _read_json(path, "MPII annotation file")
    if not isinstance(records, list):
        raise DataError(f"MPII annotation file {str(path)!r} must hold a JSON list of people")
    if not records:
        raise DataError(f"MPII annotation file {str(path)!r} lists no people")
    report = LoadReport(source=str(path), num_images=len({r.get("image") for r in records if isinstance(r, dict)}))
    instances = []
    for i, rec in enumerate(records):
        missing = [key for key in ("image", "center", "scale") if not isinstance(rec, dict) or key not in rec]
        if missing:
            raise DataError(f"{str(path)!r}: record {i} lacks {missing}")
        c = np.array(rec["center"], dtype=np.float64)
        s = np.array([rec["scale"], rec["scale"]], dtype=np.float64)
        if c[0] != -1:
            c[1] = c[1] + 15 * s[1]
            s = s * 1.25
        c = c - 1
        joints, vis = np.zeros((num_joints, 2)), np.zeros(num_joints)
        if has_joints:
            j = np.asarray(rec.get("joints", []), dtype=np.float64)
            v = np.asarray(rec.get("joints_vis", []), dtype=np.float64).reshape(-1)
            if j.shape != (num_joints, 2) or v.shape != (num_joints,):
                raise DataError(
                    f"{str(path)!r}: record {i} (image {rec['image']!r}) has joints of shape "
                    f"{j.shape} and joints_vis of shape {v.shape}; expected ({num_joints}, 2) and "
                    f"({num_joints},)"
                )
            joints, vis = j - 1, v
        instances.append(PersonInstance(image_dir / rec["image"], i, c, s, joints, vis))
    instances = _handle_missing(instances, missing_images, report)
    report.num_instances = len(instances)
    return instances, report


def _sample_rng() -> np.random.Generator:
    """A generator seeded from torch's RNG: reproducible under the engine's seeding, in workers too."""
    return np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))


class TopDownDataset(Dataset):
    """Person crops for a top-down pose network.

    Each item is a dict: ``image`` (3, H, W) normalised float32, ``target`` (K, h, w) heatmaps,
    ``target_weight`` (K, 1), ``center``/``scale`` (2,) of the crop actually taken, ``rotation``, ``score``
    (box score) and ``index`` (position in :attr:`instances`, to find the image id at evaluation).
    With ``train=True`` the official augmentation (:func:`~hrnet.tasks.pose.transforms.random_augmentation`)
    is applied; ``use_joint_weights`` multiplies the target weight by the meta's joint weights (official
    ``USE_DIFFERENT_JOINTS_WEIGHT``). ``coco`` (the ground truth for COCO evaluation) and ``report`` (what
    loading kept and dropped) travel with the dataset for the evaluation step.
    """

    def __init__(
        self,
        instances: Sequence[PersonInstance],
        codec: HeatmapCodec,
        meta: KeypointMeta,
        train: bool = False,
        augment: AugmentConfig | None = None,
        use_joint_weights: bool = False,
        color_rgb: bool = True,
        coco: COCO | None = None,
        report: LoadReport | None = None,
    ) -> None:
        self.instances = list(instances)
        self.coco = coco
        self.report = report
        self.codec = codec
        self.meta = meta
        self.train = train
        augment = augment or AugmentConfig()
        if not meta.upper_body_ids:  # half-body augmentation needs to know the upper body
            augment = replace(augment, half_body_prob=0.0)
        self.augment = augment
        self.use_joint_weights = use_joint_weights
        self.color_rgb = color_rgb

    def __len__(self) -> int:
        return len(self.instances)

    def __getitem__(self, index: int) -> dict[str, Any]:
        inst = self.instances[index]
        image = read_image(inst.image_path, "rgb" if self.color_rgb else "bgr")
        joints, vis = inst.joints, inst.joints_vis
        center, scale, rot = inst.center, inst.scale, 0.0
        if self.train:
            image, joints, vis, center, scale, rot = random_augmentation(
                image,
                joints,
                vis,
                center,
                scale,
                self.augment,
                _sample_rng(),
                self.meta.flip_pairs,
                self.meta.upper_body_ids,
                self.codec.aspect_ratio,
            )
        crop = self.codec.warp(image, center, scale, rot)
        target, weight = self.codec.encode(self.codec.input_keypoints(joints, vis, center, scale, rot), vis)
        if self.use_joint_weights:
            weight = weight * self.meta.weights
        return {
            "image": to_input_tensor(crop),
            "target": torch.from_numpy(target),
            "target_weight": torch.from_numpy(np.asarray(weight, dtype=np.float32)),
            "center": torch.as_tensor(np.asarray(center, dtype=np.float64)),
            "scale": torch.as_tensor(np.asarray(scale, dtype=np.float64)),
            "rotation": torch.tensor(rot, dtype=torch.float64),
            "score": torch.tensor(inst.score, dtype=torch.float64),
            "index": index,
        }
