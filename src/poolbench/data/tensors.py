"""Decoded images as uint8 tensors, and the on-disk cache that makes them load in a blink."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from poolbench.files import atomic_write


@dataclass
class Split:
    x: Tensor  # (N, 3, H, W) uint8
    y: Tensor  # (N,) int64

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, idx: Tensor) -> Split:
        return Split(self.x[idx], self.y[idx])


@dataclass
class ImageSet:
    """A whole dataset: train, test, an optional fixed val split, class names, channel stats."""

    train: Split
    test: Split
    classes: list[str]
    val: Split | None = None
    stats: tuple[list[float], list[float]] | None = None  # per-channel (mean, std) of train

    def channel_stats(self) -> tuple[list[float], list[float]]:
        """Per-channel mean and std of the training images, in [0, 1] units."""
        x = self.train.x
        total = torch.zeros(3, dtype=torch.float64)
        total_sq = torch.zeros(3, dtype=torch.float64)
        for i in range(0, len(x), 4096):  # chunks keep the float copy small
            chunk = x[i : i + 4096].double() / 255
            total += chunk.sum((0, 2, 3))
            total_sq += chunk.square().sum((0, 2, 3))
        n = x.shape[0] * x.shape[2] * x.shape[3]
        mean = total / n
        std = (total_sq / n - mean.square()).clamp_min(1e-12).sqrt()
        return mean.tolist(), std.tolist()

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"classes": self.classes, "stats": self.stats}
        for name in ("train", "val", "test"):
            split = getattr(self, name)
            if split is not None:
                d[name] = {"x": split.x.contiguous(), "y": split.y.contiguous()}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImageSet:
        splits = {k: Split(d[k]["x"], d[k]["y"]) for k in ("train", "val", "test") if k in d}
        stats = d.get("stats")
        return cls(classes=list(d["classes"]), stats=tuple(stats) if stats else None, **splits)


def cache_path(cache_dir: str | Path, source: str, key: dict[str, Any]) -> Path:
    digest = hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
    return Path(cache_dir) / f"{source}-{digest[:16]}.pt"


def load_or_build(path: Path, build: Callable[[], ImageSet]) -> ImageSet:
    if path.exists():
        return ImageSet.from_dict(torch.load(path, weights_only=True))
    images = build()
    images.stats = images.channel_stats()
    atomic_write(path, lambda p: torch.save(images.to_dict(), p))
    return images
