"""The in-memory loader (after airbench): batches are index slices of uint8 tensors, and
augmentation + normalization run batched on the training device, not per image in workers."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import Tensor

from poolbench.data.tensors import Split


class EpochSampler:
    """Seeded shuffle per epoch, sharded across DDP ranks, yielding index batches.

    Lightning calls `set_epoch` through `loader.sampler`, as it does for DistributedSampler.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.n, self.batch_size, self.shuffle, self.seed = n, batch_size, shuffle, seed
        self.rank, self.world_size = rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _indices(self) -> Tensor:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(self.n, generator=g)
            # Training shards must be equal, or ranks would wait on each other's gradients.
            order = order[: self.n - self.n % self.world_size]
        else:
            order = torch.arange(self.n)  # evaluation: every sample exactly once over all ranks
        return order[self.rank :: self.world_size]

    def __len__(self) -> int:
        return -(-len(self._indices()) // self.batch_size)

    def __iter__(self) -> Iterator[Tensor]:
        yield from self._indices().split(self.batch_size)


class InMemoryLoader:
    batch_sampler = None  # DataLoader's interface, as Lightning reads it (the sampler batches)

    def __init__(self, split: Split, sampler: EpochSampler) -> None:
        self.split, self.sampler = split, sampler

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        for idx in self.sampler:
            yield self.split.x[idx], self.split.y[idx]


def random_crop_flip(x: Tensor, pad: int = 4, generator: torch.Generator | None = None) -> Tensor:
    """Per-image random crop after zero padding, and random horizontal flip, for a whole batch."""
    b, c, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (b, 1), device=x.device, generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (b, 1), device=x.device, generator=generator)
    rows = (dy + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx + torch.arange(w, device=x.device))[:, None, None, :]
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    out = padded[batch, chan, rows, cols]
    flip = torch.rand(b, device=x.device, generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], out.flip(3), out)


def normalize(x: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    m = torch.tensor(mean, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, device=x.device).view(1, -1, 1, 1)
    return (x.float().div_(255) - m) / s
