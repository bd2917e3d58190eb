"""The lecture's pictures: what pooling does to a photo, and what a trained net's downsampling
layers and head make of test images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


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
    return torch.from_numpy(np.asarray(img)).permute(2, 0, 1).float() / 255


def pool_image(img: Tensor, mode: str, kernel: int) -> Tensor:
    pool = {"max": F.max_pool2d, "avg": F.avg_pool2d, "mean": F.avg_pool2d}[mode]
    return pool(img[None], kernel)[0]


def pooling_figure(img: Tensor, pools: list[tuple[str, int]]) -> Any:
    plt = _plt()
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


def _mosaic(maps: Tensor, n: int = 8) -> np.ndarray:
    """The first n channels of a (C, H, W) map side by side, each scaled to [0, 1]."""
    maps = maps[:n]
    lo = maps.flatten(1).amin(1)[:, None, None]
    hi = maps.flatten(1).amax(1)[:, None, None]
    maps = (maps - lo) / (hi - lo + 1e-8)
    pad = F.pad(maps, (1, 1, 1, 1), value=1.0)
    return torch.cat(list(pad), dim=1).numpy()


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
    """Per image: the input, the first channels after each block's downsampling, and the
    vector the head hands to the classifier."""
    plt = _plt()
    net.eval()
    feats = net.features(images)
    embeds = net.head(feats)
    cols = 2 + len(feats)
    fig, axes = plt.subplots(
        len(images),
        cols,
        figsize=(3 * cols, 1.9 * len(images)),
        squeeze=False,
        gridspec_kw={"width_ratios": [1, *[3] * len(feats), 2]},
    )
    for r, (img, title) in enumerate(zip(images, titles, strict=True)):
        lo, hi = img.amin(), img.amax()
        axes[r, 0].imshow(((img - lo) / (hi - lo + 1e-8)).permute(1, 2, 0).cpu().numpy())
        axes[r, 0].set_title(title, fontsize=8)
        for b, f in enumerate(feats):
            axes[r, 1 + b].imshow(_mosaic(f[r].float().cpu()), cmap="viridis")
            axes[r, 1 + b].set_title(f"after blocks.{b}.pool: {tuple(f.shape[1:])}", fontsize=8)
        axes[r, -1].bar(range(embeds.shape[1]), embeds[r].float().cpu().numpy(), width=1.0)
        axes[r, -1].set_title(f"head output: {embeds.shape[1]} features", fontsize=8)
        for ax in axes[r, :-1]:
            ax.axis("off")
        axes[r, -1].tick_params(labelsize=6)
    fig.tight_layout()
    return fig
