"""A generated, learnable dataset for fast tests: class k is a grating at angle k·180°/n in
its own tint, with random phase, frequency jitter and pixel noise."""

from __future__ import annotations

import math
from typing import Any

import torch

from poolbench.data.tensors import ImageSet, Split


def classes(cfg: Any) -> list[str]:
    return [f"class{k}" for k in range(cfg.num_classes)]


def prepare(cfg: Any) -> None:
    pass


def cache_key(cfg: Any) -> dict[str, Any]:
    keys = ("num_classes", "n_train", "n_test", "noise", "image_size")
    return {k: cfg[k] for k in keys} | {"version": 1}


def make_split(n: int, num_classes: int, size: int, noise: float, seed: int) -> Split:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % num_classes
    y = y[torch.randperm(n, generator=g)]
    angle = (y.float() / num_classes * math.pi)[:, None, None]
    freq = (3 + torch.rand(n, generator=g))[:, None, None] / size
    phase = (torch.rand(n, generator=g) * 2 * math.pi)[:, None, None]
    coords = torch.arange(size).float()
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    wave = torch.sin(2 * math.pi * freq * (xx * angle.cos() + yy * angle.sin()) + phase)
    hue = torch.linspace(0, 2 * math.pi, num_classes + 1)[:num_classes]
    tint = torch.stack([hue.cos(), (hue + 2.1).cos(), (hue + 4.2).cos()], 1)[y]  # (n, 3)
    img = 0.5 + 0.3 * wave[:, None] * (0.6 + 0.4 * tint[:, :, None, None])
    img = img + noise * torch.randn(img.shape, generator=g)
    return Split((img.clamp(0, 1) * 255).round().to(torch.uint8), y)


def load(cfg: Any) -> ImageSet:
    return ImageSet(
        train=make_split(cfg.n_train, cfg.num_classes, cfg.image_size, cfg.noise, seed=1),
        test=make_split(cfg.n_test, cfg.num_classes, cfg.image_size, cfg.noise, seed=2),
        classes=classes(cfg),
    )
