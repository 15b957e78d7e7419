"""Deterministic synthetic datasets in the real on-disk formats, for tests, benchmarks and the quickstart.

``synthesize(task, out)`` writes a train and a val split:

- ``pose``: COCO person-keypoint JSON + JPEGs of articulated stick figures (``figures.py``);
- ``seg``: JPEGs of shapes on textured backgrounds + single-channel PNG label maps + ``classes.json``;
- ``det``: COCO instances JSON (boxes, polygon masks) + JPEGs of possibly overlapping shapes; with
  ``stuff_maps``, also COCO-Stuff-style label PNGs ``stuffthingmaps/<split>/<image stem>.png`` (each shape's
  category id - 1, the background ``len(DET_CATEGORIES)``), for HTC's semantic branch;
- ``cls``: an ImageNet-style folder tree ``split/class_name/id.jpg`` of one shape per image.

Every image has its own random generator seeded from (seed, task, split, index), so a dataset is the
same bytes for the same arguments. The folder is written under a temporary name and renamed into
place at the end, so an interrupted run never leaves a half-written dataset behind.
"""

from __future__ import annotations

import contextlib
import functools
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from ..errors import DataError, did_you_mean
from ..io import write_json
from ..media import write_image
from .figures import COCO_KEYPOINT_NAMES, COCO_SKELETON, PELVIS_HEIGHT, draw_figure, sample_figure
from .shapes import SHAPES, shape_mask, shape_polygon
from .textures import background, finish, hsv_colour, paint_object, random_colour

TASK_ALIASES = {
    "pose": "pose", "keypoints": "pose",
    "seg": "seg", "segmentation": "seg",
    "det": "det", "detection": "det",
    "cls": "cls", "classification": "cls",
}  # fmt: skip
#: default (num_train, num_val, (height, width)) per task
DEFAULTS: dict[str, tuple[int, int, tuple[int, int]]] = {
    "pose": (300, 60, (192, 256)),
    "seg": (200, 50, (192, 256)),
    "det": (200, 50, (192, 256)),
    "cls": (800, 200, (64, 64)),
}
#: segmentation classes (id = position) and the hue each class's objects tend to have
SEG_CLASSES = ("background", "disc", "square", "triangle", "star", "cross", "ring")
SEG_HUES = (0.0, 0.0, 50.0, 110.0, 170.0, 230.0, 290.0)
#: detection categories; COCO category id = position + 1
DET_CATEGORIES = ("disc", "square", "triangle", "star")
#: classification classes (folder names)
CLS_CLASSES = ("disc", "ring", "triangle", "square", "cross", "star", "crescent", "bar")
IGNORE_INDEX = 255
MANIFEST = "synthetic.json"
_GENERATOR_VERSION = 1
_TASK_CODES = {"pose": 1, "seg": 2, "det": 3, "cls": 4}
_SPLITS = ("train", "val")


def synthesize(
    task: str,
    out: str | Path,
    *,
    num_train: int | None = None,
    num_val: int | None = None,
    seed: int = 0,
    image_size: tuple[int, int] | None = None,
    overwrite: bool = False,
    stuff_maps: bool = False,
    persons: tuple[int, int] | None = None,
) -> Path:
    """Write a synthetic ``task`` dataset (pose | seg | det | cls, or their long names) to ``out``.

    ``image_size`` is (height, width); counts and size default to ``DEFAULTS[task]``. For ``cls``,
    images are spread evenly over the classes. If ``out`` already holds a dataset made with the same
    arguments it is returned untouched; any other existing ``out`` (but an empty folder) is an error
    unless ``overwrite``. ``stuff_maps`` (``det`` only) adds the label maps of the objects and background.
    ``persons`` (``pose`` only; min, max) makes every image a crowd of that many overlapping figures, for
    bottom-up (multi-person) pose.
    Returns ``out``.
    """
    key = TASK_ALIASES.get(task)
    if key is None:
        raise DataError(
            f"unknown synthetic task {task!r}; choose one of {sorted(TASK_ALIASES)}.{did_you_mean(task, TASK_ALIASES)}"
        )
    default_train, default_val, default_size = DEFAULTS[key]
    manifest = {
        "task": key,
        "seed": int(seed),
        "num_train": int(default_train if num_train is None else num_train),
        "num_val": int(default_val if num_val is None else num_val),
        "image_size": [int(v) for v in (default_size if image_size is None else image_size)],
        "generator_version": _GENERATOR_VERSION,
    }
    if stuff_maps:
        if key != "det":
            raise DataError(f"stuff maps are a detection-set option (--task det), not one of {key!r}")
        manifest["stuff_maps"] = True
    if persons is not None:
        if key != "pose":
            raise DataError(f"persons is a pose-set option (--task pose), not one of {key!r}")
        low, high = (int(v) for v in persons)
        if not 1 <= low <= high:
            raise DataError(f"persons must be (min, max) with 1 <= min <= max, got {list(persons)}")
        manifest["persons"] = [low, high]
    _check_arguments(manifest)
    out = Path(out)
    if out.exists():
        if _read_manifest(out) == manifest:
            return out
        if not overwrite and not (out.is_dir() and not any(out.iterdir())):
            raise DataError(
                f"{out} already exists and is not a synthetic {key} dataset made with these "
                "arguments; choose another folder or pass overwrite=True (--overwrite)."
            )
    writer = {"pose": functools.partial(_write_pose, persons=tuple(manifest["persons"]) if persons else None),
              "seg": _write_seg, "det": functools.partial(_write_det, stuff_maps=stuff_maps),
              "cls": _write_cls}[key]
    with _atomic_directory(out) as tmp:
        size = tuple(manifest["image_size"])
        for split, count in zip(_SPLITS, (manifest["num_train"], manifest["num_val"]), strict=True):
            rngs = (_image_rng(seed, key, split, i) for i in range(count))
            writer(tmp, split, rngs, size)
        write_json(tmp / MANIFEST, manifest, indent=2)
    return out


