"""Heads turn the last feature map(s) into one vector per image: the `head` config group.

Every head takes the list of feature maps, one per conv block, so that heads which look at
more than the last block (hypercolumn) fit the same interface.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

HEADS = ("flatten", "global", "avg", "max", "nin", "hypercolumn")


def adaptive_pool(x: Tensor, mode: str) -> Tensor:
    """Global pooling to one value per channel; 'avgmax' concatenates avg ‖ max (2C features)."""
    if mode == "avg":
        return F.adaptive_avg_pool2d(x, 1).flatten(1)
    if mode == "max":
        return F.adaptive_max_pool2d(x, 1).flatten(1)
    if mode == "avgmax":
        return torch.cat([adaptive_pool(x, "avg"), adaptive_pool(x, "max")], dim=1)
    raise ValueError(f"unknown global pooling mode {mode!r}")


class FlattenHead(nn.Module):
    def forward(self, feats: list[Tensor]) -> Tensor:
        return feats[-1].flatten(1)


class GlobalPoolHead(nn.Module):
    """The lecture's GlobalPooling (mode='avgmax'), or plain global avg / max."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode

    def forward(self, feats: list[Tensor]) -> Tensor:
        return adaptive_pool(feats[-1], self.mode)

    def extra_repr(self) -> str:
        return f"mode={self.mode}"


class HypercolumnHead(nn.Module):
    """Hariharan et al. 2015: global avg ‖ max of every block's maps, concatenated."""

    def forward(self, feats: list[Tensor]) -> Tensor:
        return torch.cat([adaptive_pool(f, "avgmax") for f in feats], dim=1)


class NINHead(nn.Module):
    """Network-in-Network: a 1x1 conv to one map per class, then global average pooling."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, num_classes, 1)

    def forward(self, feats: list[Tensor]) -> Tensor:
        return adaptive_pool(self.conv(feats[-1]), "avg")


def make_head(
    name: str, block_shapes: list[tuple[int, int, int]], num_classes: int
) -> tuple[nn.Module, int]:
    """Build a head for feature maps of the given (C, H, W) shapes; return it and its width."""
    c, h, w = block_shapes[-1]
    if name == "flatten":
        return FlattenHead(), c * h * w
    if name == "global":
        return GlobalPoolHead("avgmax"), 2 * c
    if name in ("avg", "max"):
        return GlobalPoolHead(name), c
    if name == "nin":
        return NINHead(c, num_classes), num_classes
    if name == "hypercolumn":
        return HypercolumnHead(), sum(2 * s[0] for s in block_shapes)
    raise ValueError(f"unknown head {name!r}; choose one of {', '.join(HEADS)}")
