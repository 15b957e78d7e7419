"""Kill ``hrnet train`` with SIGKILL at random moments and resume it until it finishes; check that the
result is bit-identical to an uninterrupted run and that no temporary file is left.

    python benchmarks/soak_kill_resume.py [--kills 30] [--workers 0 2] [--seed 0] [--threads 1] [--out DIR]

For each DataLoader worker count, a tiny HRNet classifier trains on a small synthetic set twice: once
without interruption (the reference), and once under ``hrnet train --resume`` restarted after every
``kill -9``, sent after a random delay (so kills land in start-up, training steps, checkpoint writes
and evaluation alike), until the run completes. The kills are shared out over the worker counts.
Printed per worker count: kills, resumes (restarts that continued from a checkpoint), restarts
refused (a lock left behind would refuse them), whether the final weights and the metrics log equal
the reference's, the most temporary files seen after a kill and those left at the end. Exits with
status 1 unless every run is identical and no temporary file is left.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml

TINY = {"width": 4, "blocks": 1, "modules": [1, 1, 1], "stage1_blocks": 1, "head_channels": [4, 8, 16, 32],
        "final_channels": 32}


def experiment(data: Path, out: Path, workers: int) -> dict:
    """3 epochs of 16 steps with a checkpoint every 3 steps and validation after each epoch."""
    return {
        "task": "classification",
        "model": {"name": "cls_hrnet_w18", "overrides": TINY},
        "data": {"root": str(data), "image_size": 32, "resize_size": 32},
        "train": {"epochs": 3, "batch_size": 8, "workers": workers, "checkpoint_every_iters": 3, "log_every": 4,
                  "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9}},
        "eval": {"batch_size": 16},
        "output_dir": str(out),
        "seed": 5,
        "device": "cpu",
    }


def hrnet_train(config: Path, env: dict[str, str]) -> subprocess.Popen:
    command = [sys.executable, "-m", "hrnet.cli.main", "train", str(config), "--resume"]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def temp_files(out: Path) -> list[Path]:
    return [p for p in out.rglob(".*.tmp") if p.is_file()]


def same_run(reference: Path, run: Path) -> tuple[bool, bool]:
    """(identical weights, identical metrics log apart from times and speeds)."""
    def weights(path: Path) -> dict[str, torch.Tensor]:
        return torch.load(path / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)["model"]

    def records(path: Path) -> list[dict]:
        from hrnet.engine.metrics_log import read_metrics

        return [{k: v for k, v in r.items() if k not in ("time", "samples_per_s")}
                for r in read_metrics(path / "metrics.jsonl")]

    a, b = weights(reference), weights(run)
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), records(reference) == records(run)


def soak(root: Path, data: Path, workers: int, kills: int, rng: random.Random, env: dict[str, str]) -> dict:
    reference, run = root / f"reference_w{workers}", root / f"killed_w{workers}"
    config = root / f"killed_w{workers}.yaml"
    config.write_text(yaml.safe_dump(experiment(data, run, workers)))
    start = time.perf_counter()
    ref_config = root / f"reference_w{workers}.yaml"
    ref_config.write_text(yaml.safe_dump(experiment(data, reference, workers)))
    done = hrnet_train(ref_config, env)
    if done.wait() != 0:
        raise SystemExit(f"the reference run failed:\n{done.stderr.read()[-3000:]}")
    full_run = time.perf_counter() - start

    stats = {"workers": workers, "kills": 0, "resumes": 0, "refused": 0, "max_temp_after_kill": 0}
    while True:
        process = hrnet_train(config, env)
        if stats["kills"] < kills:
            # from just after start-up to the end of a whole run: every phase gets hit
            time.sleep(rng.uniform(0.3, 1.0) * full_run)
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
        stderr = process.communicate()[1]
        stats["resumes"] += "Resuming from" in stderr
        if process.returncode == -signal.SIGKILL:
            stats["kills"] += 1
            stats["max_temp_after_kill"] = max(stats["max_temp_after_kill"], len(temp_files(run)))
        elif process.returncode == 2 and "in use by another training run" in stderr:
            stats["refused"] += 1
        elif process.returncode == 0:
            if stats["kills"] >= kills:
                break
            shutil.rmtree(run)  # finished before the kill: start over, so that kills land in a live run
        else:
            raise SystemExit(f"hrnet train exited with {process.returncode}:\n{stderr[-3000:]}")
    stats["identical_weights"], stats["identical_logs"] = same_run(reference, run)
    stats["temp_left"] = len(temp_files(run))
    return stats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=30, help="total kills, shared out over the worker counts")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill delays")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--out", type=Path, default=Path("runs/soak_kill_resume"))
    args = parser.parse_args()

    from hrnet.synthetic import synthesize

    args.out.mkdir(parents=True, exist_ok=True)
    data = synthesize("cls", args.out / "data", num_train=128, num_val=32, seed=1, image_size=(32, 32))
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    rng = random.Random(args.seed)
    per_setting = -(-args.kills // len(args.workers))
    results = []
    for workers in args.workers:
        for old in args.out.glob(f"*_w{workers}"):
            shutil.rmtree(old)
        stats = soak(args.out, data, workers, per_setting, rng, env)
        results.append(stats)
        print(f"workers {stats['workers']}: {stats['kills']} kills, {stats['resumes']} resumes, {stats['refused']} "
              f"refused, weights {'identical' if stats['identical_weights'] else 'DIFFERENT'}, logs "
              f"{'identical' if stats['identical_logs'] else 'DIFFERENT'}, up to {stats['max_temp_after_kill']} "
              f"temp file(s) after a kill, {stats['temp_left']} left", flush=True)
    ok = all(s["identical_weights"] and s["identical_logs"] and not s["temp_left"] and not s["refused"]
             for s in results)
    total = sum(s["kills"] for s in results)
    print(f"total: {total} kills, {sum(s['resumes'] for s in results)} resumes; "
          + ("all identical to the uninterrupted runs, no temp files left" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