def _check_arguments(manifest: dict[str, Any]) -> None:
    if manifest["num_train"] < 1 or manifest["num_val"] < 1:
        raise DataError(
            f"num_train and num_val must be at least 1, got {manifest['num_train']} and {manifest['num_val']}."
        )
    if manifest["task"] == "cls" and min(manifest["num_train"], manifest["num_val"]) < len(CLS_CLASSES):
        raise DataError(
            f"a synthetic cls dataset needs at least {len(CLS_CLASSES)} images per split (one per "
            f"class), got {manifest['num_train']} and {manifest['num_val']}."
        )
    h, w = manifest["image_size"]
    if min(h, w) < 32:
        raise DataError(f"image_size (height, width) must be at least 32x32, got {h}x{w}.")


def _read_manifest(out: Path) -> dict | None:
    try:
        return json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def _atomic_directory(out: Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``out``; on success it replaces ``out`` by renaming."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        yield tmp
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
            out.rename(old / out.name)
            tmp.rename(out)
            shutil.rmtree(old)
        else:
            tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def _image_rng(seed: int, task: str, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, _TASK_CODES[task], _SPLITS.index(split), index])


# ---------------------------------------------------------------------------------------------- files


def _image_id(split: str, index: int) -> int:
    """Image ids unique across both splits: train 1, 2, ...; val 1000001, 1000002, ..."""
    return _SPLITS.index(split) * 1_000_000 + index + 1


def _coco_file(images: list[dict], annotations: list[dict], categories: list[dict], what: str) -> dict:
    return {
        "info": {"description": f"hrnet synthetic {what} dataset", "version": str(_GENERATOR_VERSION)},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }


def mask_to_coco(mask: np.ndarray) -> dict | None:
    """COCO ``segmentation`` (outer polygons, simplified to half a pixel), ``area`` and ``bbox`` of a
    boolean mask; ``None`` if empty.

    Area and box are computed by pycocotools from the polygons, so they agree with the polygon exactly
    as the COCO evaluator sees it.
    """
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    contours = [cv2.approxPolyDP(c, 0.5, True) for c in contours]
    polygons = [c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= 3]
    if not polygons:
        return None
    rle = mask_utils.merge(mask_utils.frPyObjects(polygons, *mask.shape))
    area = float(mask_utils.area(rle))
    if area <= 0:
        return None
    return {
        "segmentation": polygons,
        "area": area,
        "bbox": [round(float(v), 2) for v in mask_utils.toBbox(rle)],
    }


# ----------------------------------------------------------------------------------------------- pose


