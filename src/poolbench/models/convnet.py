"""The lecture's ConvNet, assembled from conv blocks, a pool choice and a head choice."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from poolbench.models.heads import make_head
from poolbench.models.pooling import make_pool
from poolbench.models.shapes import ShapeError, block_shapes, plan_backbone

__all__ = ["ConvNet", "ShapeError", "build_convnet"]


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


def layer_table(net: ConvNet) -> list[dict[str, Any]]:
    """Every layer: input and output shape, the arithmetic behind it, parameters, FLOPs/image."""
    flops = net.flops_by_module()
    modules = dict(net.named_modules())

    def own(name: str) -> tuple[int, int]:
        params = sum(p.numel() for p in modules[name].parameters()) if name in modules else 0
        return params, flops.get(f"ConvNet.{name}", 0)

    rows = []
    for r in net.plan:
        params, f = own(r.name)
        rows.append(
            {
                "layer": r.name,
                "kind": r.kind,
                "in": r.in_shape,
                "out": r.out_shape,
                "arithmetic": r.arithmetic,
                "params": params,
                "flops": f,
            }
        )
    last = net.plan[-1].out_shape
    params, f = own("head")
    rows.append(
        {
            "layer": "head",
            "kind": type(net.head).__name__,
            "in": last,
            "out": (net.embedding_dim,),
            "arithmetic": "",
            "params": params,
            "flops": f,
        }
    )
    width = net.embedding_dim
    for name, m in net.classifier.named_children():
        out = (m.out_features,) if isinstance(m, nn.Linear) else (width,)
        params, f = own(f"classifier.{name}")
        rows.append(
            {
                "layer": f"classifier.{name}",
                "kind": type(m).__name__,
                "in": (width,),
                "out": out,
                "arithmetic": "",
                "params": params,
                "flops": f,
            }
        )
        width = out[0]
    return rows
