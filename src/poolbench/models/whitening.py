"""`model.init=whiten`: the first conv starts as a whitening filter bank of the data's patches
(airbench's trick). The small nets then learn edges and colour contrasts from step one instead of
from random filters: on CIFAR-10 the global net is ~4 points ahead after 4 epochs, and about
half a point after 20 (docs/performance.md)."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

EPS = 5e-4  # added to each patch variance: keeps near-constant directions from blowing up
INITS = ("default", "whiten")


def patch_whitening(images: Tensor, kernel_size: int, n_filters: int, eps: float = EPS) -> Tensor:
    """(min(n_filters, C·k·k), C, k, k) filters: the top principal directions of the images'
    k×k patches, each scaled by 1/sqrt(variance + eps), so their outputs start decorrelated and
    of unit variance. `images` are normalized floats, NCHW."""
    c, k = images.shape[1], kernel_size
    d = c * k * k
    total = torch.zeros(d, dtype=torch.float64, device=images.device)
    gram = torch.zeros(d, d, dtype=torch.float64, device=images.device)
    count = 0
    for chunk in images.split(256):  # patch matrices of a few thousand images would need GBs
        p = F.unfold(chunk.float(), k).transpose(1, 2).reshape(-1, d)
        total += p.sum(0).double()
        gram += (p.T @ p).double()  # float32 per chunk: fast, and exact enough for an init
        count += len(p)
    mean = total / count
    cov = gram / count - torch.outer(mean, mean)
    var, vec = torch.linalg.eigh(cov)  # ascending
    n = min(n_filters, d)
    var, vec = var.flip(0)[:n], vec.flip(1)[:, :n]
    return (vec.T / torch.sqrt(var.clamp_min(0)[:, None] + eps)).float().reshape(n, c, k, k)


@torch.no_grad()
def whiten_conv(conv: nn.Conv2d, images: Tensor, eps: float = EPS) -> None:
    """Set the conv's first filters to `patch_whitening` of `images`, and their biases to 0;
    a conv with more filters than patch dimensions keeps its default init for the rest."""
    w = patch_whitening(images.to(conv.weight.device), conv.kernel_size[0], conv.out_channels, eps)
    conv.weight[: len(w)].copy_(w)
    if conv.bias is not None:
        conv.bias[: len(w)].zero_()
