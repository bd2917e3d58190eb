"""Feature-map shapes by the convolution arithmetic (Dumoulin & Visin 2016), worked out before
any layer is built (no torch needed), so an impossible combination fails at once, naming the layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from poolbench.errors import UserError


class ShapeError(UserError):
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