def pose_sample(rng: np.random.Generator, size: tuple[int, int], persons: tuple[int, int] | None = None
                ) -> tuple[np.ndarray, list[dict]]:
    """One pose image (RGB) and its person annotations (``keypoints``, ``num_keypoints``, mask fields).

    One to three figures, the tallest 60-90 % of the image height; smaller figures are drawn first
    (further away) and may be hidden by nearer ones; occluder shapes may cover keypoints (v=1) and
    figures near the border may lose keypoints outside the image (v=0, stored as 0, 0, 0).
    With ``persons`` (min, max) a crowd instead: that many figures of 45-85 % of the image height,
    spaced closer than their width so that neighbours overlap (:func:`_crowd_layout`).
    """
    h, w = size
    image = background(rng, h, w)
    _scatter_clutter(rng, image)
    if persons is None:
        count = int(rng.choice([1, 2, 3], p=[0.5, 0.3, 0.2]))
        heights = [rng.uniform(0.6, 0.9) * h] + [rng.uniform(0.35, 0.85) * h for _ in range(count - 1)]
        slots = rng.permutation((np.arange(count) + rng.uniform(0.3, 0.7, size=count)) / count * w)
    else:
        count = int(rng.integers(persons[0], persons[1] + 1))
        heights, slots = _crowd_layout(rng, count, h, w)
    figures = []
    for height, x in zip(heights, slots, strict=True):
        feet = rng.uniform(min(height + 0.02 * h, h - 2.0), h - 2.0)
        if rng.random() < 0.15:  # cut by the bottom border
            feet = h + rng.uniform(0.05, 0.3) * height
        figures.append(sample_figure(rng, (x, feet - PELVIS_HEIGHT * height), height))
    figures.sort(key=lambda f: f.height)
    owner = np.zeros((h, w), dtype=np.uint8)
    for owner_id, figure in enumerate(figures, start=1):
        draw_figure(image, owner, figure, owner_id)
    _add_occluders(rng, image, owner)

    people = []
    for owner_id, figure in enumerate(figures, start=1):
        keypoints = _keypoint_triplets(figure.keypoints, owner, owner_id, figure.hidden_ears)
        region = mask_to_coco(owner == owner_id)
        num_keypoints = int(np.count_nonzero(keypoints[:, 2]))
        if region is None or num_keypoints == 0:
            continue
        people.append({"keypoints": keypoints.reshape(-1).tolist(), "num_keypoints": num_keypoints, **region})
    return finish(rng, image), people


def _crowd_layout(rng: np.random.Generator, count: int, h: int, w: int) -> tuple[list[float], np.ndarray]:
    """Heights (45-85 % of ``h``) and hip x positions of a row of ``count`` figures, neighbours 0.15-0.35 of
    their height apart (a figure is about 0.3 of its height wide with arms down, so they overlap), the
    row centred at a random place and shuffled in depth."""
    heights = [float(rng.uniform(0.45, 0.85) * h) for _ in range(count)]
    gaps = rng.uniform(0.15, 0.35, size=max(count - 1, 0)) * np.mean(heights)
    xs = np.concatenate(([0.0], np.cumsum(gaps)))
    centre = rng.uniform(0.35, 0.65) * w
    return heights, rng.permutation(xs - xs.mean() + centre)


def _keypoint_triplets(points: np.ndarray, owner: np.ndarray, owner_id: int, hidden: tuple[int, ...]) -> np.ndarray:
    """(17, 3) COCO triplets: v=2 where the figure itself is seen at the point, v=1 under something else
    (or a hidden ear), v=0 with x=y=0 outside the image."""
    h, w = owner.shape
    out = np.zeros((len(points), 3))
    for j, (x, y) in enumerate(points):
        if not (0 <= x <= w - 1 and 0 <= y <= h - 1):
            continue
        seen = owner[int(round(y)), int(round(x))] == owner_id and j not in hidden
        out[j] = [round(float(x), 2), round(float(y), 2), 2 if seen else 1]
    return out


def _scatter_clutter(rng: np.random.Generator, image: np.ndarray, blobs: bool = True) -> None:
    """A few faint lines and thin ellipses behind the objects, so that not every edge belongs to one."""
    h, w = image.shape[:2]
    for _ in range(int(rng.integers(0, 4))):
        colour = tuple(int(v) for v in random_colour(rng, sat=(0.0, 0.4), val=(0.3, 0.9)))
        a = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
        if blobs and rng.random() < 0.5:
            long_axis = rng.uniform(4, 0.15 * h)
            axes = (int(long_axis), max(1, int(long_axis / rng.uniform(2.5, 5.0))))
            cv2.ellipse(image, a, axes, float(rng.uniform(0, 180)), 0, 360, colour, -1, cv2.LINE_AA)
        else:
            b = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
            cv2.line(image, a, b, colour, int(rng.integers(1, 4)), cv2.LINE_AA)


def _add_occluders(rng: np.random.Generator, image: np.ndarray, owner: np.ndarray) -> None:
    """Sometimes put one or two textured shapes in front of everything (owner 255 = no person)."""
    h, w = owner.shape
    if rng.random() >= 0.4:
        return
    for _ in range(int(rng.integers(1, 3))):
        kind = SHAPES[rng.integers(len(SHAPES))]
        mask = shape_mask(
            kind,
            (h, w),
            (rng.uniform(0, w), rng.uniform(0, h)),
            rng.uniform(0.07, 0.16) * h,
            rng.uniform(0, 2 * np.pi),
        )
        paint_object(rng, image, mask, random_colour(rng))
        owner[mask] = 255


