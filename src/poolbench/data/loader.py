"""The in-memory loader (after airbench): a split's uint8 images live on the training device, and
each batch of random crops, flips and normalization is two whole-batch ops, not work per image."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import Tensor

from poolbench.errors import ConfigError


def stack_mismatch(saved: int, now: int) -> str:
    return (
        f"the checkpoint was saved inside an epoch by a run taking {saved} batch(es) per "
        f"training step, this run takes {now}: resume it with the same fast.enabled and "
        "fast.stack, or from a checkpoint at an epoch's end"
    )


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

    def indices(self) -> Tensor:
        """This rank's samples for the current epoch, in order."""
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(self.n, generator=g)
            # Training shards must be equal, or ranks would wait on each other's gradients.
            order = order[: self.n - self.n % self.world_size]
        else:
            order = torch.arange(self.n)  # evaluation: every sample exactly once over all ranks
        return order[self.rank :: self.world_size]

    def count(self) -> int:
        """Samples this rank sees per epoch (len of `indices`, without drawing them)."""
        n = self.n - self.n % self.world_size if self.shuffle else self.n
        return len(range(self.rank, n, self.world_size))

    def __len__(self) -> int:
        return -(-self.count() // self.batch_size)

    def __iter__(self) -> Iterator[Tensor]:
        yield from self.indices().split(self.batch_size)


class ImageStore:
    """A split's images as NHWC uint8, zero-padded for cropping and with a mirrored copy for
    flipping, so that any batch of crops and flips is a single `index_select` of image rows.

    Every run of `w` pixels in the flat store is a row of `rows`; a cropped image row is one of
    them, in the plain or the mirrored copy. Padding and mirroring cost memory (CIFAR-10's train
    split: 175 MB each), so only an augmented split has them.
    """

    def __init__(
        self, x: Tensor, pad: int = 0, mirror: bool = False, device: torch.device | None = None
    ) -> None:
        n, c, h, w = x.shape
        hp, wp = h + 2 * pad, w + 2 * pad
        # Filled in place: building it from pad/flip/cat would briefly need three times the memory.
        self.data = torch.zeros((n * (1 + mirror), hp, wp, c), dtype=x.dtype, device=device)
        self.data[:n, pad : pad + h, pad : pad + w] = x.permute(0, 2, 3, 1)
        if mirror:
            rev = torch.arange(wp - 1, -1, -1, device=self.data.device)
            torch.index_select(self.data[:n], 2, rev, out=self.data[n:])
        self.n, self.shape, self.pad, self.mirror = n, (h, w, c), pad, mirror
        flat = self.data.view(-1)
        self.rows = flat.as_strided((flat.numel() // c - w + 1, w * c), (c, 1))
        self.device = self.data.device

    def starts(self, idx: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """(len(idx), h) positions in `rows` of each image's rows: random crops and flips when
        the store is padded or mirrored, the image itself otherwise."""
        h, w, _ = self.shape
        hp, wp = h + 2 * self.pad, w + 2 * self.pad
        b, dev, p = len(idx), self.device, self.pad
        idx = idx.to(dev)
        dy = torch.randint(0, 2 * p + 1, (b, 1), device=dev, generator=generator) if p else p
        dx = torch.randint(0, 2 * p + 1, (b, 1), device=dev, generator=generator) if p else p
        if self.mirror:  # a random crop of the mirror image is the mirror of a random crop
            idx = idx + self.n * torch.randint(0, 2, (b,), device=dev, generator=generator)
        rows = torch.arange(h, device=dev)
        return idx[:, None] * (hp * wp) + (rows + dy) * wp + dx

    def gather(self, starts: Tensor) -> Tensor:
        """The (b, h, w, c) uint8 images whose rows start at `starts`."""
        return self.rows.index_select(0, starts.view(-1)).view(len(starts), *self.shape)


class Normalizer:
    """uint8 NHWC -> float (x/255 - mean) / std, as an NCHW view in channels_last layout.

    Scale and shift are stored at full image size: broadcasting them over the innermost 3
    channels alone runs several times slower on CPU.
    """

    def __init__(
        self,
        mean: Sequence[float],
        std: Sequence[float],
        size: tuple[int, int],
        device: torch.device | None = None,
    ) -> None:
        scale = torch.tensor([1 / (255 * s) for s in std], device=device)
        shift = torch.tensor([-m / s for m, s in zip(mean, std, strict=True)], device=device)
        self.scale = scale.expand(*size, len(std)).contiguous()
        self.shift = shift.expand(*size, len(std)).contiguous()

    def __call__(self, x: Tensor) -> Tensor:
        return torch.addcmul(self.shift, x.float(), self.scale).permute(0, 3, 1, 2)


class InMemoryLoader:
    batch_sampler = None  # DataLoader's interface, as Lightning reads it (the sampler batches)

    def __init__(
        self,
        store: ImageStore,
        labels: Tensor,
        sampler: EpochSampler,
        normalize: Normalizer,
        seed: int = 0,
        channels_last: bool = True,
        device: torch.device | None = None,
        stack: int = 1,
        max_batches: int | None = None,
    ) -> None:
        self.store, self.sampler, self.normalize = store, sampler, normalize
        self.labels = labels.to(store.device)
        self.seed, self.channels_last = seed, channels_last
        self.device = device or store.device
        self._gen = torch.Generator(device=store.device)
        # stack > 1: items are (k, b, c, h, w) stacks of k full batches (the fast path's several
        # optimizer steps per training_step); the epoch's short last batch comes alone, (1, r, ...).
        self.stack, self.max_batches = stack, max_batches
        self._position = (0, 0)  # (epoch, images trained on in it): what checkpoints save
        self._resume: dict[str, int] | None = None  # a checkpoint's place, until iterated

    def batches(self) -> int:
        """Batches (optimizer steps, in training) per epoch, whatever the stacking."""
        n = len(self.sampler)
        return n if self.max_batches is None else min(n, self.max_batches)

    def __len__(self) -> int:
        if self.stack == 1:
            return self.batches()
        full, short = divmod(self._images(), self.sampler.batch_size)
        return -(-full // self.stack) + (short > 0)

    def _images(self) -> int:
        return min(self.sampler.count(), self.batches() * self.sampler.batch_size)

    def _generator(self) -> torch.Generator:
        """Augmentation seeded per (seed, epoch, rank): a resumed run sees exactly the crops
        and flips an uninterrupted run would have seen."""
        s = self.sampler
        return self._gen.manual_seed((self.seed * 1_000_003 + s.epoch) * 1_009 + s.rank)

    def state_dict(self) -> dict[str, int]:
        """The epoch and how many of its images were trained on. Lightning saves this in
        checkpoints and hands it back on resuming (PoolNetModule.on_train_start), so a run
        resumed inside an epoch (interrupted.ckpt) goes on with that epoch's next batch."""
        if self._resume is not None:  # resumed, not iterated yet: the checkpoint's place holds
            return dict(self._resume)
        epoch, images = self._position
        return {"epoch": epoch, "images": images, "stack": self.stack}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resume = dict(state)

    def trained(self, images: int) -> None:
        """A training step has finished on `images` of this epoch's (PoolNetModule calls it).
        Counted here, not when handed out: a step stopped by an exception (Ctrl-C) has not
        trained, and a stack cut by max_steps trained only part of its batches."""
        epoch, done = self._position
        self._position = (epoch, done + images)

    def _resumed_images(self, epoch: int) -> int:
        """Images of `epoch` trained on before the checkpoint this run resumed from."""
        state = self._resume
        if state is None or state["epoch"] != epoch:
            self._resume = None
            return 0
        if state["stack"] != self.stack and state["images"] < self._images():
            # Lightning counts the epoch's finished items, stacks or batches, and would end
            # the resumed epoch at the wrong one. The checkpoint's place stays for the next try.
            raise ConfigError(stack_mismatch(state["stack"], self.stack))
        self._resume = None
        return state["images"]

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        epoch = self.sampler.epoch
        skip = self._resumed_images(epoch)
        self._position = (epoch, skip)
        order = self.sampler.indices().to(self.store.device)
        # Crops and flips drawn for the whole epoch, then cut: stacking (or resuming) changes no
        # image.
        starts = self.store.starts(order, self._generator())[skip : self._images()]
        labels = self.labels[order[skip : self._images()]]
        yield from self._items(starts, labels)

    def _items(self, starts: Tensor, labels: Tensor) -> Iterator[tuple[Tensor, Tensor]]:
        bs = self.sampler.batch_size
        if self.stack == 1:
            for i in range(0, len(starts), bs):
                yield self._batch(starts[i : i + bs], labels[i : i + bs])
            return
        full = len(starts) - len(starts) % bs
        for i in range(0, full, bs * self.stack):
            end = min(i + bs * self.stack, full)
            x, y = self._batch(starts[i:end], labels[i:end])
            yield x.unflatten(0, (-1, bs)), y.view(-1, bs)
        if full < len(starts):
            x, y = self._batch(starts[full:], labels[full:])
            yield x[None], y[None]

    def _batch(self, starts: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        x = self.normalize(self.store.gather(starts).to(self.device, non_blocking=True))
        return (x if self.channels_last else x.contiguous()), labels.to(self.device)
