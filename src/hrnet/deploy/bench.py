"""``hrnet bench``: every deploy path against eager fp32, in one run, on this machine.

For each path: ms/img at each batch size, img/s, peak resident memory while running the largest
batch, achieved GFLOP/s (2 x the model's multiply-adds / time) and its share of the machine's conv
peak, the speed-up over eager fp32, and the max-abs-diff from eager on the same images.

Numbers from different days differ with the machine's load; ratios measured in the same run do
not, so the run also measures the machine's conv peak and a torchvision ResNet-50 yardstick.

Each path runs in its own process: its peak memory is its own, a thread pool or compile worker
left behind by one path cannot slow the next, and a path that crashes is reported, not fatal.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import HRNetError
from ..models.complexity import complexity
from .parity import compare_outputs
from .paths import PATHS, REFERENCE, BuildInputs, deploy, example_input

__all__ = ["PathResult", "BenchReport", "time_per_call", "conv_peak_gflops", "recalibrate_batchnorm",
           "measure_path", "run_benchmark", "reset_peak_rss", "peak_rss_mib", "machine_info"]

CONV_PEAK_SHAPES = ((8, 64, 64, 48), (8, 128, 32, 24))  # (N, C, H, W) 3x3 convs C -> C, as in HRNet branches
WORKER_TIMEOUT_S = 1800


@dataclass
class PathResult:
    """One path's measurements; ``ms_per_img`` maps batch size -> milliseconds per image."""

    path: str
    precision: str
    ms_per_img: dict[int, float] = field(default_factory=dict)
    peak_rss_mib: float | None = None
    max_abs_diff: float | None = None
    parity_ok: bool | None = None
    build_s: float | None = None
    first_call_s: float | None = None
    error: str | None = None


@dataclass
class BenchReport:
    model: str
    input_size: tuple[int, int]
    threads: int
    macs: int
    machine: dict[str, Any]
    conv_peak_gflops: dict[str, float]
    yardstick: PathResult | None
    results: list[PathResult]

    def speedup(self, result: PathResult, batch: int) -> float | None:
        base = self.results[0].ms_per_img.get(batch)
        mine = result.ms_per_img.get(batch)
        return base / mine if base and mine else None

    @property
    def gflops_per_img(self) -> float:
        return 2 * self.macs / 1e9

    def gflops(self, ms_per_img: float) -> float:
        return self.gflops_per_img / (ms_per_img * 1e-3)

    def markdown(self) -> str:
        batches = sorted({b for r in self.results for b in r.ms_per_img})
        peak = self.conv_peak_gflops.get("fp32_channels_last")
        m = self.machine
        on_gpu = bool(self.results) and PATHS[self.results[0].path].device == "cuda"
        where = (f"{m['gpu']} (host: {m['cpu']})" if on_gpu
                 else f"{m['cpu']} ({m['cores']} cores), {self.threads} threads")
        lines = [
            f"**{self.model}** at {self.input_size[0]}×{self.input_size[1]}, {self.macs / 1e9:.2f}·10⁹ multiply-adds "
            f"per image; {where}, torch {m['torch']}, {m['date']}; "
            f"load average {m['load_before']:.2f} before, {m['load_after']:.2f} after.",
            "",
            "Measured conv peak (3×3 convs as in HRNet's branches): "
            + ", ".join(f"{k.replace('_', ' ')} {v:.0f} GFLOP/s" for k, v in self.conv_peak_gflops.items()) + ".",
        ]
        if self.yardstick and self.yardstick.ms_per_img:
            ys = ", ".join(f"batch {b}: {v:.1f} ms/img" for b, v in sorted(self.yardstick.ms_per_img.items()))
            lines.append(f"Yardstick torchvision resnet50 eager fp32 at 224×224: {ys}.")
        if peak and self.results and self.results[0].ms_per_img:
            floor = 1000 * self.gflops_per_img / peak
            eager = sorted(self.results[0].ms_per_img.items())
            ceilings = ", ".join(f"{ms / floor:.2f}× at batch {b}" for b, ms in eager)
            lines.append(f"fp32 floor at the measured fp32 conv peak: {floor:.1f} ms/img, so an fp32 path can gain at "
                         f"most about {ceilings} over eager here (faster means convolutions beyond that peak).")
        lines += ["", "| path | precision | " + " | ".join(
            f"b{b} ms/img | b{b} img/s | b{b} GFLOP/s (% peak) | b{b} speed-up" for b in batches)
            + (" | peak GPU MiB | max-abs-diff |" if on_gpu else " | peak RSS MiB | max-abs-diff |"),
            "|---|---|" + "---|" * (4 * len(batches)) + "---|---|"]
        for r in self.results:
            if r.error:
                lines.append(f"| {r.path} | {r.precision} | failed: {r.error.splitlines()[-1][:200]} |")
                continue
            cells = []
            for b in batches:
                ms = r.ms_per_img.get(b)
                if ms is None:
                    cells += ["–"] * 4
                    continue
                gf = self.gflops(ms)
                share = f" ({100 * gf / peak:.0f} %)" if peak else ""
                ratio = self.speedup(r, b)
                cells += [f"{ms:.1f}", f"{1000 / ms:.1f}", f"{gf:.0f}{share}", f"{ratio:.2f}×" if ratio else "–"]
            diff = "reference" if r is self.results[0] else (
                f"{r.max_abs_diff:.1e}" + ("" if r.parity_ok else " ✗") if r.max_abs_diff is not None else "–")
            mem = f"{r.peak_rss_mib:.0f}" if r.peak_rss_mib is not None else "–"
            lines.append(f"| {r.path} | {r.precision} | " + " | ".join(cells) + f" | {mem} | {diff} |")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# --- measurements -------------------------------------------------------------------------------


