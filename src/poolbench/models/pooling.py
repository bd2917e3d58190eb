"""The downsampling layer after each conv block: the `pool` config group."""

from __future__ import annotations

from torch import nn

POOLS = ("max", "avg", "stride", "lp", "none")


def make_pool(
    name: str, channels: int, kernel_size: int = 2, stride: int = 2, p: float = 2.0
) -> nn.Module:
    if name == "max":
        return nn.MaxPool2d(kernel_size, stride)
    if name == "avg":
        return nn.AvgPool2d(kernel_size, stride)
    if name == "stride":
        # The lecture's alternative: a learned downsampling, paid for in parameters.
        return nn.Conv2d(channels, channels, kernel_size, stride)
    if name == "lp":
        return nn.LPPool2d(p, kernel_size, stride)
    if name == "none":
        return nn.Identity()
    raise ValueError(f"unknown pool {name!r}; choose one of {', '.join(POOLS)}")