def _write_coco_images(
    root: Path,
    split: str,
    rngs: Iterator[np.random.Generator],
    size: tuple[int, int],
    sample: Callable[[np.random.Generator, tuple[int, int]], tuple[np.ndarray, list[dict]]],
    **fixed: Any,
) -> tuple[list[dict], list[dict]]:
    """Draw one ``sample`` per generator, write it as ``<split>/<id>.jpg``; the COCO ``images`` and
    ``annotations`` entries (each object's fields, plus ``fixed`` ones such as the category id)."""
    images, annotations = [], []
    for index, rng in enumerate(rngs):
        image_id = _image_id(split, index)
        file_name = f"{image_id:012d}.jpg"
        image, objects = sample(rng, size)
        write_image(root / split / file_name, image, quality=92)
        images.append({"id": image_id, "file_name": file_name, "height": size[0], "width": size[1]})
        for k, obj in enumerate(objects):
            annotations.append({"id": image_id * 100 + k, "image_id": image_id, **fixed, "iscrowd": 0, **obj})
    return images, annotations


def _write_pose(root: Path, split: str, rngs: Iterator[np.random.Generator], size: tuple[int, int],
                persons: tuple[int, int] | None = None) -> None:
    sample = functools.partial(pose_sample, persons=persons)
    images, annotations = _write_coco_images(root, split, rngs, size, sample, category_id=1)
    category = {
        "id": 1,
        "name": "person",
        "supercategory": "person",
        "keypoints": list(COCO_KEYPOINT_NAMES),
        "skeleton": [list(p) for p in COCO_SKELETON],
    }
    write_json(
        root / "annotations" / f"person_keypoints_{split}.json",
        _coco_file(images, annotations, [category], "person keypoints"),
    )


# ------------------------------------------------------------------------------------------------ seg