def time_per_call(fn: Callable[[], Any], min_time: float = 2.0, min_calls: int = 5, warmup: int = 2) -> float:
    """Median seconds per call of ``fn`` over at least ``min_calls`` calls and ``min_time`` seconds."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_calls or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def conv_peak_gflops(dtype: torch.dtype = torch.float32, channels_last: bool = True,
                     min_time: float = 1.0, device: str = "cpu") -> float:
    """Best GFLOP/s of eager 3x3 convolutions shaped like HRNet's, on this machine (or GPU) now."""
    best = 0.0
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    dev = torch.device(device)
    scale = 8 if dev.type == "cuda" else 1  # a GPU needs larger batches to approach its peak
    for n, c, h, w in CONV_PEAK_SHAPES:
        n *= scale
        conv = nn.Conv2d(c, c, 3, padding=1, bias=False).to(dev, dtype=dtype, memory_format=fmt).eval()
        x = torch.randn(n, c, h, w, device=dev).to(dtype=dtype, memory_format=fmt)

        def call(conv: nn.Module = conv, x: Tensor = x) -> None:
            conv(x)
            _sync(dev)

        with torch.inference_mode():
            seconds = time_per_call(call, min_time=min_time)
        best = max(best, 2 * n * c * c * 9 * h * w / seconds / 1e9)
    return best


def recalibrate_batchnorm(model: nn.Module, input_size: tuple[int, int], batches: int = 2, batch_size: int = 4,
                          seed: int = 0) -> nn.Module:
    """Re-estimate BN statistics on random images, in place, so an untrained model has realistic
    activation scales: with the initial running stats, activations shrink layer after layer into
    denormal floats, which run far slower than normal ones and would distort every timing."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [bn.momentum for bn in norms]
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the calibration batches
    model.train()
    with torch.no_grad():
        for i in range(batches):
            model(example_input(model, input_size, batch=batch_size, seed=seed + i))
    for bn, momentum in zip(norms, momenta, strict=True):
        bn.momentum = momentum
    return model.eval()


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter of this process (Linux); False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mib() -> float:
    """Peak resident memory of this process since start or the last :func:`reset_peak_rss`."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_path(model: nn.Module, path: str, input_size: tuple[int, int], batches: Sequence[int],
                 min_time: float = 2.0) -> PathResult:
    """Build ``path`` for ``model`` and time it at each batch size (in this process)."""
    spec = PATHS[path]
    result = PathResult(path, spec.precision)
    device = torch.device(spec.device)
    images = {b: example_input(model, input_size, batch=b, seed=b).to(device) for b in batches}
    start = time.perf_counter()
    deployed = deploy(model, path, example=images[batches[0]])
    result.build_s = time.perf_counter() - start
    for b in batches:
        start = time.perf_counter()
        deployed(images[b])  # compiles the shape on compile paths
        _sync(device)
        if result.first_call_s is None:
            result.first_call_s = time.perf_counter() - start
        largest = b == max(batches)
        if largest and device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        tracked = largest and device.type == "cpu" and reset_peak_rss()

        def call(x: Tensor = images[b]) -> None:
            deployed(x)
            _sync(device)

        result.ms_per_img[b] = time_per_call(call, min_time=min_time) * 1000 / b
        if largest and device.type == "cuda":
            result.peak_rss_mib = torch.cuda.max_memory_allocated(device) / 2**20
        elif tracked:
            result.peak_rss_mib = peak_rss_mib()
    x = images[max(batches)]
    reference = PATHS[REFERENCE[spec.device]].build(BuildInputs(model, x, (), Path()))
    parity = compare_outputs(reference(x), deployed(x), spec.tolerance)
    result.max_abs_diff, result.parity_ok = parity.max_abs_diff, parity.ok
    return result


