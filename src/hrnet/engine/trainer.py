"""The training loop shared by every task.

:class:`Trainer` owns what is common: seeding, device, DDP, optimizer and schedule, AMP, gradient
clipping, ``torch.compile``, channels-last, checkpoints and resume, progress bars and logs. The task
(``hrnet.engine.task.Task``) supplies the model, the datasets, the loss and the evaluation.

A run writes to ``cfg.output_dir`` (rank 0 only), which it locks for its life (see
``hrnet.engine.faults``)::

    run.lock            who runs in this folder (pid, host, start time)
    config.yaml         the fully resolved config
    checkpoints/        last.pt, best.pt, epoch_NNNN.pt (see hrnet.engine.checkpoint)
    metrics.jsonl       training and validation records (see hrnet.engine.metrics_log)
    tensorboard/        TensorBoard event files
    eval/               what the task's evaluation writes (predictions, ...)
    curves.png          loss and validation-metric curves, drawn at the end

Resuming is exact: a run killed at any moment and resumed with ``resume=True`` ends with the same
weights as an uninterrupted one, because the checkpoint holds every RNG state and the position inside
the epoch, and the data order and augmentation depend only on (seed, epoch, sample index).
SIGTERM and SIGINT stop the run at the next iteration boundary with such a checkpoint; a checkpoint
never holds non-finite weights.
"""

from __future__ import annotations

import itertools
import math
import signal
import sys
import time
from collections import defaultdict
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..errors import ConfigError, HRNetError
from .build import amp_dtype, build_model, build_task, resolve_device
from .checkpoint import (
    best_checkpoint_path,
    last_checkpoint_path,
    load_checkpoint,
    load_state_dict_checked,
    periodic_checkpoint_path,
    save_checkpoint,
)
from .config import ExperimentConfig, config_to_dict, save_config
from .data import build_eval_loader, build_train_loader, move_to_device
from .distributed import (
    all_gather_object,
    all_reduce_mean,
    broadcast_object,
    cleanup_distributed,
    init_distributed,
    max_over_processes,
)
from .faults import (
    RunLock,
    StopSignals,
    TrainingInterrupted,
    disk_full_error,
    is_disk_full,
    remove_stale_temp_files,
)
from .inference import run_evaluation
from .metrics_log import MetricsLogger, plot_curves, read_metrics
from .optim import build_optimizer, build_scheduler
from .seeding import capture_rng_state, configure_determinism, restore_rng_state, seed_everything
from .sync_batchnorm import convert_sync_batchnorm

__all__ = ["Trainer", "train"]


