"""Pictures for reviewing a run: the test confusion matrix, the most confident mistakes of each
class and the activations, saved as PNGs in the run folder and logged to W&B as media."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor

from poolbench.review.plotting import pyplot

log = logging.getLogger(__name__)
DPI = 100
# misclassified.png layout, in pixels: margin, title band, label band above each tile, row gap
PAD, TOP, LABEL_H, ROW_GAP = 8, 26, 30, 4


@dataclass
class Mistakes:
    """Test images with their true and predicted class and the predicted class's probability
    (-1 where the prediction is right: a placeholder that any mistake outranks)."""

    images: Tensor
    true: Tensor
    pred: Tensor
    prob: Tensor

    def take(self, idx: Tensor) -> Mistakes:
        return Mistakes(self.images[idx], self.true[idx], self.pred[idx], self.prob[idx])

    @staticmethod
    def cat(parts: list[Mistakes]) -> Mistakes:
        return Mistakes(*(torch.cat([getattr(p, k) for p in parts]) for k in Mistakes.fields()))

    @staticmethod
    def fields() -> tuple[str, ...]:
        return ("images", "true", "pred", "prob")

    def wrong(self) -> Mistakes:
        return self.take((self.prob >= 0).nonzero().flatten())


def most_confident(m: Mistakes, per_class: int) -> Mistakes:
    """Up to `per_class` entries per true class, highest probability first, classes in order.
    Device ops only (no host read), so it can run on every test batch of a GPU run."""
    order = m.prob.argsort(descending=True, stable=True)
    order = order[m.true[order].argsort(stable=True)]
    true = m.true[order]
    rank = torch.arange(len(order), device=true.device) - torch.searchsorted(true, true)
    return m.take(order[rank < per_class])


def add_mistakes(
    kept: Mistakes | None, images: Tensor, logits: Tensor, labels: Tensor, per_class: int
) -> Mistakes:
    """Merges one batch into the kept set: whatever order the test set comes in, the result is
    each class's `per_class` most confident mistakes so far."""
    prob, pred = logits.detach().float().softmax(1).max(1)
    prob = torch.where(pred == labels, torch.full_like(prob, -1.0), prob)
    batch = Mistakes(images.detach(), labels, pred, prob)
    return most_confident(batch if kept is None else Mistakes.cat([kept, batch]), per_class)


def _display(img: Tensor) -> np.ndarray:
    # Images arrive normalized: stretch each back to [0, 1] for display.
    img = img.float().cpu()
    lo, hi = img.amin(), img.amax()
    return ((img - lo) / (hi - lo + 1e-8)).permute(1, 2, 0).numpy()


