"""Downsampling layers beyond torch.nn's, for the `pool` config group.

Any module works as a pool: conf/pool/<name>.yaml names its class (`_target_`) and keyword
arguments, and poolbench adds `channels` (or `in_channels` and `out_channels`) where the class
takes them (models/factory.py). torch.nn.MaxPool2d, AvgPool2d, LPPool2d and Conv2d are used as
they are; the classes here are the pooling family's later members.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def gem(
    x: Tensor, p: Tensor, eps: float, kernel_size: int | None = None, stride: int | None = None
) -> Tensor:
    """(mean of x^p over each window)^(1/p); kernel_size None: over the whole map (the GeM
    head). x is clamped to eps first (0^p has no useful gradient in p) and p to at least 1
    (below 1 the mean is no longer a pooling of the window)."""
    p = p.clamp_min(1.0)
    x = x.clamp_min(eps).pow(p)
    pooled = (
        F.adaptive_avg_pool2d(x, 1) if kernel_size is None else F.avg_pool2d(x, kernel_size, stride)
    )
    return pooled.pow(1.0 / p)


class GeM(nn.Module):
    """Generalized-mean pooling with a learnable exponent (Radenović, Tolias & Chum 2018,
    "Fine-tuning CNN Image Retrieval with No Human Annotation"): (mean of x^p over the
    window)^(1/p).
    p = 1 is average pooling, p -> inf approaches max pooling; the net learns where to sit
    between them, for one parameter per layer."""

    def __init__(
        self, kernel_size: int = 2, stride: int | None = None, p: float = 3.0, eps: float = 1e-6
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride or kernel_size
        self.p = nn.Parameter(torch.tensor(float(p)))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        return gem(x, self.p, self.eps, self.kernel_size, self.stride)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, p={self.p.item():.3g}"


def binomial_filter(size: int) -> Tensor:
    """The size x size binomial (Pascal's triangle) low-pass filter, summing to 1."""
    row = torch.tensor([1.0])
    for _ in range(size - 1):
        row = F.pad(row, (1, 0)) + F.pad(row, (0, 1))
    kernel = torch.outer(row, row)
    return kernel / kernel.sum()


class BlurPool(nn.Module):
    """Anti-aliased max pooling (Zhang 2019, "Making Convolutional Networks Shift-Invariant
    Again"): max pooling with stride 1 (keeps the max's nonlinearity), then a fixed binomial
    blur applied with the stride (low-pass filtering before subsampling, so that a 1-pixel
    shift of the input no longer flips the output). No parameters: the blur is fixed."""

    def __init__(
        self, kernel_size: int = 2, stride: int = 2, filter_size: int = 3, padding_mode: str = ""
    ) -> None:
        super().__init__()
        # Not named kernel_size/stride: those attributes would claim the one-window arithmetic
        # (models/shapes.py), and this layer is two windows; its shapes come from a dry forward.
        self.max_kernel, self.blur_stride, self.filter_size = kernel_size, stride, filter_size
        # The blur pads by reflection, as the paper's code; in a circularly padded net
        # (model.padding_mode=circular) circularly, so a circular shift stays one.
        self.pad_mode = "circular" if padding_mode == "circular" else "reflect"
        # A buffer, not a parameter: it moves with the module but is never trained. Not in
        # the state_dict (persistent=False): it is rebuilt from filter_size.
        self.register_buffer("blur", binomial_filter(filter_size)[None, None], persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        if self.pad_mode == "circular" and self.max_kernel > 1:  # the max wraps around too
            x = F.pad(x, (0, self.max_kernel - 1, 0, self.max_kernel - 1), mode="circular")
        x = F.max_pool2d(x, self.max_kernel, 1)
        pad = (self.filter_size - 1) // 2, self.filter_size // 2
        x = F.pad(x, (pad[0], pad[1], pad[0], pad[1]), mode=self.pad_mode)
        c = x.shape[1]
        blur = self.blur.to(x.dtype).expand(c, 1, -1, -1)
        return F.conv2d(x, blur, stride=self.blur_stride, groups=c)

    def extra_repr(self) -> str:
        return (
            f"max {self.max_kernel}x{self.max_kernel}, blur {self.filter_size}x"
            f"{self.filter_size} with stride {self.blur_stride}"
        )


class MixedPool(nn.Module):
    """Mixed max-average pooling (Lee, Gallagher & Tu 2016, "Generalizing Pooling Functions in
    Convolutional Neural Networks: Mixed, Gated, and Tree"): a·max + (1 − a)·avg with one learned
    a in (0, 1) per layer (a = sigmoid of the parameter, starting at 0.5)."""

    def __init__(self, kernel_size: int = 2, stride: int | None = None) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride or kernel_size
        self.mix = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor) -> Tensor:
        a = torch.sigmoid(self.mix)
        mx = F.max_pool2d(x, self.kernel_size, self.stride)
        return a * mx + (1 - a) * F.avg_pool2d(x, self.kernel_size, self.stride)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


class APSPool(nn.Module):
    """Adaptive polyphase sampling (Chaman & Dokmanić 2021, "Truly shift-invariant
    convolutional neural networks", CVPR): max pooling with stride 1 (the max's nonlinearity,
    as BlurPool keeps it), then, of the stride x stride polyphase components (every
    stride-th pixel, starting at each offset), keep per image the one with the largest l2
    norm. A shifted input shifts which component wins, not what it holds, so with circular
    padding everywhere (model.padding_mode=circular) and a global head, the net's output does
    not change under circular shifts at all, trained or not. No parameters."""

    def __init__(self, kernel_size: int = 2, stride: int = 2, padding_mode: str = "zeros") -> None:
        super().__init__()
        # Not kernel_size/stride attributes: this layer is two steps (see BlurPool).
        self.max_kernel, self.aps_stride, self.padding_mode = kernel_size, stride, padding_mode

    def forward(self, x: Tensor) -> Tensor:
        k, s = self.max_kernel, self.aps_stride
        if k > 1:  # stride-1 max keeps the map's size: pad right and bottom by k - 1
            pad = (0, k - 1, 0, k - 1)
            if self.padding_mode == "circular":  # a circular shift stays a circular shift
                x = F.pad(x, pad, mode="circular")
            else:
                x = F.pad(x, pad, value=float("-inf"))  # never the max of a window
            x = F.max_pool2d(x, k, 1)
        h, w = x.shape[-2:]
        if h % s or w % s:
            raise RuntimeError(f"APS with stride {s} needs maps divisible by {s}, got {h}x{w}")
        phases = torch.stack([x[..., i::s, j::s] for i in range(s) for j in range(s)], 1)
        best = phases.flatten(2).norm(dim=2).argmax(1)  # per image: the largest-norm component
        return phases[torch.arange(len(x), device=x.device), best]

    def extra_repr(self) -> str:
        return (
            f"max {self.max_kernel}x{self.max_kernel} with stride 1 ({self.padding_mode}), "
            f"polyphase component of largest norm with stride {self.aps_stride}"
        )
