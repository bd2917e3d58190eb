"""The lecture's ConvNet, assembled from conv blocks, a pool choice and a head choice.

Feature-map shapes are worked out with the convolution arithmetic (Dumoulin & Visin 2016)
before any layer is built, so an impossible combination fails at once, naming the layer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from poolbench.models.heads import make_head
from poolbench.models.pooling import make_pool


class ShapeError(ValueError):
    """A layer would produce an empty feature map."""


@dataclass(frozen=True)
class LayerShape:
    name: str  # module path inside ConvNet, e.g. "blocks.1.pool"
    kind: str
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    arithmetic: str  # the formula with the numbers filled in; "" where the size is unchanged


def conv_out(i: int, k: int, s: int, p: int) -> int:
    return (i + 2 * p - k) // s + 1


def plan_backbone(
    image_size: int,
    in_channels: int,
    channels: Sequence[int],
    kernel_size: int,
    pool: str,
    pool_kernel: int,
    pool_stride: int,
) -> list[LayerShape]:
    """Shapes of every backbone layer; raises ShapeError where a map vanishes."""
    rows: list[LayerShape] = []
    c, h, w = in_channels, image_size, image_size

    def step(name: str, kind: str, c_out: int, k: int, s: int, p: int) -> None:
        nonlocal c, h, w
        oh, ow = conv_out(h, k, s, p), conv_out(w, k, s, p)
        formula = f"o = ⌊({h} + 2·{p} − {k})/{s}⌋ + 1 = {oh}"
        if oh < 1 or ow < 1:
            raise ShapeError(
                f"{name} ({kind}, kernel {k}, stride {s}, padding {p}) turns a {c}x{h}x{w} map "
                f"into nothing ({formula}); lower pool.kernel_size / pool.stride or raise "
                "data.image_size"
            )
        rows.append(LayerShape(name, kind, (c, h, w), (c_out, oh, ow), formula))
        c, h, w = c_out, oh, ow

    for b, c_out in enumerate(channels):
        step(f"blocks.{b}.conv", "Conv2d", c_out, kernel_size, 1, kernel_size // 2)
        rows.append(LayerShape(f"blocks.{b}.act", "ReLU", (c, h, w), (c, h, w), ""))
        if pool == "none":
            rows.append(LayerShape(f"blocks.{b}.pool", "Identity", (c, h, w), (c, h, w), ""))
        else:
            kind = {"max": "MaxPool2d", "avg": "AvgPool2d", "stride": "Conv2d", "lp": "LPPool2d"}
            step(f"blocks.{b}.pool", kind.get(pool, pool), c, pool_kernel, pool_stride, 0)
    return rows


def block_shapes(rows: list[LayerShape]) -> list[tuple[int, int, int]]:
    return [r.out_shape for r in rows if r.name.endswith(".pool")]


def mlp(in_features: int, hidden: Sequence[int], num_classes: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_features, width), nn.ReLU(inplace=True)]
        in_features = width
    layers.append(nn.Linear(in_features, num_classes))
    return nn.Sequential(*layers)


class ConvNet(nn.Module):
    """blocks (conv → ReLU → pool) × len(channels) → head → MLP → logits."""

    def __init__(
        self,
        num_classes: int = 10,
        head: str = "global",
        pool: str = "max",
        channels: Sequence[int] = (16, 32),
        kernel_size: int = 5,
        hidden: Sequence[int] = (120, 84),
        in_channels: int = 3,
        image_size: int = 32,
        pool_kernel: int = 2,
        pool_stride: int = 2,
        pool_p: float = 2.0,
    ) -> None:
        super().__init__()
        self.plan = plan_backbone(
            image_size, in_channels, channels, kernel_size, pool, pool_kernel, pool_stride
        )
        self.input_shape = (in_channels, image_size, image_size)
        blocks, c_in = [], in_channels
        for c_out in channels:
            block = nn.Sequential()
            block.add_module("conv", nn.Conv2d(c_in, c_out, kernel_size, padding=kernel_size // 2))
            block.add_module("act", nn.ReLU(inplace=True))
            block.add_module("pool", make_pool(pool, c_out, pool_kernel, pool_stride, pool_p))
            blocks.append(block)
            c_in = c_out
        self.blocks = nn.ModuleList(blocks)
        self.head, width = make_head(head, block_shapes(self.plan), num_classes)
        self.embedding_dim = width
        # NIN's head already ends in one score per class: no MLP after it.
        self.classifier = nn.Identity() if head == "nin" else mlp(width, hidden, num_classes)

    def features(self, x: Tensor) -> list[Tensor]:
        feats = []
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        return feats

    def embed(self, x: Tensor) -> Tensor:
        """The vector the head hands to the classifier MLP (the lecture's embedding)."""
        return self.head(self.features(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.embed(x))

    def param_counts(self) -> dict[str, int]:
        def n(params: Any) -> int:
            return sum(p.numel() for p in params)

        convs = [b.conv for b in self.blocks]
        pools = [b.pool for b in self.blocks]
        return {
            "total": n(self.parameters()),
            "trainable": n(p for p in self.parameters() if p.requires_grad),
            "backbone": n(p for m in convs for p in m.parameters()),
            "downsample": n(p for m in pools for p in m.parameters()),
            "head": n(self.head.parameters()) + n(self.classifier.parameters()),
        }

    def flops_per_image(self) -> int:
        """Forward FLOPs for one image, as counted by torch's FlopCounterMode (convs, matmuls)."""
        return self.flops_by_module()["Global"]

    def flops_by_module(self) -> dict[str, int]:
        """FLOPs per module path ('Global' is the whole forward)."""
        from torch.utils.flop_counter import FlopCounterMode

        x = torch.zeros(1, *self.input_shape, device=next(self.parameters()).device)
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            self(x)
        return {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}


def build_convnet(
    model: Mapping[str, Any],
    head: Mapping[str, Any],
    pool: Mapping[str, Any],
    num_classes: int,
    image_size: int,
    in_channels: int = 3,
) -> ConvNet:
    """Build from the `model`, `head` and `pool` config nodes."""
    return ConvNet(
        num_classes=num_classes,
        head=head["name"],
        pool=pool["name"],
        channels=tuple(model["channels"]),
        kernel_size=model["kernel_size"],
        hidden=tuple(model["hidden"]),
        in_channels=in_channels,
        image_size=image_size,
        pool_kernel=pool.get("kernel_size", 2),
        pool_stride=pool.get("stride", 2),
        pool_p=pool.get("p", 2.0),
    )