def confusion_figure(matrix: Tensor, classes: list[str]) -> Any:
    plt = pyplot()
    n = len(classes)
    fig, ax = plt.subplots(figsize=(1.2 + 0.55 * n, 1.0 + 0.5 * n))
    rates = matrix.float() / matrix.sum(1, keepdim=True).clamp_min(1)
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    if n <= 20:  # beyond that the counts are unreadable; the colours still show the pattern
        for i in range(n):
            for j in range(n):
                color = "white" if rates[i, j] > 0.5 else "black"
                ax.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=7, color=color)
    ax.set_xticks(range(n), classes, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(n), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("test confusion matrix (counts)")
    fig.tight_layout()
    return fig


def _font(size: int) -> Any:
    import matplotlib
    from PIL import ImageFont

    # matplotlib ships DejaVu Sans (it has the arrow); PIL's default font cannot be sized.
    return ImageFont.truetype(f"{matplotlib.get_data_path()}/fonts/ttf/DejaVuSans.ttf", size)


def misclassified_image(m: Mistakes, classes: list[str], per_class: int) -> Any:
    """A row per true class that has mistakes, its most confident ones left to right, each tile
    titled true → predicted and the probability. Drawn with PIL: 80 tiles with matplotlib text
    took a second, here a few milliseconds."""
    from PIL import Image, ImageDraw

    m = m.wrong()
    h, w = m.images.shape[-2:]
    zoom = max(1, 96 // max(h, w))  # small images shown at about 96 px
    th, tw = h * zoom, w * zoom
    font, head_font = _font(11), _font(13)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    labels = [f"{classes[int(t)]} → {classes[int(p)]}" for t, p in zip(m.true, m.pred, strict=True)]
    cell_w = max([tw, *(int(measure.textlength(s, font=font)) for s in labels)]) + PAD
    cell_h = LABEL_H + th + ROW_GAP
    rows = m.true.unique().tolist()
    size = (max(1, per_class) * cell_w + PAD, TOP + max(1, len(rows)) * cell_h + 2 * ROW_GAP)
    canvas = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(canvas)
    title = "most confident mistakes per true class: true → predicted, p = its probability"
    draw.text((PAD, 6), title if rows else "no misclassified test images", "black", head_font)
    for r, cls in enumerate(rows):
        for c, i in enumerate((m.true == cls).nonzero().flatten().tolist()):
            x0, y0 = PAD + c * cell_w, TOP + r * cell_h
            tile = (_display(m.images[i]) * 255).round().astype(np.uint8)
            canvas.paste(Image.fromarray(tile).resize((tw, th), Image.NEAREST), (x0, y0 + LABEL_H))
            draw.text((x0, y0), labels[i], fill="black", font=font)
            draw.text((x0, y0 + 14), f"p = {float(m.prob[i]):.2f}", fill="dimgray", font=font)
    return canvas


def save_figure(fig: Any, path: Path) -> Path:
    if hasattr(fig, "savefig"):
        fig.savefig(path, dpi=DPI)
        pyplot().close(fig)
    else:  # a PIL image
        fig.save(path)
    return path


class ReviewImages(L.Callback):
    """Keeps each class's most confident test mistakes and draws the run's review pictures."""

    def __init__(self, per_class: int = 8) -> None:
        self.per_class = per_class
        self.kept: Mistakes | None = None
        self.drawn: Mistakes | None = None  # what misclassified.png shows, for tests and users

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.kept = None

    def on_test_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if isinstance(outputs, dict) and "logits" in outputs:
            x, y = batch
            self.kept = add_mistakes(self.kept, x, outputs["logits"], y, self.per_class)

    def _gather(self, trainer: L.Trainer, n_classes: int) -> Mistakes | None:
        """Every rank's candidates, merged (DDP: each rank tested its own shard)."""
        if trainer.world_size == 1 or self.kept is None:
            return self.kept
        # all_gather needs one shape on every rank: pad to the most a rank can keep.
        m, n = self.kept, self.per_class * n_classes
        pad = n - len(m.prob)
        padded = Mistakes(
            torch.cat([m.images, m.images.new_zeros(pad, *m.images.shape[1:])]),
            torch.cat([m.true, m.true.new_zeros(pad)]),
            torch.cat([m.pred, m.pred.new_zeros(pad)]),
            torch.cat([m.prob, m.prob.new_full((pad,), -2.0)]),
        )
        parts = [trainer.strategy.all_gather(getattr(padded, k)) for k in Mistakes.fields()]
        merged = Mistakes(*(p.flatten(0, 1) for p in parts))
        return most_confident(merged.take((merged.prob > -2).nonzero().flatten()), self.per_class)

    @staticmethod
    def activations(trainer: L.Trainer, pl_module: L.LightningModule) -> Any:
        """The lecture's picture for this model: maps after each downsampling, head output."""
        from poolbench.review.pictures import activations_figure, spread_indices

        dm = trainer.datamodule
        idx = spread_indices(dm.test.y)
        x, y = dm.normalize(dm.test.x[idx]), dm.test.y[idx]
        precision = trainer.precision_plugin  # the run's: its dtype (64-true) and autocast
        x = precision.convert_input(x.to(pl_module.device))
        with precision.forward_context():
            preds = pl_module(x).argmax(1).tolist()
            titles = [
                f"{pl_module.classes[t]} → {pl_module.classes[p]}"
                for t, p in zip(y.tolist(), preds, strict=True)
            ]
            return activations_figure(pl_module.net, x, titles)

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if getattr(pl_module, "confusion", None) is None:
            return
        kept = self._gather(trainer, len(pl_module.classes))
        if not trainer.is_global_zero:
            return
        start = time.perf_counter()
        classes = pl_module.classes
        run_dir = Path(trainer.default_root_dir)
        figures = {"test/confusion_matrix": confusion_figure(pl_module.confusion, classes)}
        if kept is not None:
            self.drawn = kept.wrong()
            figures["test/misclassified"] = misclassified_image(kept, classes, self.per_class)
        if getattr(trainer.datamodule, "test", None) is not None:
            figures["test/activations"] = self.activations(trainer, pl_module)
        for key, fig in figures.items():
            path = save_figure(fig, run_dir / f"{key.split('/')[-1]}.png")
            for lg in trainer.loggers:
                if hasattr(lg, "log_image"):
                    lg.log_image(key=key, images=[str(path)])
        log.info("review pictures drawn in %.2f s", time.perf_counter() - start)
