"""A tiny regression task (a 2-layer MLP fitting a fixed linear map) to test the engine quickly.

With ``data.image_size`` set, the inputs are float64 images and ``model.name: hrnet`` is a tiny float64
HRNet classifier regressing the targets: float64 keeps the rounding of BatchNorm over tiny batches
from being amplified, so that runs can be compared to 1e-5.

Configs load it with ``imports: [engine_toy_task]`` (this folder on ``sys.path``). Its samples get
random noise from NumPy and torch's global RNGs, as real augmentation does, and its data config has
hooks that make a run misbehave on purpose: a NaN loss, NaN gradients, a signal at a given step, or a
pause while a file exists.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict
from torch import Tensor, nn
from torch.utils.data import Dataset

import hrnet
from hrnet.engine.config import EvalConfig
from hrnet.engine.distributed import all_gather_object, is_main_process
from hrnet.engine.task import Task, register_task
from hrnet.errors import DataError
from hrnet.io import write_json

IN_FEATURES, OUT_FEATURES = 4, 2


class ToyDataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    root: Path
    num_train: int = 40
    num_val: int = 12
    noise: float = 0.1
    #: float64 images of this side instead of feature vectors
    image_size: int | None = None
    #: ``compute_loss`` returns NaN at its n-th call (1-based) in this process
    nan_at_call: int | None = None
    #: the process kills itself with SIGKILL at its n-th ``compute_loss`` call
    kill_at_call: int | None = None
    #: the process sends itself ``signal_name`` at its n-th call (on process ``signal_rank`` only)
    signal_at_call: int | None = None
    signal_name: str = "SIGTERM"
    signal_rank: int = 0
    #: the loss is finite at the n-th call but its gradients are NaN, so the step poisons the weights
    nan_grad_at_call: int | None = None
    #: every call waits while this file exists
    pause_file: Path | None = None


class ToyEvalConfig(EvalConfig):
    write_predictions: bool = True


class ToyLossConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["mse", "l1"] = "mse"


class ToyDataset(Dataset):
    def __init__(self, size: int, seed: int, noise: float, image_size: int | None = None) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.x = torch.randn(size, IN_FEATURES, generator=generator)
        weight = torch.randn(IN_FEATURES, OUT_FEATURES, generator=torch.Generator().manual_seed(1234))
        self.y = self.x @ weight
        self.noise = noise
        if image_size is not None:  # images whose channel means carry the features
            pattern = torch.randn(size, 3, image_size, image_size, generator=generator, dtype=torch.float64)
            self.x = pattern + self.x[:, :3, None, None].double()
            self.y = self.y.double()

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> dict[str, Any]:
        shape = self.x.shape[1:2]
        jitter = self.noise * (torch.randn(shape) + torch.from_numpy(np.random.randn(*shape)).float())
        return {"x": self.x[index] + jitter.to(self.x.dtype).reshape(-1, *[1] * (self.x.dim() - 2)),
                "y": self.y[index], "index": index}


@register_task
class ToyTask(Task):
    name = "toy"
    DataConfig = ToyDataConfig
    EvalConfig = ToyEvalConfig
    LossConfig = ToyLossConfig
    main_metric = "score"

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg)
        self.calls = 0

    def build_model(self) -> nn.Module:
        if self.cfg.model.name == "hrnet":
            tiny = {"width": 4, "blocks": 1, "modules": [1, 1, 1], "stage1_blocks": 1,
                    "head_channels": [4, 8, 16, 32], "final_channels": 16}
            return hrnet.build_model("cls_hrnet_w18", **tiny, num_classes=OUT_FEATURES).double()
        options = {"hidden": 16, "dropout": 0.0, **self.cfg.model.overrides}
        return nn.Sequential(
            nn.Linear(IN_FEATURES, options["hidden"]),
            nn.ReLU(),
            nn.Dropout(options["dropout"]),
            nn.Linear(options["hidden"], OUT_FEATURES),
        )

    def build_dataset(self, split: str) -> Dataset:
        data = self.cfg.data
        if not data.root.is_dir():
            raise DataError(f"data.root: dataset folder {data.root} does not exist")
        if split == "train":
            return ToyDataset(data.num_train, seed=0, noise=data.noise, image_size=data.image_size)
        return ToyDataset(data.num_val, seed=1, noise=0.0, image_size=data.image_size)

    def compute_loss(self, model: nn.Module, batch: Any) -> tuple[Tensor, dict[str, float]]:
        self.calls += 1
        data = self.cfg.data
        while data.pause_file is not None and data.pause_file.exists():
            time.sleep(0.05)
        if self.calls == data.kill_at_call:
            os.kill(os.getpid(), signal.SIGKILL)
        if self.calls == data.signal_at_call and int(os.environ.get("RANK", "0")) == data.signal_rank:
            os.kill(os.getpid(), signal.Signals[data.signal_name])
        prediction = model(batch["x"])
        error = prediction - batch["y"]
        loss = error.abs().mean() if self.cfg.loss.kind == "l1" else error.pow(2).mean()
        if self.calls == data.nan_grad_at_call:  # sqrt has an infinite slope at 0: 0 x inf = NaN gradients
            loss = loss + torch.sqrt(prediction * 0).sum()
        if self.calls == self.cfg.data.nan_at_call:
            loss = loss * float("nan")
        return loss, {"mae": float(error.detach().abs().mean())}

    def evaluate(self, model: nn.Module, loader: torch.utils.data.DataLoader, out_dir: Path) -> dict[str, float]:
        rows = []
        for batch in loader:
            prediction = model(batch["x"])
            errors = (prediction - batch["y"]).pow(2).mean(dim=1)
            rows += [(int(i), float(e)) for i, e in zip(batch["index"], errors, strict=True)]
        rows = sorted(row for part in all_gather_object(rows) for row in part)
        mse = sum(e for _, e in rows) / len(rows)
        if is_main_process() and self.cfg.eval.write_predictions:
            write_json(out_dir / "predictions.json", [{"index": i, "squared_error": e} for i, e in rows])
        return {"score": -mse, "mse": mse, "count": float(len(rows))}

    def predict(self, model: nn.Module, inputs: list[Path], out_dir: Path, **options: Any) -> list[Path]:
        written = []
        for path in inputs:
            if not path.is_file():
                raise DataError(f"input not found: {path}")
            x = torch.tensor(json.loads(path.read_text()), dtype=torch.float32)
            scale = float(options.get("scale", 1.0))
            out = out_dir / f"{path.stem}.pred.json"
            write_json(out, (scale * model(x)).tolist())
            written.append(out)
        return written