def seg_sample(rng: np.random.Generator, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """One segmentation image (RGB) and its label map (class ids, 255 on a thin band along boundaries).

    Each class is a shape whose colour tends to a class hue (with wide jitter and textures), so both
    shape and colour carry the class; objects overlap and the last drawn wins.
    """
    h, w = size
    image = background(rng, h, w)
    _scatter_clutter(rng, image)
    label = np.zeros((h, w), dtype=np.uint8)
    for _ in range(int(rng.integers(2, 7))):
        cls = int(rng.integers(1, len(SEG_CLASSES)))
        radius = rng.uniform(0.1, 0.35) * min(h, w)
        mask = shape_mask(
            SEG_CLASSES[cls], size, (rng.uniform(0, w), rng.uniform(0, h)), radius, rng.uniform(0, 2 * np.pi)
        )
        colour = hsv_colour(SEG_HUES[cls] + rng.normal(0, 20), rng.uniform(0.5, 1.0), rng.uniform(0.5, 1.0))
        paint_object(rng, image, mask, colour)
        label[mask] = cls
    kernel = np.ones((3, 3), np.uint8)
    label[cv2.dilate(label, kernel) != cv2.erode(label, kernel)] = IGNORE_INDEX
    return finish(rng, image), label


def _write_seg(root: Path, split: str, rngs: Iterator[np.random.Generator], size: tuple[int, int]) -> None:
    for index, rng in enumerate(rngs):
        image, label = seg_sample(rng, size)
        write_image(root / "images" / split / f"{index:06d}.jpg", image, quality=92)
        write_image(root / "labels" / split / f"{index:06d}.png", label)
    colours = [[0, 0, 0]] + [hsv_colour(hue, 0.8, 0.9).tolist() for hue in SEG_HUES[1:]]
    classes = [{"name": n, "color": c} for n, c in zip(SEG_CLASSES, colours, strict=True)]
    write_json(root / "classes.json", {"classes": classes, "ignore_index": IGNORE_INDEX}, indent=2)


# ------------------------------------------------------------------------------------------------ det


def det_sample(rng: np.random.Generator, size: tuple[int, int]) -> tuple[np.ndarray, list[dict]]:
    """One detection image (RGB) and its objects (``category_id`` + visible-region polygons, area, box).

    3-10 shapes with sizes spread log-uniformly over 5-30 % of the image side, a third of the images
    clustered (crowding). A shape is only added if every object keeps at least 40 % of itself visible,
    and at least half of it is inside the image.
    """
    h, w = size
    side = min(h, w)
    wanted = int(rng.integers(3, 11))
    clustered = rng.random() < 0.33
    owner = np.zeros((h, w), dtype=np.uint8)
    categories: list[int] = []
    full_areas: list[int] = []
    visible_areas = np.zeros(1, dtype=np.int64)  # index 0 = background
    for _ in range(4 * wanted):
        if len(categories) == wanted:
            break
        category = int(rng.integers(len(DET_CATEGORIES)))
        radius = float(np.exp(rng.uniform(np.log(0.05 * side), np.log(0.3 * side))))
        if clustered and categories:
            anchor = np.argwhere(owner == rng.integers(1, len(categories) + 1)).mean(axis=0)[::-1]
            centre = anchor + rng.normal(0, 1.2 * radius, size=2)
        else:
            centre = np.array([rng.uniform(0, w), rng.uniform(0, h)])
        angle = rng.uniform(0, 2 * np.pi)
        mask = shape_mask(DET_CATEGORIES[category], size, tuple(centre), radius, angle)
        area = int(np.count_nonzero(mask))
        if area < max(16, 0.5 * _polygon_area(shape_polygon(DET_CATEGORIES[category], tuple(centre), radius, angle))):
            continue
        remaining = visible_areas - np.bincount(owner[mask], minlength=len(visible_areas))
        if np.any(remaining[1:] < 0.4 * np.asarray(full_areas)):
            continue
        owner[mask] = len(categories) + 1
        visible_areas = np.append(remaining, area)
        categories.append(category)
        full_areas.append(area)

    image = background(rng, h, w)
    _scatter_clutter(rng, image, blobs=False)
    found = []
    for i, category in enumerate(categories):
        visible = owner == i + 1
        paint_object(rng, image, visible, random_colour(rng, sat=(0.3, 1.0), val=(0.3, 1.0)))
        region = mask_to_coco(visible)
        if region is not None:
            found.append({"category_id": category + 1, **region})
    return finish(rng, image), found


def _polygon_area(points: np.ndarray) -> float:
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


def det_stuff_map(annotations: list[dict], height: int, width: int) -> np.ndarray:
    """An image's COCO-Stuff-style label map: each object's visible region (its polygons) labelled
    ``category_id - 1`` as COCO-Stuff labels things, everything else the one stuff label, ``len(DET_CATEGORIES)``."""
    labels = np.full((height, width), len(DET_CATEGORIES), dtype=np.uint8)
    for ann in annotations:
        rle = mask_utils.merge(mask_utils.frPyObjects(ann["segmentation"], height, width))
        labels[mask_utils.decode(rle).astype(bool)] = ann["category_id"] - 1
    return labels


def _write_det(root: Path, split: str, rngs: Iterator[np.random.Generator], size: tuple[int, int],
               stuff_maps: bool = False) -> None:
    images, annotations = _write_coco_images(root, split, rngs, size, det_sample)
    if stuff_maps:
        for image in images:
            objects = [ann for ann in annotations if ann["image_id"] == image["id"]]
            write_image(root / "stuffthingmaps" / split / f"{Path(image['file_name']).stem}.png",
                        det_stuff_map(objects, image["height"], image["width"]))
    categories = [{"id": i + 1, "name": n, "supercategory": "shape"} for i, n in enumerate(DET_CATEGORIES)]
    write_json(
        root / "annotations" / f"instances_{split}.json",
        _coco_file(images, annotations, categories, "instances"),
    )


# ------------------------------------------------------------------------------------------------ cls


def cls_sample(rng: np.random.Generator, size: tuple[int, int], label: int) -> np.ndarray:
    """One classification image (RGB): a shape of class ``CLS_CLASSES[label]``, random colour, fill,
    rotation, scale (56-90 % of the image side) and position, on a textured background."""
    h, w = size
    side = min(h, w)
    image = background(rng, h, w)
    centre = (w / 2 + rng.uniform(-0.12, 0.12) * w, h / 2 + rng.uniform(-0.12, 0.12) * h)
    mask = shape_mask(CLS_CLASSES[label], size, centre, rng.uniform(0.28, 0.45) * side, rng.uniform(0, 2 * np.pi))
    paint_object(rng, image, mask, random_colour(rng, sat=(0.4, 1.0), val=(0.35, 1.0)))
    return finish(rng, image)


def _write_cls(root: Path, split: str, rngs: Iterator[np.random.Generator], size: tuple[int, int]) -> None:
    for index, rng in enumerate(rngs):
        label = index % len(CLS_CLASSES)
        write_image(root / split / CLS_CLASSES[label] / f"{index:06d}.jpg", cls_sample(rng, size, label), quality=92)
