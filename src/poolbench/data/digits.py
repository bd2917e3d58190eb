"""scikit-learn's bundled handwritten digits (1,797 8x8 images): real data with no network."""

from __future__ import annotations

from typing import Any

import torch

from poolbench.data.resize import resize_uint8
from poolbench.data.tensors import ImageSet, Split

CLASSES = [str(d) for d in range(10)]
TEST_FRACTION = 0.2  # the digits ship without a test split: a fixed, seeded one is made


def classes(cfg: Any) -> list[str]:
    return list(CLASSES)


def prepare(cfg: Any) -> None:
    pass


def cache_key(cfg: Any) -> dict[str, Any]:
    return {"size": cfg.image_size}


def load(cfg: Any) -> ImageSet:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32) * (255 / 16)  # values are 0..16
    x = x.round().to(torch.uint8)[:, None].expand(-1, 3, -1, -1)
    x = resize_uint8(x.contiguous(), cfg.image_size)
    y = torch.tensor(digits.target, dtype=torch.long)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    n_test = int(len(y) * TEST_FRACTION)
    whole = Split(x, y)
    return ImageSet(
        train=whole.subset(perm[n_test:]), test=whole.subset(perm[:n_test]), classes=list(CLASSES)
    )
