"""Feature-map shapes, layer by layer, as the network is built: a dry forward of one zero image
through each new layer gives its output, and where the layer states its kernel, stride and
padding the convolution arithmetic (Dumoulin & Visin 2016) is written out with the numbers. A
layer that would leave an empty map fails at once, naming the layer and the sum."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from poolbench.errors import ShapeError

FIX = "lower pool.kernel_size / pool.stride or raise data.image_size"


@dataclass(frozen=True)
class LayerShape:
    name: str  # module path inside ConvNet, e.g. "blocks.1.pool"
    kind: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    arithmetic: str  # the formula with the numbers filled in; "" where the layer states none


def conv_out(i: int, k: int, s: int, p: int) -> int:
    return (i + 2 * p - k) // s + 1


def _first(value: object) -> object:
    return value[0] if isinstance(value, tuple | list) else value


def window(module: nn.Module) -> tuple[int, int, int] | None:
    """(kernel, stride, padding) of a layer that slides a square window by the textbook rule
    (conv, max/avg/Lp pooling, GeM, …): read from its attributes; None for any other layer."""
    k, s = _first(getattr(module, "kernel_size", None)), _first(getattr(module, "stride", None))
    p = _first(getattr(module, "padding", 0))
    plain = _first(getattr(module, "dilation", 1)) == 1 and not getattr(module, "ceil_mode", False)
    if not plain or not all(isinstance(v, int) and not isinstance(v, bool) for v in (k, s, p)):
        return None
    return k, s, p


def describe(name: str, module: nn.Module) -> str:
    w = window(module)
    kind = type(module).__name__
    return (
        f"{name} ({kind}, kernel {w[0]}, stride {w[1]}, padding {w[2]})"
        if w
        else f"{name} ({kind})"
    )


def shape_str(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


@torch.no_grad()
def trace(name: str, module: nn.Module, x: Tensor) -> tuple[Tensor, LayerShape]:
    """Run `module` on `x` (one image, no gradients, eval mode); its output and its row."""
    c, h, w = x.shape[1:]
    formula = ""
    if win := window(module):
        k, s, p = win
        oh = conv_out(h, k, s, p)
        formula = f"o = ⌊({h} + 2·{p} − {k})/{s}⌋ + 1 = {oh}"
        if oh < 1 or conv_out(w, k, s, p) < 1:
            raise ShapeError(
                f"{describe(name, module)} turns a {c}x{h}x{w} map into nothing ({formula}); {FIX}"
            )
    was_training = module.training
    module.eval()  # a batch of one zero image must not move BatchNorm statistics
    try:
        y = module(x)
    except RuntimeError as err:
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ShapeError(
            f"{describe(name, module)} cannot take a {c}x{h}x{w} map ({detail}); {FIX}"
        ) from None
    finally:
        module.train(was_training)
    if y.numel() == 0:
        raise ShapeError(
            f"{describe(name, module)} turns a {c}x{h}x{w} map into nothing "
            f"({shape_str(tuple(y.shape[1:]))}); {FIX}"
        )
    if win and tuple(y.shape[2:]) != (oh, conv_out(w, *win)):
        formula = ""  # the layer's attributes do not follow the textbook rule: show no sum
    row = LayerShape(name, type(module).__name__, (c, h, w), tuple(y.shape[1:]), formula)
    return y, row


def block_shapes(rows: list[LayerShape]) -> list[tuple[int, ...]]:
    return [r.out_shape for r in rows if r.name.endswith(".pool")]
