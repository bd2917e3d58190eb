"""run_review.png: one trained run judged on its test set: the confusion matrix, its most
confident mistakes and what its downsampling layers and head make of two test images, from
the run's best checkpoint and the data it trained on (as poolbench-eval loads them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from poolbench.errors import UserError
from poolbench.review.figures.style import figure

MISTAKES = 8  # shown, most confident first: at most review's per-class cap, so exact
CHANNELS = 4  # channels shown per feature map
SKIP = ("last", "interrupted")  # checkpoints that are not the run's best


def best_checkpoint(run_dir: Path) -> Path:
    """The run's best checkpoint (results.json's best_checkpoint, found in checkpoints/ if
    the run folder moved); else its checkpoints/ best-val file; else last.ckpt."""
    results = run_dir / "results.json"
    if results.is_file():
        best = json.loads(results.read_text()).get("best_checkpoint")
        if best:
            for path in (Path(best), run_dir / "checkpoints" / Path(best).name):
                if path.is_file():
                    return path
    found = sorted((run_dir / "checkpoints").glob("*.ckpt"))
    ranked = [p for p in found if p.stem not in SKIP] + [p for p in found if p.stem == "last"]
    if not ranked:
        raise UserError(
            f"{run_dir} has no checkpoint in checkpoints/; pass --run with a run that trained"
        )
    return ranked[0]


@torch.no_grad()
def review_run(run_dir: Path) -> dict[str, Any]:
    """The test set through the run's best checkpoint, at the run's precision and with its
    test-time augmentation: the confusion matrix (rows true, columns predicted), the most
    confident mistakes, and the feature maps of two test images of different classes."""
    from poolbench.review.pictures import spread_indices
    from poolbench.review.run_pictures import add_mistakes
    from poolbench.review.trained import checkpoint_choices
    from poolbench.review.visualize import PER_CLASS, load_run

    ckpt = best_checkpoint(run_dir)
    run = load_run(ckpt)
    module, dm, precision = run.module, run.datamodule, run.precision
    n = dm.num_classes
    confusion = torch.zeros(n, n, dtype=torch.long)
    kept = None
    with precision.forward_context():
        for xb, yb in dm.test_dataloader():
            logits = module.eval_logits(precision.convert_input(xb))
            pred = logits.argmax(1).cpu()
            confusion += torch.bincount(yb.cpu() * n + pred, minlength=n * n).view(n, n)
            kept = add_mistakes(kept, xb, logits, yb, PER_CLASS)
        idx = spread_indices(dm.test.y, 2)
        x = precision.convert_input(dm.normalize(dm.test.x[idx]))
        maps = module.net.features(x)
        feats = [f.float().cpu() for f in maps]
        head = module.net.head(maps).float().cpu()
        pred = module(x).argmax(1).cpu()
    wrong = kept.wrong() if kept is not None else None
    top = []
    if wrong is not None and len(wrong.prob):
        order = wrong.prob.argsort(descending=True, stable=True)[:MISTAKES]
        top = [
            {
                "image": wrong.images[i].float().cpu(),
                "true": dm.classes[int(wrong.true[i])],
                "pred": dm.classes[int(wrong.pred[i])],
                "prob": float(wrong.prob[i]),
            }
            for i in order.tolist()
        ]
    choices = checkpoint_choices(dict(module.hparams))
    return {
        "run": run_dir,
        "checkpoint": ckpt,
        "net": f"head={choices.get('head', '?')} pool={choices.get('pool', '?')}",
        "classes": list(dm.classes),
        "confusion": confusion,
        "accuracy": confusion.diag().sum().item() / max(1, confusion.sum().item()),
        "mistakes": top,
        "inputs": dm.test.x[idx].float() / 255,
        "input_titles": [
            f"{dm.classes[int(t)]} → {dm.classes[int(p)]}"
            for t, p in zip(dm.test.y[idx], pred, strict=True)
        ],
        "features": feats,
        "head": head,
    }


def _display(img: Tensor) -> np.ndarray:
    from poolbench.review.run_pictures import (
        _display as stretch,  # as the run's misclassified.png shows
    )

    return stretch(img)


def _mosaic(maps: Tensor, n: int) -> np.ndarray:
    """The first n channels of a (C, H, W) map side by side, NaN gaps between (drawn blank)."""
    gap = np.full((maps.shape[1], max(1, maps.shape[2] // 6)), np.nan)
    parts = []
    for m in maps[:n].numpy():
        parts += [m, gap]
    return np.concatenate(parts[:-1], axis=1)


def run_review_figure(review: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Confusion matrix on the left; the most confident mistakes top right; bottom right, per
    test image: the input, the first channels after each downsampling (one colour scale per
    layer) and the head's vector."""
    import matplotlib

    classes, confusion = review["classes"], review["confusion"]
    fig = figure()
    fig.suptitle(
        f"Run review: {review['net']}, test accuracy {100 * review['accuracy']:.1f}% "
        f"({review['checkpoint'].name})",
        x=0.03,
        ha="left",
    )
    # confusion matrix: rates as colours, counts as numbers
    ax = fig.add_axes((0.08, 0.15, 0.31, 0.7))
    k = len(classes)
    rates = confusion.float() / confusion.sum(1, keepdim=True).clamp_min(1)
    ax.imshow(rates.numpy(), cmap="Blues", vmin=0, vmax=1)
    if k <= 12:  # beyond that the numbers are unreadable from the back; colours still tell
        for i in range(k):
            for j in range(k):
                colour = "white" if rates[i, j] > 0.5 else "black"
                ax.text(
                    j, i, int(confusion[i, j]), ha="center", va="center", fontsize=12, color=colour
                )
    ax.set_xticks(range(k), classes, rotation=60, ha="right", fontsize=13)
    ax.set_yticks(range(k), classes, fontsize=13)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("test confusion matrix (counts)")
    # most confident mistakes
    mistakes = review["mistakes"]
    grid = fig.add_gridspec(
        2, MISTAKES // 2, left=0.46, right=0.98, top=0.8, bottom=0.5, hspace=0.6, wspace=0.15
    )
    fig.text(0.46, 0.88, "most confident mistakes: true → predicted (probability)", fontsize=19)
    for i in range(MISTAKES):
        ax = fig.add_subplot(grid[i // (MISTAKES // 2), i % (MISTAKES // 2)])
        ax.axis("off")
        if i < len(mistakes):
            m = mistakes[i]
            ax.imshow(_display(m["image"]), interpolation="nearest")
            ax.set_title(f"{m['true']} → {m['pred']}\np = {m['prob']:.2f}", fontsize=14)
        elif i == 0:
            ax.text(0, 0.5, "no misclassified test images", fontsize=16)
    # activations
    feats, head = review["features"], review["head"]
    n_img = len(review["input_titles"])
    widths = [1.0] + [CHANNELS * 1.17] * len(feats) + [1.6]
    grid = fig.add_gridspec(
        n_img,
        len(widths),
        left=0.47,
        right=0.98,
        top=0.32,
        bottom=0.04,
        width_ratios=widths,
        wspace=0.12,
        hspace=0.15,
    )
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="white")
    scales = [(float(f[:, :CHANNELS].min()), float(f[:, :CHANNELS].max())) for f in feats]
    shown = []
    for r in range(n_img):
        ax = fig.add_subplot(grid[r, 0])
        ax.imshow(review["inputs"][r].permute(1, 2, 0).numpy(), interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(review["input_titles"][r], fontsize=12)
        if r == 0:
            ax.set_title("input", fontsize=14)
        row = []
        for c, (f, (lo, hi)) in enumerate(zip(feats, scales, strict=True)):
            panel = _mosaic(f[r], CHANNELS)
            row.append(panel)
            ax = fig.add_subplot(grid[r, 1 + c])
            ax.imshow(panel, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
            ax.axis("off")
            if r == 0:
                shape = "×".join(map(str, f.shape[1:]))
                ax.set_title(f"after blocks.{c}.pool\n{shape}, first {CHANNELS}", fontsize=14)
        shown.append(row)
        ax = fig.add_subplot(grid[r, -1])
        ax.imshow(head[r : r + 1].numpy(), cmap="viridis", aspect="auto", interpolation="nearest")
        ax.set_yticks([])
        ax.tick_params(labelsize=11, labelbottom=r == n_img - 1)
        if r == 0:
            ax.set_title(f"head output\n{head.shape[1]} features", fontsize=14)
    fig.text(0.46, 0.41, "what the pooling layers and the head make of test images", fontsize=19)
    data = {
        "confusion": confusion,
        "classes": classes,
        "accuracy": review["accuracy"],
        "mistakes": [{k: m[k] for k in ("true", "pred", "prob")} for m in mistakes],
        "feature_shapes": [tuple(f.shape[1:]) for f in feats],
        "feature_panels": shown,
        "checkpoint": review["checkpoint"],
    }
    return fig, data
