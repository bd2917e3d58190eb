from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F


def resize_uint8(x: Tensor, size: int) -> Tensor:
    """Resize a (N, C, H, W) uint8 batch to size x size (antialiased bilinear)."""
    if x.shape[-2:] == (size, size):
        return x
    chunks = [
        F.interpolate(c.float(), size=(size, size), mode="bilinear", antialias=True)
        .round()
        .clamp(0, 255)
        .to(torch.uint8)
        for c in x.split(2048)
    ]
    return torch.cat(chunks)
