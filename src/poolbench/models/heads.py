"""Heads turn the feature maps into one vector per image: the `head` config group.

Any module works as a head: conf/head/<name>.yaml names its class (`_target_`) and keyword
arguments, and poolbench adds what the class takes of `shapes` (every block's (C, H, W)),
`channels` (the last block's C) and `num_classes` (models/factory.py). Every head's forward
takes the list of feature maps, one per conv block, so that heads which look at more than the
last block (hypercolumn) fit the same interface. Its width is read from a dry forward.

A head whose output already is one score per class sets `ends_in_scores = True`: no MLP follows.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from poolbench.models.pooling import gem

# timm's names (layers/adaptive_avgmax_pool.py): catavgmax concatenates avg ‖ max; poolbench
# called that "avgmax" until 2026-12, which in timm is their average. Old checkpoints are
# upgraded (config.upgrade_node); a new "avgmax" is refused rather than silently reinterpreted.
MODES = ("avg", "max", "catavgmax")


def adaptive_pool(x: Tensor, mode: str) -> Tensor:
    """Global pooling to one value per channel; 'catavgmax' concatenates avg ‖ max (2C
    features, the lecture's GlobalPooling: average first)."""
    if mode == "avg":
        return F.adaptive_avg_pool2d(x, 1).flatten(1)
    if mode == "max":
        return F.adaptive_max_pool2d(x, 1).flatten(1)
    if mode == "catavgmax":
        return torch.cat([adaptive_pool(x, "avg"), adaptive_pool(x, "max")], dim=1)
    if mode == "avgmax":
        raise ValueError(
            "head.mode=avgmax was renamed head.mode=catavgmax (avg ‖ max, timm's name; "
            "timm's avgmax is their average)"
        )
    raise ValueError(f"unknown global pooling mode {mode!r}; choose one of {', '.join(MODES)}")


class FlattenHead(nn.Module):
    def forward(self, feats: list[Tensor]) -> Tensor:
        return feats[-1].flatten(1)


class GlobalPoolHead(nn.Module):
    """The lecture's GlobalPooling (mode='catavgmax'), or plain global avg / max."""

    def __init__(self, mode: str = "catavgmax") -> None:
        super().__init__()
        adaptive_pool(torch.zeros(1, 1, 1, 1), mode)  # an unknown mode fails here, not mid-run
        self.mode = mode

    def forward(self, feats: list[Tensor]) -> Tensor:
        return adaptive_pool(feats[-1], self.mode)

    def extra_repr(self) -> str:
        return f"mode={self.mode}"


class HypercolumnHead(nn.Module):
    """Hariharan et al. 2015: global avg ‖ max of every block's maps, concatenated."""

    def forward(self, feats: list[Tensor]) -> Tensor:
        return torch.cat([adaptive_pool(f, "catavgmax") for f in feats], dim=1)


class NINHead(nn.Module):
    """Network-in-Network (Lin, Chen & Yan 2014): a 1x1 conv to one map per class, then global
    average pooling; its output is the class scores."""

    ends_in_scores = True

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, num_classes, 1)

    def forward(self, feats: list[Tensor]) -> Tensor:
        return adaptive_pool(self.conv(feats[-1]), "avg")


class GeMHead(nn.Module):
    """Global generalized-mean pooling with a learnable exponent (Radenović, Tolias & Chum
    2018): C features, (mean of x^p over the whole map)^(1/p); one parameter."""

    def __init__(self, p: float = 3.0, eps: float = 1e-6) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.tensor(float(p)))
        self.eps = eps

    def forward(self, feats: list[Tensor]) -> Tensor:
        return gem(feats[-1], self.p, self.eps).flatten(1)

    def extra_repr(self) -> str:
        return f"p={self.p.item():.3g}"