# --- orchestration ------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    return {"cpu": cpu, "cores": os.cpu_count(), "gpu": gpu, "torch": torch.__version__,
            "python": platform.python_version(), "date": time.strftime("%Y-%m-%d %H:%M"),
            "load_before": os.getloadavg()[0], "load_after": float("nan")}


def _run_worker(job: dict[str, Any], workdir: Path, log: Callable[[str], None]) -> PathResult:
    """Measure one path in a fresh Python process (see the module docstring for why)."""
    job_file, result_file = workdir / f"{job['tag']}.job.json", workdir / f"{job['tag']}.result.json"
    job_file.write_text(json.dumps({**job, "result": str(result_file)}))
    start = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-m", "hrnet.deploy.bench", str(job_file)], capture_output=True,
                              text=True, timeout=WORKER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return PathResult(job["path"], PATHS[job["path"]].precision, error=f"timed out after {WORKER_TIMEOUT_S} s")
    if proc.returncode != 0 or not result_file.is_file():
        tail = (proc.stderr or proc.stdout).strip()[-2000:]
        log(f"  {job['path']}: failed (exit {proc.returncode})\n{tail}")
        return PathResult(job["path"], PATHS[job["path"]].precision, error=tail or f"exit code {proc.returncode}")
    data = json.loads(result_file.read_text())
    data["ms_per_img"] = {int(k): v for k, v in data["ms_per_img"].items()}
    result = PathResult(**data)
    timings = ", ".join(f"b{b} {v:.1f} ms/img" for b, v in result.ms_per_img.items())
    log(f"  {job['path']}: {timings} (built in {result.build_s:.0f} s, first call {result.first_call_s:.0f} s, "
        f"{time.perf_counter() - start:.0f} s in all)")
    return result


def run_benchmark(model: nn.Module, name: str, input_size: tuple[int, int], paths: Sequence[str],
                  batches: Sequence[int] = (1, 8), threads: int | None = None, min_time: float = 2.0,
                  yardstick: bool = True, log: Callable[[str], None] = print) -> BenchReport:
    """Benchmark ``model`` (eval mode, trained or not) in each of ``paths`` plus eager fp32 first."""
    threads = threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    unknown = [p for p in paths if p not in PATHS]
    if unknown:
        raise HRNetError(f"unknown deploy path(s) {unknown}; known: {', '.join(PATHS)}")
    device = PATHS[paths[0]].device if paths else "cpu"
    ordered = [REFERENCE[device], *(p for p in paths if p != REFERENCE[device])]
    info = machine_info()
    log(f"measuring the conv peak ({threads} threads)...")
    low, low_name = (torch.float16, "fp16") if device == "cuda" else (torch.bfloat16, "bf16")  # as the paths use
    peaks = {"fp32_channels_last": conv_peak_gflops(torch.float32, min_time=min_time / 2, device=device),
             "fp32_nchw": conv_peak_gflops(torch.float32, channels_last=False, min_time=min_time / 2, device=device),
             f"{low_name}_channels_last": conv_peak_gflops(low, min_time=min_time / 2, device=device)}
    macs = complexity(model, input_size).macs
    with tempfile.TemporaryDirectory(prefix="hrnet-bench-") as tmp:
        workdir = Path(tmp)
        torch.save(model, workdir / "model.pt")
        common = {"threads": threads, "batches": list(batches), "min_time": min_time}
        ruler = None
        if yardstick:
            log("yardstick: torchvision resnet50, eager fp32 ...")
            job = {**common, "tag": "yardstick", "path": REFERENCE[device], "model": "resnet50", "input": [224, 224]}
            ruler = _run_worker(job, workdir, log)
            ruler.path = "resnet50 (eager)"
        results = []
        for path in ordered:
            log(f"{path} ...")
            job = {**common, "tag": path, "path": path, "model": str(workdir / "model.pt"), "input": list(input_size)}
            results.append(_run_worker(job, workdir, log))
    info["load_after"] = os.getloadavg()[0]
    return BenchReport(name, tuple(input_size), threads, macs, info, peaks, ruler, results)


def _worker_main(job_file: str) -> None:
    job = json.loads(Path(job_file).read_text())
    torch.set_num_threads(job["threads"])
    if job["model"] == "resnet50":
        import torchvision

        model = torchvision.models.resnet50().eval()
    else:
        model = torch.load(job["model"], weights_only=False)  # written by the parent process just now
    result = measure_path(model, job["path"], tuple(job["input"]), job["batches"], job["min_time"])
    Path(job["result"]).write_text(json.dumps(asdict(result)))


if __name__ == "__main__":
    _worker_main(sys.argv[1])