class Trainer:
    """Train ``cfg``; ``resume=True`` continues from ``<output_dir>/checkpoints/last.pt`` when it exists
    (so the same command both starts and restarts a run), ``resume_from`` from a given checkpoint."""

    def __init__(self, cfg: ExperimentConfig, resume: bool = False, resume_from: str | Path | None = None):
        self.cfg = cfg
        self.out = Path(cfg.output_dir)
        self.dist = init_distributed(resolve_device(cfg.device).type)
        self.is_main = self.dist.is_main
        self.signals = StopSignals()
        self.lock = self._lock_output_dir()
        try:
            self._build(resume, resume_from)
        except BaseException:
            self.close()
            raise

    def _build(self, resume: bool, resume_from: str | Path | None) -> None:
        cfg = self.cfg
        self.device = resolve_device(cfg.device, self.dist.local_rank)
        configure_determinism(cfg.deterministic)
        seed_everything(cfg.seed + self.dist.rank)
        self.amp_dtype = amp_dtype(cfg.train.amp, self.device)
        self.resume_path = broadcast_object(self._find_resume_checkpoint(resume, resume_from))

        self.task = build_task(cfg)
        self.model = self._build_model()
        self.train_loader, self.val_loader = self._build_loaders()
        train_cfg = cfg.train
        self.iters_per_epoch = min(len(self.train_loader), train_cfg.max_iters_per_epoch or math.inf)
        self.optimizer = build_optimizer(self.model.parameters(), train_cfg.optimizer)
        self.scheduler = build_scheduler(self.optimizer, train_cfg.schedule, self.iters_per_epoch, train_cfg.epochs)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)

        self.epoch = 0  # epoch in progress (== epochs when done)
        self.iter_in_epoch = 0  # batches of that epoch already trained on
        self.global_iter = 0  # optimizer steps done
        self.best_metric: float | None = None
        self.best_epoch: int | None = None
        self.last_metrics: dict[str, float] = {}
        self.window: dict[str, list[float]] = defaultdict(list)  # numbers since the last train record
        self.epoch_losses: list[float] = []
        self.last_finite: str | None = None  # the newest checkpoint written (all written ones are finite)
        if self.resume_path is not None:
            self._restore(load_checkpoint(self.resume_path))

        self.train_module: nn.Module = self.model
        if self.dist.world_size > 1:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.train_module = DistributedDataParallel(self.model, device_ids=device_ids)
        if train_cfg.compile:
            self.train_module = torch.compile(self.train_module)

    def _lock_output_dir(self) -> RunLock | None:
        """Rank 0 locks ``output_dir`` and removes temporary files that interrupted writes left there;
        every process stops if another run holds the folder."""
        lock, refusal = None, None
        if self.is_main:
            lock = RunLock(self.out)
            try:
                note = lock.acquire()
            except HRNetError as e:
                lock, refusal = None, str(e)
            else:
                notes = [note] if note else []
                removed = remove_stale_temp_files(self.out)
                if removed:
                    notes.append(f"removed {len(removed)} temporary file(s) of interrupted writes, e.g. {removed[0]}")
                for text in notes:
                    print(f"note: {text}", file=sys.stderr)
        refusal = broadcast_object(refusal)
        if refusal is not None:
            raise HRNetError(refusal)
        return lock

    def close(self) -> None:
        """Put the signal handlers back and release ``output_dir`` (also done by :meth:`fit`)."""
        self.signals.restore()
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def _build_model(self) -> nn.Module:
        cfg = self.cfg
        # a resumed run gets its weights from the checkpoint, not from model.init_from
        model = build_model(self.task, cfg) if self.resume_path is None else self.task.build_model()
        if cfg.train.sync_bn and self.dist.world_size > 1:
            # torch's SyncBatchNorm runs on GPUs only; ours all-reduces the moments over gloo too
            cuda = self.device.type == "cuda"
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model) if cuda else convert_sync_batchnorm(model)
        memory_format = torch.channels_last if cfg.train.channels_last else torch.preserve_format
        return model.to(self.device, memory_format=memory_format)

    def _build_loaders(self) -> tuple[DataLoader, DataLoader | None]:
        cfg, pin = self.cfg, self.device.type == "cuda"
        train_loader = build_train_loader(
            self.task.build_dataset("train"),
            batch_size=cfg.train.batch_size,
            workers=cfg.train.workers,
            seed=cfg.seed,
            dist_info=self.dist,
            collate_fn=self.task.collate_fn(),
            pin_memory=pin,
        )
        if not cfg.train.eval_every:
            return train_loader, None
        val_loader = build_eval_loader(
            self.task.build_dataset("val"),
            batch_size=cfg.eval.batch_size or cfg.train.batch_size,
            workers=cfg.train.workers if cfg.eval.workers is None else cfg.eval.workers,
            dist_info=self.dist,
            collate_fn=self.task.collate_fn(),
            pin_memory=pin,
        )
        return train_loader, val_loader

    # ------------------------------------------------------------------------------------------ resume

    def _find_resume_checkpoint(self, resume: bool, resume_from: str | Path | None) -> Path | None:
        if resume_from is not None:
            return Path(resume_from)
        last = last_checkpoint_path(self.out)
        if resume:
            return last if last.is_file() else None
        if last.is_file():
            raise ConfigError(
                f"output_dir {self.out} already holds a training run ({last}). Pass --resume to continue it, "
                f"or choose another output_dir=..."
            )
        return None

    def _restore(self, state: dict[str, Any]) -> None:
        load_state_dict_checked(self.model, state["model"], str(self.resume_path))
        for name in ("optimizer", "scheduler", "scaler"):
            if name not in state:
                raise HRNetError(
                    f"{self.resume_path} holds no {name} state: it cannot be resumed (best.pt "
                    "holds the model only; resume from last.pt or a periodic checkpoint)"
                )
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.iter_in_epoch = state["epoch"], state["iter_in_epoch"]
        self.global_iter = state["global_iter"]
        self.best_metric, self.best_epoch = state["best_metric"], state["best_epoch"]
        self.last_metrics = dict(state.get("last_metrics", {}))
        self.last_finite = str(self.resume_path)
        rng = state["rng"]
        if len(rng) == self.dist.world_size:
            restore_rng_state(rng[self.dist.rank])
            self.train_loader.generator.set_state(state["loader_generator"])
            # the train records after the resume point average the same iterations as without the stop
            self.window.update(state.get("log_window", [{}] * len(rng))[self.dist.rank])
            self.epoch_losses = list(state.get("epoch_losses", []))
        elif self.is_main:
            print(
                f"warning: {self.resume_path} was written by {len(rng)} processes and this run has "
                f"{self.dist.world_size}: training continues, but not bit-identically",
                file=sys.stderr,
            )
        if self.is_main:
            self._warn_config_changes(state.get("config", {}))
            print(
                f"Resuming from {self.resume_path}: epoch {self.epoch + 1}, iteration {self.iter_in_epoch} "
                f"(step {self.global_iter})",
                file=sys.stderr,
            )

    def _warn_config_changes(self, saved: dict[str, Any]) -> None:
        def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
            if not isinstance(d, dict):
                return {prefix[:-1]: d}
            return {k: v for key, value in d.items() for k, v in flatten(value, f"{prefix}{key}.").items()}

        old, new = flatten(saved), flatten(config_to_dict(self.cfg))
        changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
        if changed:
            print(f"warning: the config differs from the checkpoint's in {', '.join(changed)}", file=sys.stderr)

    # ----------------------------------------------------------------------------------------- saving

    def _state(self, full: bool) -> dict[str, Any]:
        state: dict[str, Any] = {
            "model": self.model.state_dict(),
            "epoch": self.epoch,
            "iter_in_epoch": self.iter_in_epoch,
            "global_iter": self.global_iter,
            "best_metric": self.best_metric,
            "best_epoch": self.best_epoch,
            "last_metrics": self.last_metrics,
            "world_size": self.dist.world_size,
            "config": config_to_dict(self.cfg),
        }
        if full:
            state.update(
                optimizer=self.optimizer.state_dict(),
                scheduler=self.scheduler.state_dict(),
                scaler=self.scaler.state_dict(),
                rng=all_gather_object(capture_rng_state()),
                loader_generator=self.train_loader.generator.get_state(),
                log_window=all_gather_object(dict(self.window)),
                epoch_losses=list(self.epoch_losses),
            )
        return state

    def _save(self, path: Path, state: dict[str, Any]) -> None:
        """Write a checkpoint (rank 0), refusing weights that are not finite: every process checks its
        own copy of the (identical) weights, so all stop together."""
        floats = [(k, v) for k, v in state["model"].items() if v.is_floating_point()]
        finite = torch.stack([torch.isfinite(v).all() for _, v in floats]).tolist() if floats else []  # one sync
        bad = [k for (k, _), ok in zip(floats, finite, strict=True) if not ok]
        if bad:
            more = f" (+{len(bad) - 3} more)" if len(bad) > 3 else ""
            raise HRNetError(
                f"training stopped: after step {self.global_iter} (epoch {self.epoch + 1}) {len(bad)} weight "
                f"tensor(s) hold NaN or Inf values ({', '.join(bad[:3])}{more}); they were not saved. "
                f"{self._kept()} Common remedies: a lower train.optimizer.lr, train.grad_clip, a longer "
                f"train.schedule.warmup_iters, or train.amp=false."
            )
        if self.is_main:
            save_checkpoint(path, state)
        if path == last_checkpoint_path(self.out):
            self.last_finite = f"{path} (step {self.global_iter})"

    def _kept(self) -> str:
        if self.last_finite is None:
            return "No checkpoint had been written yet."
        return f"The last good checkpoint, {self.last_finite}, holds finite weights; nothing after it was saved."

    def _save_last(self) -> None:
        self._save(last_checkpoint_path(self.out), self._state(full=True))  # every process gathers RNG states

    # -------------------------------------------------------------------------------------- training

    def _autocast(self):
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _train_step(self, batch: Any) -> tuple[float, dict[str, float], float]:
        batch = move_to_device(batch, self.device, self.cfg.train.channels_last)
        with self._autocast():
            loss, extras = self.task.compute_loss(self.train_module, batch)
        loss_value = all_reduce_mean(loss.detach().float().reshape(1)).item()
        if not math.isfinite(loss_value):
            self._stop_on_non_finite_loss(loss_value)
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.cfg.train.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.train.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return loss_value, extras, lr

    def _stop_on_non_finite_loss(self, value: float) -> None:
        raise HRNetError(
            f"training stopped: the loss is {value} at epoch {self.epoch + 1}, iteration "
            f"{self.iter_in_epoch + 1} (step {self.global_iter + 1}). {self._kept()} Common remedies: a lower "
            f"train.optimizer.lr, train.grad_clip, a longer train.schedule.warmup_iters, or train.amp=false."
        )

    def _log_window(self, lr: float, iterations: int, seconds: float, logger) -> None:
        """Log the mean of the numbers gathered since the last record (averaged over processes) and
        start a new window; ``iterations`` were timed over ``seconds``."""
        window, names = self.window, sorted(self.window)
        means = all_reduce_mean(torch.tensor([sum(window[n]) / len(window[n]) for n in names], dtype=torch.float64))
        values = dict(zip(names, means.tolist(), strict=True))
        samples = iterations * self.cfg.train.batch_size * self.dist.world_size
        values.update(lr=lr, samples_per_s=samples / max(seconds, 1e-9))
        if logger is not None:
            logger.log("train", self.global_iter, self.epoch + 1, values)
        self.window = defaultdict(list)

    def _validate(self) -> dict[str, float]:
        metrics = run_evaluation(self.task, self.model, self.val_loader, self.out / "eval")
        main = self.task.main_metric
        if main not in metrics:
            raise HRNetError(f"task {self.cfg.task!r} returned no {main!r} (its main metric): {sorted(metrics)}")
        return {name: float(value) for name, value in metrics.items()}

    def _train_epoch(self, logger, progress_start: float, steps_at_start: int) -> float:
        train_cfg = self.cfg.train
        sampler = self.train_loader.sampler
        sampler.set_epoch(self.epoch, start=self.iter_in_epoch * train_cfg.batch_size)
        total_steps = train_cfg.epochs * self.iters_per_epoch
        bar = tqdm(
            total=self.iters_per_epoch,
            initial=self.iter_in_epoch,
            desc=f"epoch {self.epoch + 1}/{train_cfg.epochs}",
            disable=not self.is_main,
            dynamic_ncols=True,
            mininterval=0.5 if sys.stderr.isatty() else 10,
        )
        if self.iter_in_epoch == 0:
            self.window, self.epoch_losses = defaultdict(list), []
        window_start, window_iters = time.perf_counter(), 0
        epoch_losses = self.epoch_losses
        lr = self.optimizer.param_groups[0]["lr"]
        self.model.train()
        for batch in itertools.islice(self.train_loader, max(0, self.iters_per_epoch - self.iter_in_epoch)):
            loss, extras, lr = self._train_step(batch)
            self.global_iter += 1
            self.iter_in_epoch += 1
            epoch_losses.append(loss)
            window_iters += 1
            self.window["loss"].append(loss)
            for name, value in extras.items():
                self.window[name].append(float(value))
            if self.global_iter % train_cfg.log_every == 0:
                now = time.perf_counter()
                self._log_window(lr, window_iters, now - window_start, logger)
                window_start, window_iters = now, 0
            if (
                train_cfg.checkpoint_every_iters
                and self.global_iter % train_cfg.checkpoint_every_iters == 0
                and self.iter_in_epoch < self.iters_per_epoch
            ):
                self._save_last()
            seconds_per_step = (time.perf_counter() - progress_start) / (self.global_iter - steps_at_start)
            bar.set_postfix(
                loss=f"{sum(epoch_losses) / len(epoch_losses):.4g}",
                lr=f"{lr:.3g}",
                samples_per_s=f"{train_cfg.batch_size * self.dist.world_size / seconds_per_step:.1f}",
                eta=tqdm.format_interval(seconds_per_step * (total_steps - self.global_iter)),
                refresh=False,
            )
            bar.update(1)
            if self._stop_requested():
                break
        bar.close()
        if self.window and self.iter_in_epoch == self.iters_per_epoch:  # an epoch ends with a record
            self._log_window(lr, window_iters, time.perf_counter() - window_start, logger)
        return sum(epoch_losses) / max(len(epoch_losses), 1)

    def _stop_requested(self) -> bool:
        """Whether any process got SIGTERM/SIGINT (all processes agree, so they stop together)."""
        self.stop_signum = max_over_processes(self.signals.signum or 0)
        return self.stop_signum != 0

    def _stop_on_signal(self) -> None:
        """Save where training stands (every process takes part) and raise :class:`TrainingInterrupted`."""
        if self.iter_in_epoch:  # at an epoch boundary ``_end_epoch`` has just saved it
            self._save_last()
        name = signal.Signals(self.stop_signum).name
        raise TrainingInterrupted(
            f"stopped by {name}: saved a resumable checkpoint at epoch {self.epoch + 1}, iteration "
            f"{self.iter_in_epoch} (step {self.global_iter}) to {last_checkpoint_path(self.out)}. Continue "
            f"with the same command and --resume.",
            self.stop_signum,
        )

    def _end_epoch(self, epoch_loss: float, logger) -> None:
        train_cfg = self.cfg.train
        done = self.epoch + 1
        metrics: dict[str, float] = {}
        if train_cfg.eval_every and (done % train_cfg.eval_every == 0 or done == train_cfg.epochs):
            metrics = self._validate()
            self.last_metrics = metrics
            if logger is not None:
                logger.log("val", self.global_iter, done, metrics)
        main = self.task.main_metric
        improved = bool(metrics) and (self.best_metric is None or metrics[main] > self.best_metric)
        if improved:
            self.best_metric, self.best_epoch = metrics[main], done
        self.epoch, self.iter_in_epoch = done, 0
        if improved:  # before ``last``, which records it as the best
            self._save(best_checkpoint_path(self.out), {**self._state(full=False), "metrics": metrics})
        self._save_last()
        if train_cfg.checkpoint_every and done % train_cfg.checkpoint_every == 0:
            self._save(periodic_checkpoint_path(self.out, done), self._state(full=True))
        if self.is_main:
            summary = f"epoch {done}/{train_cfg.epochs}: loss {epoch_loss:.4g}"
            if metrics:
                summary += f", {main} {metrics[main]:.4f} (best {self.best_metric:.4f} at epoch {self.best_epoch})"
            tqdm.write(summary, file=sys.stderr)

    def fit(self) -> dict[str, Any]:
        """Train to ``train.epochs``; returns a summary (steps, best and last validation metrics, paths)."""
        logger = None
        self.stop_signum = 0
        self.signals.install()
        try:
            if self.is_main:
                self.out.mkdir(parents=True, exist_ok=True)
                save_config(self.cfg, self.out / "config.yaml")
                resumed = self.resume_path is not None
                logger = MetricsLogger(self.out, resume_step=self.global_iter if resumed else None)
            progress_start, steps_at_start = time.perf_counter(), self.global_iter
            while self.epoch < self.cfg.train.epochs:
                epoch_loss = self._train_epoch(logger, progress_start, steps_at_start)
                if self.stop_signum:
                    self._stop_on_signal()
                self._end_epoch(epoch_loss, logger)
                if self.epoch < self.cfg.train.epochs and self._stop_requested():
                    self._stop_on_signal()
            if self.is_main:
                plot_curves(read_metrics(logger.path), self.out / "curves.png", self.task.main_metric)
        except OSError as e:
            if not is_disk_full(e):
                raise
            raise disk_full_error(e, self.out, self._kept()) from None
        finally:
            if logger is not None:
                logger.close()
            self.close()
        return {
            "output_dir": str(self.out),
            "steps": self.global_iter,
            "epochs": self.epoch,
            "main_metric": self.task.main_metric,
            "best_metric": self.best_metric,
            "best_epoch": self.best_epoch,
            "last_metrics": self.last_metrics,
            "last_checkpoint": str(last_checkpoint_path(self.out)),
            "best_checkpoint": str(best_checkpoint_path(self.out)) if self.best_epoch else None,
        }


def train(cfg: ExperimentConfig, resume: bool = False, resume_from: str | Path | None = None) -> dict[str, Any]:
    """Train ``cfg`` (see :class:`Trainer`) and leave the process group; returns ``Trainer.fit``'s summary.

    Raises :class:`~hrnet.engine.faults.TrainingInterrupted` (exit code 143/130) after saving a
    checkpoint when SIGTERM/SIGINT arrives, and :class:`~hrnet.errors.HRNetError` when another run holds
    ``output_dir``, the disk is full, or training diverges."""
    try:
        return Trainer(cfg, resume=resume, resume_from=resume_from).fit()
    finally:
        cleanup_distributed()
