"""Writing an :class:`~hrnet.inference.Inferencer`'s results to files, named the same way for every task.

In the output folder, for a task ``<task>`` (pose, segmentation, detection, classification):

* ``<stem>_<task>.png``: each image with its result drawn (``overlays=False``: none);
  segmentation also writes ``<stem>_label.png``, the class id of every pixel (and for Cityscapes
  ``<stem>_labelIds.png``, its label ids)
* ``predictions.json``: a JSON list of the images' result records (:mod:`hrnet.inference.results`)
* ``<stem>_<task>.mp4``: each video (or ``webcam<N>_<task>.mp4``) with its results drawn, at its frame rate
* ``<stem>_<task>.jsonl``: one result record per line and frame of that video

A progress bar (images or frames per second) runs on stderr.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ..io import write_json
from ..media import expand_inputs, read_image, write_image
from ..tasks.segmentation.task import to_cityscapes_label_ids
from .inferencer import Inferencer
from .results import Result, SegmentationResult
from .video import open_frames, process_video, webcam_index

__all__ = ["write_predictions", "output_stem"]


def output_stem(source: str | os.PathLike | int) -> str:
    """The stem output files of an input are named after: a file's stem, ``webcam<N>`` for a webcam."""
    index = webcam_index(source)
    name = f"webcam{index}" if index is not None else Path(source).stem
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def write_predictions(inferencer: Inferencer, inputs: Sequence[str | os.PathLike], out_dir: str | os.PathLike,
                      overlays: bool = True, max_frames: int | None = None,
                      on_result: Callable[[Result], None] | None = None) -> list[Path]:
    """Run ``inferencer`` on ``inputs`` (images, folders, videos, webcams) and write its outputs to
    ``out_dir`` (see the module docstring); ``on_result`` sees each result as it comes (e.g. to print it).
    Returns the files written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    task = inferencer.task.name
    images, videos = expand_inputs(inputs, videos=True, recursive=task == "classification")
    written: list[Path] = []
    records: list[dict[str, Any]] = []
    bar = tqdm(total=len(images), desc="images", unit="image", dynamic_ncols=True, disable=len(images) < 2)
    for start in range(0, len(images), 8):
        chunk = images[start:start + 8]
        bar.update(len(chunk))
        arrays = [read_image(f) for f in chunk]
        for file, array, result in zip(chunk, arrays, inferencer.predict_images(arrays, chunk), strict=True):
            records.append(result.to_json())
            if on_result is not None:
                on_result(result)
            written.extend(_image_outputs(out_dir / output_stem(file), inferencer, array, result, overlays))
    bar.close()
    if images:
        write_json(out_dir / "predictions.json", records, indent=1)
        written.insert(0, out_dir / "predictions.json")
    for source in videos:
        written.extend(_write_video(inferencer, source, out_dir / f"{output_stem(source)}_{task}", overlays,
                                    max_frames, on_result))
    return written


def _image_outputs(stem: Path, inferencer: Inferencer, image: np.ndarray, result: Result,
                   overlays: bool) -> list[Path]:
    files = []
    if isinstance(result, SegmentationResult):
        files.append(write_image(stem.with_name(f"{stem.name}_label.png"), result.labels))
        if inferencer.task.data.dataset == "cityscapes":  # the benchmark server's label ids too
            ids = to_cityscapes_label_ids(result.labels)
            files.append(write_image(stem.with_name(f"{stem.name}_labelIds.png"), ids))
    if overlays:
        files.append(write_image(stem.with_name(f"{stem.name}_{result.task}.png"), result.draw(image)))
    return files


def _write_video(inferencer: Inferencer, source: Path | str, stem: Path, overlays: bool, max_frames: int | None,
                 on_result: Callable[[Result], None] | None) -> list[Path]:
    """``<stem>.jsonl`` (one record per frame) and ``<stem>.mp4`` (frames drawn), each written whole or not
    at all, with a progress bar; a webcam is also shown live where a display exists."""
    predict = inferencer.video_predictor(source)

    def step(frames: list[np.ndarray]) -> list[tuple[np.ndarray | None, dict[str, Any]]]:
        results = predict(frames)
        if on_result is not None:
            for result in results:
                on_result(result)
        return [(result.draw(frame) if overlays else None, result.to_json())
                for frame, result in zip(frames, results, strict=True)]

    summary = process_video(open_frames(source), step, video_out=stem.with_suffix(".mp4") if overlays else None,
                            json_out=stem.with_suffix(".jsonl"), frames_per_step=8, max_frames=max_frames)
    return summary.written
