"""The lecture's pictures: what pooling does to a photo, and what a trained net's downsampling
layers and head make of test images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from poolbench.review.plotting import pyplot


def sample_photo(path: str | Path | None = None, size: int = 224) -> Tensor:
    """A real photograph as a (3, size, size) float tensor in [0, 1]: `path`, or the photo that
    scikit-learn ships (a temple in China), so it works offline."""
    from PIL import Image

    if path is None:
        from sklearn.datasets import load_sample_image

        img = Image.fromarray(load_sample_image("china.jpg"))
    else:
        img = Image.open(path).convert("RGB")
    side = min(img.size)  # centre square crop, then resize
    left, top = (img.size[0] - side) // 2, (img.size[1] - side) // 2
    img = img.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)
    return torch.from_numpy(np.array(img)).permute(2, 0, 1).float() / 255  # a writable copy


def pool_image(img: Tensor, mode: str, kernel: int) -> Tensor:
    pool = {"max": F.max_pool2d, "avg": F.avg_pool2d, "mean": F.avg_pool2d}[mode]
    return pool(img[None], kernel)[0]


def pooling_figure(img: Tensor, pools: list[tuple[str, int]]) -> Any:
    plt = pyplot()
    panels = [
        ("original", img),
        *((f"{m}-pooled, {k}x{k}", pool_image(img, m, k)) for m, k in pools),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4.4))
    for ax, (title, x) in zip(np.atleast_1d(axes), panels, strict=True):
        ax.imshow(x.permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
        ax.set_title(f"{title}\n{x.shape[1]}x{x.shape[2]}")
        ax.axis("off")
    fig.suptitle("pooling is lossy compression that keeps the important features")
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    return fig


def _gaps(parts: list[Tensor], dim: int, gap: int) -> Tensor:
    """Parts joined along `dim` with NaN gaps between them: NaN draws as background, so no
    frame looks like part of a map."""
    shape = list(parts[0].shape)
    shape[dim] = gap
    nan = torch.full(shape, float("nan"))
    joined = [t for part in parts for t in (part, nan)][:-1]
    return torch.cat(joined, dim=dim)


def _mosaic(maps: Tensor, n: int = 8) -> Tensor:
    """The first n channels of a (C, H, W) map side by side, raw values."""
    maps = maps[:n].float().cpu()
    return _gaps(list(maps), 1, max(1, maps.shape[-1] // 8))


def spread_indices(labels: Tensor, n: int = 4) -> Tensor:
    """n examples from different classes where possible (test sets are often sorted by class)."""
    picks: list[int] = []
    for cls in labels.unique().tolist():
        picks.append(int((labels == cls).nonzero()[0]))
        if len(picks) == n:
            break
    return torch.tensor(picks)


@torch.no_grad()
def activations_figure(net: torch.nn.Module, images: Tensor, titles: list[str]) -> Any:
    """A row per image: the input, the first channels after each block's downsampling, and
    the vector the head hands to the classifier. One panel per layer, so each layer has one
    colour scale shared by all images and the maps compare across them."""
    plt = pyplot()
    net.eval()
    feats = net.features(images)
    embeds = net.head(feats).float().cpu()
    cmap = plt.get_cmap("viridis").with_extremes(bad="white")
    inputs = torch.stack([(x - x.amin()) / (x.amax() - x.amin() + 1e-8) for x in images.float()])
    gap = images.shape[-2] // 4
    panels = [_gaps(list(inputs.cpu().permute(0, 2, 3, 1)), 0, gap).clamp(0, 1)]
    for f in feats:
        panels.append(_gaps([_mosaic(m) for m in f], 0, max(1, f.shape[-2] // 4)))
    widths = [p.shape[1] / p.shape[0] for p in panels] + [1.3]  # every panel 3 inches high
    fig_w = sum(widths) * 3.0 + 1.8
    fig, axes = plt.subplots(
        1, len(widths), figsize=(fig_w, 4.0), gridspec_kw={"width_ratios": widths}
    )
    axes[0].imshow(panels[0].nan_to_num(1.0).numpy())
    row_h = images.shape[-2] + gap
    for r, title in enumerate(titles):
        axes[0].text(
            -2, r * row_h + images.shape[-2] / 2, title, ha="right", va="center", fontsize=8
        )
    axes[0].set_title("input", fontsize=8)
    for k, (f, panel) in enumerate(zip(feats, panels[1:], strict=True)):
        vmin, vmax = float(np.nanmin(panel.numpy())), float(np.nanmax(panel.numpy()))
        axes[1 + k].imshow(panel.numpy(), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
        axes[1 + k].set_title(
            f"after blocks.{k}.pool: {tuple(f.shape[1:])}\nfirst 8 channels, colour "
            f"{vmin:.2g} → {vmax:.2g}",
            fontsize=8,
        )
    for ax in axes[:-1]:
        ax.axis("off")
    head = axes[-1]
    head.imshow(embeds.numpy(), cmap="viridis", aspect="auto", interpolation="nearest")
    head.set_title(
        f"head output: {embeds.shape[1]} features\ncolour {float(embeds.min()):.2g} → "
        f"{float(embeds.max()):.2g}",
        fontsize=8,
    )
    head.set_yticks([])  # its rows are the images, in the same order
    head.set_xlabel("feature", fontsize=8)
    head.tick_params(labelsize=7)
    fig.subplots_adjust(left=1.5 / fig_w, right=1 - 0.2 / fig_w, bottom=0.12, top=0.84, wspace=0.1)
    return fig
