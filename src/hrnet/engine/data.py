"""DataLoaders whose randomness depends only on (seed, epoch, sample index).

Each training sample is loaded with Python's ``random``, NumPy and torch freshly seeded from
``(seed, epoch, index)`` (and each batch's collation from its samples' seeds). Augmentation is then
the same whatever the number of workers, the number of processes, or where a resumed run starts, which
is what makes a resumed run bit-identical to an uninterrupted one and a 2-process run equal to a
1-process run with the same global batch. Datasets should draw their randomness from those global
RNGs, as the official HRNet code does.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler, default_collate

from ..errors import DataError
from .distributed import DistInfo
from .seeding import disable_opencv_threads, worker_init_fn

__all__ = [
    "sample_seed",
    "seeded_rngs",
    "TrainSampler",
    "ShardedSampler",
    "SeededDataset",
    "SeededCollate",
    "move_to_device",
    "build_train_loader",
    "build_eval_loader",
]


def sample_seed(*entropy: int) -> int:
    """A well-mixed 32-bit seed from non-negative integers, e.g. ``(seed, epoch, index)``."""
    return int(np.random.SeedSequence(list(entropy)).generate_state(1)[0])


@contextlib.contextmanager
def seeded_rngs(seed: int) -> Iterator[None]:
    """Seed ``random``, NumPy and torch's CPU generator for the block, then put their states back."""
    py_state, np_state, torch_state = random.getstate(), np.random.get_state(), torch.get_rng_state()
    random.seed(seed)
    np.random.seed(seed)
    torch.default_generator.manual_seed(seed)
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        torch.set_rng_state(torch_state)


class TrainSampler(DistributedSampler):
    """torch's ``DistributedSampler`` (a permutation fixed by ``seed + epoch``, split over processes)
    that can start part-way through an epoch and tags every index with its sample's seed."""

    def __init__(self, dataset: Dataset, *, num_replicas: int, rank: int, seed: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Iterate epoch ``epoch``'s permutation, skipping this process's first ``start`` samples."""
        super().set_epoch(epoch)
        self.start = start

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for index in list(super().__iter__())[self.start :]:
            yield index, sample_seed(self.seed, self.epoch, index)

    def __len__(self) -> int:
        return self.num_samples - self.start


class ShardedSampler(Sampler[int]):
    """Process ``r`` of ``W`` takes indices ``r, r+W, r+2W, ...``: every sample exactly once overall
    (``DistributedSampler`` pads with repeats, which would count some samples twice in a metric)."""

    def __init__(self, length: int, num_replicas: int = 1, rank: int = 0) -> None:
        self.indices = range(rank, length, num_replicas)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


class SeededDataset(Dataset):
    """Loads ``dataset[index]`` for a key ``(index, seed)`` under :func:`seeded_rngs`; returns
    ``(seed, sample)`` so that :class:`SeededCollate` can seed the batch collation too."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> tuple[int, Any]:
        index, seed = key
        with seeded_rngs(seed):
            return seed, self.dataset[index]


class SeededCollate:
    """Collates ``(seed, sample)`` pairs with the task's function, seeded from the samples' seeds
    (for batch-level augmentation such as mixup)."""

    def __init__(self, collate_fn: Callable | None) -> None:
        self.collate_fn = collate_fn or default_collate

    def __call__(self, items: list[tuple[int, Any]]) -> Any:
        seeds = [seed for seed, _ in items]
        with seeded_rngs(sample_seed(*seeds)):
            return self.collate_fn([sample for _, sample in items])


def move_to_device(batch: Any, device: torch.device, channels_last: bool = False) -> Any:
    """``batch`` with every tensor inside (nested dicts, lists, tuples) moved to ``device``;
    4-D floating-point tensors (images) also in channels-last layout when asked."""
    if isinstance(batch, torch.Tensor):
        batch = batch.to(device, non_blocking=True)
        if channels_last and batch.ndim == 4 and batch.is_floating_point():
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch
    if isinstance(batch, Mapping):
        return {key: move_to_device(value, device, channels_last) for key, value in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # named tuple
        return type(batch)(*(move_to_device(value, device, channels_last) for value in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to_device(value, device, channels_last) for value in batch)
    return batch


def build_train_loader(
    dataset: Dataset,
    *,
    batch_size: int,
    workers: int,
    seed: int,
    dist_info: DistInfo,
    collate_fn: Callable | None = None,
    pin_memory: bool = False,
) -> DataLoader:
    """The shuffling training loader (incomplete last batches dropped); its sampler is a
    :class:`TrainSampler` to be given the epoch with ``loader.sampler.set_epoch``."""
    size = len(dataset)
    per_process = -(-size // dist_info.world_size)
    if per_process < batch_size:
        raise DataError(
            f"the train split has {size} samples, fewer than one batch per process "
            f"(train.batch_size={batch_size} x {dist_info.world_size} processes); lower train.batch_size"
        )
    sampler = TrainSampler(dataset, num_replicas=dist_info.world_size, rank=dist_info.rank, seed=seed)
    if workers > 0:
        disable_opencv_threads()
    generator = torch.Generator()
    generator.manual_seed(seed)
    return DataLoader(
        SeededDataset(dataset),
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=SeededCollate(collate_fn),
        drop_last=True,
        pin_memory=pin_memory,
        persistent_workers=workers > 0,
        worker_init_fn=worker_init_fn,
        generator=generator,
    )


def build_eval_loader(
    dataset: Dataset,
    *,
    batch_size: int,
    workers: int,
    dist_info: DistInfo,
    collate_fn: Callable | None = None,
    pin_memory: bool = False,
) -> DataLoader:
    """The evaluation loader: this process's share of the split, in order, every sample once."""
    if len(dataset) == 0:
        raise DataError("the val split is empty")
    if workers > 0:
        disable_opencv_threads()
    generator = torch.Generator()
    generator.manual_seed(0)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=ShardedSampler(len(dataset), dist_info.world_size, dist_info.rank),
        num_workers=workers,
        collate_fn=collate_fn,
        pin_memory=pin_memory,
        worker_init_fn=worker_init_fn,
        generator=generator,
    )


class DeviceLoader:
    """The batches of ``loader`` with every tensor on ``device`` (:func:`move_to_device`): what
    ``Task.evaluate`` iterates, so that tasks never move data themselves. ``dataset`` is the loader's."""

    def __init__(self, loader: Iterable[Any], device: torch.device) -> None:
        self.loader = loader
        self.device = device

    @property
    def dataset(self) -> Dataset:
        return self.loader.dataset

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Any]:
        return (move_to_device(batch, self.device) for batch in self.loader)
