"""Inference time and peak memory of HRNetV2-W48 (Cityscapes, 19 classes) on this machine's CPU.

    python benchmarks/seg_inference.py [--threads 2] [--repeats 1] [--cases whole_512x1024 slide_1024x2048]

Cases (each runs in its own subprocess, so its peak memory is its own):

- ``whole_512x1024``: one forward pass on a 512x1024 image, logits resized to the input, ``exp()``;
- ``slide_1024x2048``: a full Cityscapes frame scored in 512x1024 windows with stride 512x1024
  (``mode="slide"``: 4 windows), so that memory stays that of one window;
- ``whole_1024x2048``: the official single-scale test (the whole frame in one pass), for comparison.

Prints, per case, the median wall time in ms and the peak resident memory (``ru_maxrss``) of the
process, and the part of it added by inference (peak minus the memory after building the model).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

CASES = {
    "whole_512x1024": dict(size=(512, 1024), mode="whole", crop_size=None),
    "slide_1024x2048": dict(size=(1024, 2048), mode="slide", crop_size=(512, 1024)),
    "whole_1024x2048": dict(size=(1024, 2048), mode="whole", crop_size=None),
}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def run_case(name: str, threads: int, repeats: int) -> dict:
    """Build W48, score one random image ``repeats`` times; runs inside the subprocess."""
    import torch

    from hrnet import build_model
    from hrnet.tasks.segmentation.inference import multi_scale_inference

    torch.set_num_threads(threads)
    case = CASES[name]
    model = build_model("seg_hrnetv2_w48", num_classes=19).eval()
    image = torch.randn(1, 3, *case["size"])
    after_build = _peak_rss_mb()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        scores = multi_scale_inference(model, image, mode=case["mode"], crop_size=case["crop_size"])
        times.append((time.perf_counter() - start) * 1000)
    assert scores.shape == (1, 19, *case["size"])
    peak = _peak_rss_mb()
    return {
        "case": name,
        "ms": statistics.median(times),
        "peak_rss_mb": peak,
        "inference_mb": peak - after_build,
        "threads": threads,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per case (median reported)")
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=["whole_512x1024", "slide_1024x2048"])
    parser.add_argument("--child", choices=sorted(CASES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_case(args.child, args.threads, args.repeats)))
        return 0

    print(f"HRNetV2-W48, 19 classes, float32, {args.threads} thread(s), median of {args.repeats} run(s)")
    print(f"{'case':<18} {'ms':>10} {'peak RSS MB':>12} {'inference MB':>13}")
    for name in args.cases:
        cmd = [
            sys.executable,
            __file__,
            "--child",
            name,
            "--threads",
            str(args.threads),
            "--repeats",
            str(args.repeats),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"{name}: failed\n{done.stderr}", file=sys.stderr)
            return 1
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{r['case']:<18} {r['ms']:>10.0f} {r['peak_rss_mb']:>12.0f} {r['inference_mb']:>13.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
