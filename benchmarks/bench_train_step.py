"""Training-step speed of pose HRNet: eager fp32 against faster recipes, with the same loss curve.

One step = forward, JointsMSELoss, backward, Adam. Every recipe starts from the same weights and
sees the same batches (random images, Gaussian heatmap targets at random joint positions; ten
batches cycled, so the loss falls as they are fitted), so their loss curves must agree — exactly up
to float reassociation in fp32, within bf16 rounding noise otherwise. Each recipe runs in its own
process, which also gives its peak resident memory (measured over the timed steps).

    python benchmarks/bench_train_step.py --threads 2                 # pose W32 256x192, batch 8
    python benchmarks/bench_train_step.py --set width=8 --steps 10    # a quick look

Recipes: ``eager`` (fp32, NCHW), ``channels_last``, ``channels_last_bf16`` (+ bf16 autocast on CPU,
fp16 with a grad scaler on CUDA) and ``compiled_bf16`` (+ ``torch.compile`` of the model and a fused
Adam).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml

import hrnet
from hrnet.deploy.bench import machine_info, peak_rss_mib, reset_peak_rss
from hrnet.deploy.compile import enable_compile_cache
from hrnet.tasks.pose.loss import JointsMSELoss

RECIPES = {
    "eager": {"channels_last": False, "amp": False, "compile": False},
    "channels_last": {"channels_last": True, "amp": False, "compile": False},
    "channels_last_bf16": {"channels_last": True, "amp": True, "compile": False},
    "compiled_bf16": {"channels_last": True, "amp": True, "compile": True},
}
WARMUP_STEPS = 3  # not timed: the first steps allocate, and compile on the compiled recipe


def make_batches(count: int, batch: int, size: tuple[int, int], joints: int, sigma: float = 2.0, seed: int = 0):
    """``count`` batches of (images, heatmap targets, target weights), all reproducible."""
    g = torch.Generator().manual_seed(seed)
    h, w = size[0] // 4, size[1] // 4
    ys, xs = torch.arange(h).view(1, 1, h, 1).float(), torch.arange(w).view(1, 1, 1, w).float()
    batches = []
    for _ in range(count):
        images = torch.randn(batch, 3, *size, generator=g)
        cy, cx = torch.rand(batch, joints, 1, 1, generator=g) * h, torch.rand(batch, joints, 1, 1, generator=g) * w
        targets = torch.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / (2 * sigma**2))
        weights = (torch.rand(batch, joints, 1, generator=g) > 0.2).float()
        batches.append((images, targets, weights))
    return batches


def run_recipe(name: str, args: argparse.Namespace) -> dict:
    """Train ``args.steps`` steps with recipe ``name`` in this process; losses, timings, memory."""
    recipe = RECIPES[name]
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = hrnet.build_model(args.model, **args.options).to(device).train()
    fmt = torch.channels_last if recipe["channels_last"] else torch.contiguous_format
    model = model.to(memory_format=fmt)
    amp_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, fused=recipe["compile"] or None)
    scaler = torch.amp.GradScaler(device.type, enabled=recipe["amp"] and amp_dtype == torch.float16)
    forward = model
    if recipe["compile"]:
        enable_compile_cache()
        forward = torch.compile(model, dynamic=False)
    criterion = JointsMSELoss()
    batches = make_batches(10, args.batch, tuple(args.input), model.num_joints)
    losses, times = [], []
    for step in range(args.steps + WARMUP_STEPS):
        images, targets, weights = (t.to(device) for t in batches[step % len(batches)])
        images = images.contiguous(memory_format=fmt)
        if step == WARMUP_STEPS:
            reset_peak_rss()
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        with torch.autocast(device.type, amp_dtype, enabled=recipe["amp"]):
            heatmaps = forward(images)
        loss = criterion(heatmaps.float(), targets, weights)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        value = loss.item()  # also synchronises CUDA
        if step >= WARMUP_STEPS:
            times.append(time.perf_counter() - start)
            losses.append(value)
    memory = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else peak_rss_mib()
    return {"recipe": name, "losses": losses, "median_step_s": sorted(times)[len(times) // 2], "peak_mib": memory}


def curve_gap(reference: list[float], other: list[float]) -> float:
    """Largest relative difference between two loss curves, step by step."""
    return max(abs(a - b) / abs(a) for a, b in zip(reference, other, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="pose_hrnet_w32")
    parser.add_argument("--set", dest="options", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--input", nargs=2, type=int, default=[256, 192], metavar=("H", "W"))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--recipes", default=",".join(RECIPES), help="comma-separated, eager first")
    parser.add_argument("--json", type=Path, help="write all results here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: run one recipe, print JSON
    args = parser.parse_args()
    args.options = {k: yaml.safe_load(v) for k, v in (o.split("=", 1) for o in args.options)}

    if args.worker:
        print(json.dumps(run_recipe(args.worker, args)))
        return
    info = machine_info()
    results = []
    for name in args.recipes.split(","):
        print(f"{name} ...", flush=True)
        cmd = [sys.executable, __file__, *sys.argv[1:], "--worker", name]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            print(proc.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"recipe {name} failed")
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(f"  {results[-1]['median_step_s'] * 1000:.0f} ms/step, peak {results[-1]['peak_mib']:.0f} MiB",
              flush=True)
    info["load_after"] = os.getloadavg()[0]
    base = results[0]
    size = f"{args.input[0]}x{args.input[1]}"
    print(f"\n{args.model} {args.options or ''} {size} batch {args.batch}, {args.steps} steps, "
          f"{args.threads} threads; {info['cpu']}, torch {info['torch']}, {info['date']}, load average "
          f"{info['load_before']:.1f} before / {info['load_after']:.1f} after\n")
    print("| recipe | ms/step | speed-up | peak RSS MiB | loss step 1 → last | max rel. gap to eager curve |")
    print("|---|---|---|---|---|---|")
    for r in results:
        gap = curve_gap(base["losses"], r["losses"])
        speedup = base["median_step_s"] / r["median_step_s"]
        print(f"| {r['recipe']} | {r['median_step_s'] * 1000:.0f} | {speedup:.2f}× | "
              f"{r['peak_mib']:.0f} | {r['losses'][0]:.3e} → {r['losses'][-1]:.3e} | {gap:.1e} |")
        assert all(math.isfinite(v) for v in r["losses"]), f"{r['recipe']}: non-finite loss"
    if args.json:
        from hrnet.io import write_json

        settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        write_json(args.json, {"machine": info, "args": settings, "results": results}, indent=1)


if __name__ == "__main__":
    main()
