"""The lecture's ConvNet, assembled from conv blocks, a pool choice and a head choice."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from poolbench.errors import ShapeError
from poolbench.models.factory import LayerSpec, make_layer
from poolbench.models.shapes import LayerShape, block_shapes, trace

__all__ = ["ConvNet", "ShapeError", "build_convnet"]


def mlp(in_features: int, hidden: Sequence[int], num_classes: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_features, width), nn.ReLU(inplace=True)]
        in_features = width
    layers.append(nn.Linear(in_features, num_classes))
    return nn.Sequential(*layers)


class ConvNet(nn.Module):
    """blocks (conv → ReLU → pool) × len(channels) → head → MLP → logits.

    `pool` and `head` are config nodes (`_target_` and keywords) or callables; each layer is
    built, then run once on a zero image, so every width comes from the modules themselves
    and a map that vanishes stops the build at that layer (`plan` keeps every layer's shapes).
    """

    def __init__(
        self,
        pool: LayerSpec,
        head: LayerSpec,
        num_classes: int = 10,
        channels: Sequence[int] = (16, 32),
        kernel_size: int = 5,
        hidden: Sequence[int] = (120, 84),
        in_channels: int = 3,
        image_size: int = 32,
        padding_mode: str = "zeros",
    ) -> None:
        super().__init__()
        self.input_shape = (in_channels, image_size, image_size)
        self.plan: list[LayerShape] = []
        x = torch.zeros(1, *self.input_shape)
        blocks, feats = [], []
        for b, c_out in enumerate(channels):
            block = nn.Sequential()
            conv = nn.Conv2d(
                x.shape[1], c_out, kernel_size, padding=kernel_size // 2, padding_mode=padding_mode
            )
            block.add_module("conv", conv)
            block.add_module("act", nn.ReLU(inplace=True))
            # padding_mode goes to pools that pad (pool=aps): circular padding end to end
            offered = {"channels": c_out, "in_channels": c_out, "out_channels": c_out}
            block.add_module("pool", make_layer("pool", pool, padding_mode=padding_mode, **offered))
            for name, layer in block.named_children():
                x, row = trace(f"blocks.{b}.{name}", layer, x)
                self.plan.append(row)
            blocks.append(block)
            feats.append(x)
        self.blocks = nn.ModuleList(blocks)
        shapes = [tuple(s) for s in block_shapes(self.plan)]
        self.head = make_layer(
            "head",
            head,
            shapes=shapes,
            channels=shapes[-1][0],
            in_channels=shapes[-1][0],
            num_classes=num_classes,
        )
        self.head.eval()  # a dry forward: one zero image must not move BatchNorm statistics
        try:
            with torch.no_grad():
                out = self.head(feats)
        except RuntimeError as err:
            raise ShapeError(
                f"head ({type(self.head).__name__}) cannot take maps of shapes "
                f"{', '.join('x'.join(map(str, s)) for s in shapes)}: "
                f"{str(err).strip().splitlines()[0] if str(err).strip() else 'RuntimeError'}"
            ) from None
        finally:
            self.head.train()
        if out.dim() != 2:
            raise ShapeError(
                f"head ({type(self.head).__name__}) gives a {tuple(out.shape[1:])} output per "
                "image; a head must give one vector per image"
            )
        self.embedding_dim = int(out.shape[1])
        # A head that already ends in one score per class (NIN) needs no MLP after it.
        self.ends_in_scores = bool(getattr(self.head, "ends_in_scores", False))
        if self.ends_in_scores and self.embedding_dim != num_classes:
            raise ShapeError(
                f"head ({type(self.head).__name__}) says it ends in class scores but gives "
                f"{self.embedding_dim} values for {num_classes} classes"
            )
        self.classifier = (
            nn.Identity() if self.ends_in_scores else mlp(self.embedding_dim, hidden, num_classes)
        )

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

        weight = next(self.parameters())  # the input in the weights' dtype: a 64-true net too
        x = torch.zeros(1, *self.input_shape, device=weight.device, dtype=weight.dtype)
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            self(x)
        return {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}


def build_convnet(
    model: Mapping[str, Any],
    head: LayerSpec,
    pool: LayerSpec,
    num_classes: int,
    image_size: int,
    in_channels: int = 3,
) -> ConvNet:
    """Build from the `model`, `head` and `pool` config nodes."""
    return ConvNet(
        pool=pool,
        head=head,
        num_classes=num_classes,
        channels=tuple(model["channels"]),
        kernel_size=model["kernel_size"],
        hidden=tuple(model["hidden"]),
        in_channels=in_channels,
        image_size=image_size,
        padding_mode=model.get("padding_mode", "zeros"),  # older checkpoints: PyTorch's default
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
