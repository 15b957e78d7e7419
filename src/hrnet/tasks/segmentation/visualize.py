"""Outputs for people: colour label maps, overlays with a class legend, label PNGs and the per-class IoU report."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from ...io import atomic_write, write_json, write_text
from ..drawing import draw_legend

__all__ = ["colorize", "legend_entries", "overlay", "iou_table_markdown", "write_iou_report"]


def colorize(label: np.ndarray, palette: np.ndarray, ignore_index: int = 255) -> np.ndarray:
    """``(H, W)`` class ids -> ``(H, W, 3)`` RGB ``uint8`` colours; ignored or unknown ids are black."""
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[: len(palette)] = palette[:256]
    if ignore_index < 256:
        lut[ignore_index] = 0
    return lut[np.clip(label, 0, 255).astype(np.uint8)]


def legend_entries(
    label: np.ndarray, classes: Sequence[str], palette: np.ndarray, ignore_index: int = 255
) -> list[tuple[int, str, tuple[int, int, int]]]:
    """``(class id, name, RGB colour)`` of each class present in ``label``, by id; ignored and unknown ids
    (beyond ``classes``) are left out."""
    present = np.unique(label)
    return [(int(i), classes[i], tuple(int(c) for c in palette[i]))
            for i in present if i != ignore_index and i < min(len(classes), len(palette))]


def overlay(
    image_bgr: np.ndarray,
    label: np.ndarray,
    palette: np.ndarray,
    alpha: float = 0.5,
    ignore_index: int = 255,
    classes: Sequence[str] | None = None,
) -> np.ndarray:
    """Blend the colour map over a BGR image: ``(1 - alpha) * image + alpha * colours`` (BGR ``uint8``).
    With ``classes`` (names by id), a legend in the top-left corner names the classes present, each beside
    its colour (:func:`legend_entries`)."""
    colours = colorize(label, palette, ignore_index)[:, :, ::-1]
    blended = cv2.addWeighted(image_bgr, 1.0 - alpha, np.ascontiguousarray(colours), alpha, 0.0)
    if classes is not None:
        entries = legend_entries(label, classes, palette, ignore_index)
        draw_legend(blended, [(name, colour[::-1]) for _, name, colour in entries])
    return blended


def _fmt(value: float) -> str:
    return "—" if math.isnan(value) else f"{100 * value:.2f}"


def iou_table_markdown(classes: Sequence[str], metrics: dict) -> str:
    """A Markdown table: one row per class (IoU in %), then mIoU, pixel and mean accuracy."""
    lines = ["| id | class | IoU (%) |", "|---:|---|---:|"]
    lines += [
        f"| {i} | {name} | {_fmt(float(v))} |" for i, (name, v) in enumerate(zip(classes, metrics["IoU"], strict=True))
    ]
    lines += [
        "",
        f"mIoU: {_fmt(metrics['mIoU'])} %  ",
        f"pixel accuracy: {_fmt(metrics['pixel_acc'])} %  ",
        f"mean accuracy: {_fmt(metrics['mean_acc'])} %",
        "",
    ]
    return "\n".join(lines)


def _bar_plot_png(classes: Sequence[str], iou: np.ndarray, miou: float) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    values = np.nan_to_num(np.asarray(iou, dtype=np.float64)) * 100
    # room below the axis for the longest rotated 7-pt class name (about half an em per character)
    label_inches = max(len(name) for name in classes) * 7 * 0.5 / 72 + 0.25
    width, height = max(6.0, 0.2 * len(classes) + 1.5), 3.0 + label_inches
    fig, ax = plt.subplots(figsize=(width, height))
    fig.subplots_adjust(bottom=label_inches / height, top=0.95, left=0.75 / width, right=1 - 0.15 / width)
    ax.bar(range(len(classes)), values, color="#4c72b0")
    ax.axhline(100 * miou, color="#c44e52", linestyle="--", label=f"mIoU {100 * miou:.2f}")
    ax.set_xticks(range(len(classes)), classes, rotation=90, fontsize=7)
    ax.set_xlim(-0.6, len(classes) - 0.4)
    ax.set_ylabel("IoU (%)")
    ax.set_ylim(0, 100)
    ax.legend(loc="upper right")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def write_iou_report(out_dir: str | Path, classes: Sequence[str], metrics: dict) -> list[Path]:
    """Write ``per_class_iou.md``, ``per_class_iou.json`` and the bar plot ``per_class_iou.png``."""
    out_dir = Path(out_dir)
    md, js, png = out_dir / "per_class_iou.md", out_dir / "per_class_iou.json", out_dir / "per_class_iou.png"
    write_text(md, iou_table_markdown(classes, metrics))
    iou = [None if math.isnan(float(v)) else float(v) for v in metrics["IoU"]]
    write_json(
        js,
        {
            "mIoU": metrics["mIoU"],
            "pixel_acc": metrics["pixel_acc"],
            "mean_acc": metrics["mean_acc"],
            "IoU": dict(zip(classes, iou, strict=True)),
        },
        indent=2,
    )
    with atomic_write(png, "wb") as f:
        f.write(_bar_plot_png(classes, metrics["IoU"], metrics["mIoU"]))
    return [md, js, png]
