"""What pooling buys: how much a run's answer changes when the test image moves.

Measured once per test (train.py's, eval.py's) by the `callbacks.shift_invariance` callback, on
the network's own single-view answer (no test-time augmentation, which averages over shifts):

- consistency (Zhang 2019, "Making Convolutional Networks Shift-Invariant Again", ICML, §4.1):
  how often the top-1 class is the same for two random shifts of the same image,
  E_{X, h1, w1, h2, w2} 1{argmax f(Shift_{h1,w1}(X)) = argmax f(Shift_{h2,w2}(X))},
  here with h1, w1, h2, w2 drawn uniformly from {-max_shift, …, max_shift}, per image, from a
  fixed seed: every run of a sweep sees the same shifts, so pools compare pair by pair;
- accuracy under shift, as a curve (Zhang's Fig. 1 style): the accuracy and the mean
  probability of the correct class for diagonal shifts (s, s), s = 0 … max_shift pixels.

A shift is circular (torch.roll: what leaves one side comes back on the other, the setting in
which APS is exactly invariant) or padded (what leaves is lost, zeros come in: the normalized
images' mean colour). Every shifted copy of a chunk of images goes through the net as one
batch: no per-image Python.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor
from torch.nn import functional as F

log = logging.getLogger(__name__)

MODES = ("circular", "padded")
CURVE_FILE = "shift_curve.json"


def shift_images(x: Tensor, dy: Tensor, dx: Tensor, mode: str = "circular") -> Tensor:
    """Each image x[i] moved down by dy[i] and right by dx[i] pixels (negative: up, left):
    out[i, :, r, c] = x[i, :, r - dy[i], c - dx[i]], read circularly or as zeros outside."""
    n, _, h, w = x.shape
    m = int(max(dy.abs().max(), dx.abs().max(), 0))
    if mode == "circular":
        rows = (torch.arange(h, device=x.device) - dy.to(x.device)[:, None]) % h
        cols = (torch.arange(w, device=x.device) - dx.to(x.device)[:, None]) % w
        src = x
    elif mode == "padded":
        src = F.pad(x, (m, m, m, m))  # zeros: in normalized images, the mean colour
        rows = torch.arange(h, device=x.device) + m - dy.to(x.device)[:, None]
        cols = torch.arange(w, device=x.device) + m - dx.to(x.device)[:, None]
    else:
        raise ValueError(f"shift mode {mode!r} is unknown; choose {' or '.join(MODES)}")
    i = torch.arange(n, device=x.device)[:, None, None]
    return src[i, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def draw_pairs(n: int, max_shift: int, seed: int) -> Tensor:
    """(n, 4) shifts h1, w1, h2, w2 per image, uniform in {-max_shift, …, max_shift}."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(-max_shift, max_shift + 1, (n, 4), generator=gen)


@dataclass
class ShiftCounts:
    """Sums over images, so ranks and chunks add up: agreements of the consistency pairs, and
    per diagonal shift the correct answers and the correct class's probability."""

    agree: Tensor
    correct: Tensor
    prob: Tensor
    images: Tensor

    def __add__(self, other: ShiftCounts) -> ShiftCounts:
        return ShiftCounts(*(getattr(self, k) + getattr(other, k) for k in self.__annotations__))

    def result(self) -> dict[str, Any]:
        n = self.images.double().clamp_min(1)  # float64: counts of 10,000s divide exactly
        return {
            "consistency": float(self.agree.double() / n),
            "acc": (self.correct.double() / n).tolist(),
            "prob": (self.prob.double() / n).tolist(),
            "images": int(self.images),
        }


def count(
    forward: Any,
    x: Tensor,
    y: Tensor,
    pairs: Tensor,
    max_shift: int,
    mode: str = "circular",
) -> ShiftCounts:
    """One batched pass over the shifted copies of x (normalized images): the two random
    shifts of each image (pairs, from draw_pairs) and the diagonal shifts 0 … max_shift."""
    n, s = len(x), max_shift + 1
    diag = torch.arange(s).repeat_interleave(n)
    dy = torch.cat([pairs[:, 0], pairs[:, 2], diag])
    dx = torch.cat([pairs[:, 1], pairs[:, 3], diag])
    views = shift_images(x.repeat(s + 2, 1, 1, 1), dy, dx, mode)
    logits = forward(views.contiguous(memory_format=torch.channels_last)).float()
    top = logits.argmax(1).view(s + 2, n)
    probs = logits[2 * n :].softmax(1).view(s, n, -1)
    y = y.to(logits.device)
    return ShiftCounts(
        agree=(top[0] == top[1]).sum(),
        correct=(top[2:] == y).sum(1),
        prob=probs.gather(2, y.expand(s, n)[..., None]).squeeze(2).sum(1),
        images=torch.tensor(n, device=logits.device),
    )


