"""A data source poolbench has never heard of: horizontal vs vertical stripes, generated."""

from __future__ import annotations

from typing import Any

import torch

from poolbench.data.tensors import ImageSet, Split


class Stripes:
    """Two classes: stripes across (0) or down (1), at a random phase and period."""

    def classes(self, cfg: Any) -> list[str]:
        return ["across", "down"]

    def prepare(self, cfg: Any) -> None:
        pass

    def cache_key(self, cfg: Any) -> dict[str, Any]:
        return {"n": cfg.n, "image_size": cfg.image_size, "version": 1}

    def load(self, cfg: Any) -> ImageSet:
        def split(n: int, seed: int) -> Split:
            g = torch.Generator().manual_seed(seed)
            y = torch.arange(n) % 2
            period = torch.randint(3, 7, (n, 1, 1), generator=g).float()
            phase = torch.rand(n, 1, 1, generator=g) * period
            t = torch.arange(cfg.image_size).float()
            rows = ((t[None, :, None] + phase) // period % 2).expand(n, -1, cfg.image_size)
            cols = ((t[None, None, :] + phase) // period % 2).expand(n, cfg.image_size, -1)
            img = torch.where(y[:, None, None] == 0, rows, cols)
            return Split((img[:, None].expand(-1, 3, -1, -1) * 255).to(torch.uint8), y)

        return ImageSet(
            train=split(cfg.n, 1), test=split(cfg.n // 4, 2), classes=["across", "down"]
        )
