"""Two layers poolbench has never heard of."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class PowerMean(nn.Module):
    """GeM with one learned exponent per channel: (mean of x^p_c over the window)^(1/p_c)."""

    def __init__(self, channels: int, kernel_size: int = 2, stride: int = 2, p: float = 3.0):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride  # poolbench shows the arithmetic
        self.p = nn.Parameter(torch.full((channels, 1, 1), float(p)))

    def forward(self, x: Tensor) -> Tensor:
        p = self.p.clamp_min(1.0)
        return F.avg_pool2d(x.clamp_min(1e-6).pow(p), self.kernel_size, self.stride).pow(1 / p)


class AttentionHead(nn.Module):
    """Attention pooling: a 1x1 conv scores every position, softmax over positions, and the
    scores weight the last map's vectors into one C-vector."""

    def __init__(self, channels: int, temperature: float = 1.0):
        super().__init__()
        self.score = nn.Conv2d(channels, 1, 1)
        self.temperature = temperature

    def forward(self, feats: list[Tensor]) -> Tensor:
        x = feats[-1]
        weights = torch.softmax(self.score(x).flatten(1) / self.temperature, dim=1)
        return torch.einsum("bn,bcn->bc", weights, x.flatten(2))
