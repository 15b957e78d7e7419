from collections import namedtuple

import numpy as np
import torch
from torch.utils.data import Dataset

from hrnet.engine.data import ShardedSampler, TrainSampler, build_train_loader, move_to_device
from hrnet.engine.distributed import DistInfo


class RandomDataset(Dataset):
    """Each sample draws from every global RNG, as augmentation does."""

    def __len__(self):
        return 24

    def __getitem__(self, index):
        return torch.tensor([index, np.random.rand(), torch.rand(()).item()], dtype=torch.float64)


def batches(loader, epoch, start=0):
    loader.sampler.set_epoch(epoch, start=start)
    return [batch for batch in loader]


def test_sampler_resumes_inside_an_epoch():
    sampler = TrainSampler(RandomDataset(), num_replicas=1, rank=0, seed=3)
    sampler.set_epoch(2)
    full = list(sampler)
    sampler.set_epoch(2, start=10)
    assert list(sampler) == full[10:] and len(sampler) == 14
    sampler.set_epoch(3)
    assert [i for i, _ in sampler] != [i for i, _ in full]  # a new permutation each epoch


def test_augmentation_depends_only_on_seed_epoch_and_index():
    def loader(workers, world=None, batch_size=4):
        world = world or DistInfo()
        return build_train_loader(RandomDataset(), batch_size=batch_size, workers=workers, seed=5, dist_info=world)

    reference = batches(loader(0), epoch=1)
    assert torch.equal(torch.cat(batches(loader(2), epoch=1)), torch.cat(reference))
    # resuming after 2 batches gives the remaining batches bit for bit
    assert torch.equal(torch.cat(batches(loader(0), epoch=1, start=8)), torch.cat(reference[2:]))
    # two processes with half the batch see together what one process sees
    ranks = [batches(loader(0, DistInfo(rank, 2), batch_size=2), epoch=1) for rank in (0, 1)]
    for step, batch in enumerate(reference):
        together = torch.cat([ranks[0][step], ranks[1][step]])
        assert torch.equal(together[together[:, 0].argsort()], batch[batch[:, 0].argsort()])
    # and loading leaves the caller's RNG streams alone
    state = torch.get_rng_state()
    batches(loader(0), epoch=1)
    assert torch.equal(state, torch.get_rng_state())


def test_sharded_sampler_covers_every_index_once():
    shards = [list(ShardedSampler(10, 3, rank)) for rank in range(3)]
    assert sorted(sum(shards, [])) == list(range(10))
    assert [len(ShardedSampler(10, 3, rank)) for rank in range(3)] == [4, 3, 3]


def test_move_to_device_keeps_structure_and_sets_channels_last():
    Pair = namedtuple("Pair", "image label")
    batch = {"items": [Pair(torch.zeros(2, 3, 4, 5), torch.ones(2))], "name": "x", "t": (torch.ones(1),)}
    moved = move_to_device(batch, torch.device("cpu"), channels_last=True)
    assert isinstance(moved["items"][0], Pair) and moved["name"] == "x" and isinstance(moved["t"], tuple)
    assert moved["items"][0].image.is_contiguous(memory_format=torch.channels_last)
