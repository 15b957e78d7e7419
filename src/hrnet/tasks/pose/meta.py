"""Keypoint set descriptions: names, left/right flip pairs, OKS sigmas, skeleton, joint weights.

A :class:`KeypointMeta` is all the pipeline needs to know about a keypoint set, so a custom dataset only
has to ship a small YAML/JSON meta file (pairs and skeleton are given by *name*, so they cannot silently
point at the wrong index)::

    name: my_animals
    keypoints: [nose, left_eye, right_eye, tail]
    flip_pairs: [[left_eye, right_eye]]
    sigmas: [0.026, 0.025, 0.025, 0.05]        # per-keypoint OKS sigmas (COCO convention)
    skeleton: [[nose, left_eye], [nose, right_eye]]
    joint_weights: [1.0, 1.0, 1.0, 1.5]        # optional, default 1
    upper_body: [nose, left_eye, right_eye]    # optional, enables half-body augmentation

COCO's own meta (:data:`COCO_META`) is the built-in default; :data:`MPII_META` describes MPII's 16 joints and
:data:`CROWDPOSE_META` CrowdPose's 14.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ...errors import ConfigError, did_you_mean

__all__ = ["KeypointMeta", "COCO_META", "MPII_META", "CROWDPOSE_META", "load_meta", "resolve_meta"]


@dataclass(frozen=True)
class KeypointMeta:
    """A keypoint set. Index-based fields (``flip_pairs``, ``skeleton``, ``upper_body_ids``) are 0-based."""

    name: str
    keypoints: tuple[str, ...]
    flip_pairs: tuple[tuple[int, int], ...]
    sigmas: tuple[float, ...]
    skeleton: tuple[tuple[int, int], ...] = ()
    joint_weights: tuple[float, ...] = ()
    upper_body_ids: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        k = len(self.keypoints)
        if len(set(self.keypoints)) != k:
            raise ConfigError(f"keypoint meta {self.name!r}: keypoint names are not unique: {list(self.keypoints)}")
        if len(self.sigmas) != k:
            raise ConfigError(f"keypoint meta {self.name!r}: {len(self.sigmas)} sigmas for {k} keypoints")
        if self.joint_weights and len(self.joint_weights) != k:
            raise ConfigError(f"keypoint meta {self.name!r}: {len(self.joint_weights)} joint_weights for {k} keypoints")
        for field in ("flip_pairs", "skeleton"):
            for a, b in getattr(self, field):
                if not (0 <= a < k and 0 <= b < k):
                    raise ConfigError(f"keypoint meta {self.name!r}: {field} entry {(a, b)} is out of range")

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoints)

    @property
    def flip_index(self) -> list[int]:
        """``flip_index[k]`` is the keypoint that ``k`` becomes in a mirrored image."""
        index = list(range(self.num_keypoints))
        for a, b in self.flip_pairs:
            index[a], index[b] = b, a
        return index

    @property
    def weights(self) -> np.ndarray:
        """Per-joint loss weights, shape ``(K, 1)`` (ones when the meta has none)."""
        w = self.joint_weights or (1.0,) * self.num_keypoints
        return np.asarray(w, dtype=np.float32).reshape(-1, 1)

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "keypoint meta") -> KeypointMeta:
        """Build from the meta-file layout (pairs, skeleton and upper body given by keypoint name)."""
        allowed = {"name", "keypoints", "flip_pairs", "sigmas", "skeleton", "joint_weights", "upper_body"}
        for key in d:
            if key not in allowed:
                raise ConfigError(f"{source}: unknown field {key!r}.{did_you_mean(key, allowed)}")
        for key in ("keypoints", "sigmas"):
            if key not in d:
                raise ConfigError(f"{source}: missing required field {key!r}")
        names = [str(n) for n in d["keypoints"]]
        index = {n: i for i, n in enumerate(names)}

        def idx(name: Any, field: str) -> int:
            if name not in index:
                raise ConfigError(f"{source}: {field} names unknown keypoint {name!r}.{did_you_mean(str(name), names)}")
            return index[name]

        def pairs(field: str) -> tuple[tuple[int, int], ...]:
            out = []
            for pair in d.get(field, []) or []:
                if len(pair) != 2:
                    raise ConfigError(f"{source}: {field} entry {pair!r} is not a pair of keypoint names")
                out.append((idx(pair[0], field), idx(pair[1], field)))
            return tuple(out)

        return cls(
            name=str(d.get("name", Path(source).stem)),
            keypoints=tuple(names),
            flip_pairs=pairs("flip_pairs"),
            sigmas=tuple(float(s) for s in d["sigmas"]),
            skeleton=pairs("skeleton"),
            joint_weights=tuple(float(w) for w in d.get("joint_weights", []) or []),
            upper_body_ids=tuple(idx(n, "upper_body") for n in d.get("upper_body", []) or []),
        )

    def to_dict(self) -> dict[str, Any]:
        """The meta-file layout of this meta (inverse of :meth:`from_dict`)."""
        n = self.keypoints
        return {
            "name": self.name,
            "keypoints": list(n),
            "flip_pairs": [[n[a], n[b]] for a, b in self.flip_pairs],
            "sigmas": list(self.sigmas),
            "skeleton": [[n[a], n[b]] for a, b in self.skeleton],
            "joint_weights": list(self.joint_weights),
            "upper_body": [n[i] for i in self.upper_body_ids],
        }


_COCO_NAMES = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
# the person category's 1-based skeleton in the COCO annotation files, made 0-based
_COCO_SKELETON_1BASED = (
    (16, 14),
    (14, 12),
    (17, 15),
    (15, 13),
    (12, 13),
    (6, 12),
    (7, 13),
    (6, 7),
    (6, 8),
    (7, 9),
    (8, 10),
    (9, 11),
    (2, 3),
    (1, 2),
    (1, 3),
    (2, 4),
    (3, 5),
    (4, 6),
    (5, 7),
)

#: COCO person keypoints: official flip pairs, OKS sigmas (cocoeval), skeleton, and the official
#: HRNet joint weights (1.2 elbows/knees, 1.5 wrists/ankles); upper body = joints 0-10.
COCO_META = KeypointMeta(
    name="coco",
    keypoints=_COCO_NAMES,
    flip_pairs=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
    sigmas=(
        0.026,
        0.025,
        0.025,
        0.035,
        0.035,
        0.079,
        0.079,
        0.072,
        0.072,
        0.062,
        0.062,
        0.107,
        0.107,
        0.087,
        0.087,
        0.089,
        0.089,
    ),
    skeleton=tuple((a - 1, b - 1) for a, b in _COCO_SKELETON_1BASED),
    joint_weights=(1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.2, 1.2, 1.5, 1.5, 1.0, 1.0, 1.2, 1.2, 1.5, 1.5),
    upper_body_ids=tuple(range(11)),
)

#: MPII's 16 joints in MPII order (0 r-ankle ... 9 head-top ... 15 l-wrist), official flip pairs and
#: upper body (7-15); sigmas and joint weights as commonly used for MPII (mmpose's MPII meta).
MPII_META = KeypointMeta(
    name="mpii",
    keypoints=(
        "right_ankle",
        "right_knee",
        "right_hip",
        "left_hip",
        "left_knee",
        "left_ankle",
        "pelvis",
        "thorax",
        "upper_neck",
        "head_top",
        "right_wrist",
        "right_elbow",
        "right_shoulder",
        "left_shoulder",
        "left_elbow",
        "left_wrist",
    ),
    flip_pairs=((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13)),
    sigmas=(
        0.089,
        0.083,
        0.107,
        0.107,
        0.083,
        0.089,
        0.026,
        0.026,
        0.026,
        0.026,
        0.062,
        0.072,
        0.179,
        0.179,
        0.072,
        0.062,
    ),
    skeleton=(
        (0, 1),
        (1, 2),
        (2, 6),
        (6, 3),
        (3, 4),
        (4, 5),
        (6, 7),
        (7, 8),
        (8, 9),
        (8, 12),
        (12, 11),
        (11, 10),
        (8, 13),
        (13, 14),
        (14, 15),
    ),
    joint_weights=(1.5, 1.2, 1.0, 1.0, 1.2, 1.5, 1.0, 1.0, 1.0, 1.0, 1.5, 1.2, 1.0, 1.0, 1.2, 1.5),
    upper_body_ids=(7, 8, 9, 10, 11, 12, 13, 14, 15),
)

#: CrowdPose's 14 joints in its annotation order (12 limb joints as COCO's, then head top and neck), its
#: flip pairs (official HigherHRNet ``FLIP_CONFIG['CROWDPOSE']``) and OKS sigmas (CrowdPose evaluation:
#: COCO's limb sigmas, 0.079 for head and neck); upper body = shoulders, elbows, wrists, head, neck.
CROWDPOSE_META = KeypointMeta(
    name="crowdpose",
    keypoints=_COCO_NAMES[5:] + ("head_top", "neck"),
    flip_pairs=((0, 1), (2, 3), (4, 5), (6, 7), (8, 9), (10, 11)),
    sigmas=(0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089, 0.079, 0.079),
    skeleton=((12, 13), (13, 0), (13, 1), (0, 2), (2, 4), (1, 3), (3, 5), (0, 6), (1, 7), (6, 7), (6, 8), (8, 10),
              (7, 9), (9, 11)),
    upper_body_ids=(0, 1, 2, 3, 4, 5, 12, 13),
)

BUILTIN_METAS = {"coco": COCO_META, "mpii": MPII_META, "crowdpose": CROWDPOSE_META}


def load_meta(path: str | Path) -> KeypointMeta:
    """Read a keypoint meta file (YAML or JSON, layout in the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"keypoint meta file {str(path)!r} does not exist")
    text = path.read_text()
    try:
        d = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        raise ConfigError(f"keypoint meta file {str(path)!r} cannot be parsed: {e}") from e
    if not isinstance(d, dict):
        raise ConfigError(f"keypoint meta file {str(path)!r} must hold a mapping of fields")
    return KeypointMeta.from_dict(d, source=str(path))


def resolve_meta(meta: str | Path | None) -> KeypointMeta:
    """``None``/``'coco'`` -> COCO, ``'mpii'`` -> MPII, ``'crowdpose'`` -> CrowdPose, anything else is read as
    a meta file."""
    if meta is None:
        return COCO_META
    if str(meta) in BUILTIN_METAS:
        return BUILTIN_METAS[str(meta)]
    return load_meta(meta)