def measure(
    forward: Any,
    split: Any,
    normalize: Any,
    images: int,
    max_shift: int,
    mode: str = "circular",
    seed: int = 0,
    device: torch.device | str = "cpu",
    views_per_forward: int = 8192,
    rank_of: tuple[int, int] = (0, 1),
) -> ShiftCounts:
    """count() over `images` test images spread evenly over `split` (x uint8, y labels): a
    class-sorted folder gives every class its share. Under DDP (rank_of = (rank, world)) each
    rank counts every world-th image; the sums add up to the single process's."""
    idx = torch.linspace(0, len(split.y) - 1, images).round().long()
    pairs = draw_pairs(images, max_shift, seed)
    mine = slice(rank_of[0], None, rank_of[1])
    idx, pairs = idx[mine], pairs[mine]
    chunk = max(1, views_per_forward // (max_shift + 3))  # images per forward: s + 2 views each
    zeros = torch.zeros(max_shift + 1, device=device)
    total = ShiftCounts(zeros.sum(), zeros, zeros, zeros.sum())  # a rank may have no images
    with torch.no_grad():
        for start in range(0, len(idx), chunk):
            part = idx[start : start + chunk]
            x = normalize(split.x[part.to(split.x.device)]).to(device)
            y = split.y[part.to(split.y.device)]
            total = total + count(forward, x, y, pairs[start : start + chunk], max_shift, mode)
    return total


class ShiftInvariance(L.Callback):
    """After the test's accuracy: consistency and the accuracy-under-shift curve (module doc),
    logged as test/shift_consistency, test/shift_acc/<s>, test/shift_prob/<s> (results.json,
    CSV, W&B), saved as shift_curve.json and shift_curve.png in the run folder."""

    def __init__(
        self,
        max_shift: int = 8,
        mode: str = "circular",
        images: int | str = "auto",
        seed: int = 0,
        views_per_forward: int = 8192,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"shift mode {mode!r} is unknown; choose {' or '.join(MODES)}")
        self.max_shift, self.mode, self.images, self.seed = max_shift, mode, images, seed
        self.views_per_forward = views_per_forward
        self.curve: dict[str, Any] | None = None

    def how_many(self, total: int, device: torch.device) -> int:
        if self.images == "auto":  # every test image on a GPU; on a CPU a spread sample
            return total if device.type == "cuda" else min(total, CPU_IMAGES)
        return min(total, int(self.images))

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.curve = None
        dm = trainer.datamodule
        split = getattr(dm, "test", None)
        if split is None or not hasattr(dm, "normalize"):
            log.info("shift invariance not measured: the data module has no test tensors")
            return
        precision = trainer.precision_plugin  # the run's dtype and autocast

        def forward(views: Tensor) -> Tensor:
            with precision.forward_context():
                return pl_module(precision.convert_input(views))

        total = measure(
            forward,
            split,
            dm.normalize,
            self.how_many(len(split.y), pl_module.device),
            self.max_shift,
            self.mode,
            self.seed,
            pl_module.device,
            self.views_per_forward,
            (trainer.global_rank, trainer.world_size),
        )
        reduce = trainer.strategy.reduce
        total = ShiftCounts(
            *(
                reduce(getattr(total, k).float(), reduce_op="sum")
                for k in ShiftCounts.__annotations__
            )
        )
        result = total.result()
        from poolbench.training.module import (
            ALREADY_GLOBAL,  # reduced above: the same on every rank
        )

        pl_module.log("test/shift_consistency", result["consistency"], **ALREADY_GLOBAL)
        for s, (acc, prob) in enumerate(zip(result["acc"], result["prob"], strict=True)):
            pl_module.log(f"test/shift_acc/{s}", acc, **ALREADY_GLOBAL)
            pl_module.log(f"test/shift_prob/{s}", prob, **ALREADY_GLOBAL)
        self.curve = {
            "mode": self.mode,
            "max_shift": self.max_shift,
            "seed": self.seed,
            "shifts": list(range(self.max_shift + 1)),
            **result,
        }

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.curve is None or not trainer.is_global_zero:
            return
        from poolbench.files import write_json
        from poolbench.review.run_pictures import save_figure

        run_dir = Path(trainer.default_root_dir)
        write_json(run_dir / CURVE_FILE, self.curve)
        path = save_figure(curve_figure(self.curve), run_dir / "shift_curve.png")
        for lg in trainer.loggers:
            if hasattr(lg, "log_image"):
                lg.log_image(key="test/shift_curve", images=[str(path)])


CPU_IMAGES = 1000  # images="auto" on a CPU: the measurement stays a few seconds (benchmark.py)


def curve_figure(curve: dict[str, Any]) -> Any:
    """Accuracy and the correct class's probability against the diagonal shift, one run."""
    from poolbench.review.plotting import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.plot(curve["shifts"], curve["acc"], "o-", label="accuracy")
    ax.plot(curve["shifts"], curve["prob"], "s--", label="P(correct class)")
    ax.set_xlabel(f"diagonal shift (pixels, {curve['mode']})")
    ax.set_ylim(0, 1)
    ax.set_xticks(curve["shifts"])
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    ax.set_title(
        f"consistency {curve['consistency']:.3f} over {curve['images']} test images "
        f"(shifts up to ±{curve['max_shift']} px)"
    )
    fig.tight_layout()
    return fig
