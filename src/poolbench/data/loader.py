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
    """Per-image random crop after zero padding, and random horizontal flip, for a whole batch.

    One gather: each output pixel's source index in the padded image, with the shift and the
    mirror folded into the index, so the batch is read once whatever the padding.
    """
    b, c, h, w = x.shape
    dev = x.device
    dy, dx = torch.randint(0, 2 * pad + 1, (2, b, 1), device=dev, generator=generator)
    flip = torch.rand(b, 1, device=dev, generator=generator) < 0.5
    cols = torch.arange(w, device=dev).expand(b, w)
    cols = torch.where(flip, w - 1 - cols, cols) + dx  # (b, w)
    rows = torch.arange(h, device=dev).expand(b, h) + dy  # (b, h)
    index = (rows[:, :, None] * (w + 2 * pad) + cols[:, None, :]).view(b, 1, h * w)
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad)).flatten(2)
    return padded.gather(2, index.expand(b, c, h * w)).view(b, c, h, w)


def normalize(x: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """uint8 -> float, (x/255 - mean) / std in one multiply-add."""
    scale = torch.tensor([1 / (255 * s) for s in std], device=x.device).view(1, -1, 1, 1)
    shift = torch.tensor([-m / s for m, s in zip(mean, std, strict=True)], device=x.device)
    return torch.addcmul(shift.view(1, -1, 1, 1), x.float(), scale)
