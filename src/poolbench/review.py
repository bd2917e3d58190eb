"""Pictures for reviewing a run: the test confusion matrix and a grid of misclassified images,
saved as PNGs in the run folder and logged to W&B as media."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor


def confusion_figure(matrix: Tensor, classes: list[str]) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(classes)
    fig, ax = plt.subplots(figsize=(1.2 + 0.55 * n, 1.0 + 0.5 * n))
    rates = matrix.float() / matrix.sum(1, keepdim=True).clamp_min(1)
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
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


def misclassified_figure(images: Tensor, true: list[str], pred: list[str]) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 8
    rows = max(1, -(-len(images) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.3, rows * 1.5), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, t, p in zip(axes.flat, images, true, pred, strict=False):
        lo, hi = img.amin(), img.amax()  # images arrive normalized: stretch back for display
        ax.imshow(((img - lo) / (hi - lo + 1e-8)).permute(1, 2, 0).numpy())
        ax.set_title(f"{t}\n→ {p}", fontsize=7)
    fig.suptitle("misclassified test images (true → predicted)", fontsize=9)
    fig.tight_layout()
    return fig


class ReviewImages(L.Callback):
    """Collects the first `n_images` misclassified test images and the confusion matrix."""

    def __init__(self, n_images: int = 32) -> None:
        self.n_images = n_images
        self.wrong: list[tuple[Tensor, int, int]] = []

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.wrong = []

    def on_test_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if len(self.wrong) >= self.n_images or not isinstance(outputs, dict):
            return
        x, y = batch
        preds = outputs["preds"]
        for i in (preds != y).nonzero().flatten()[: self.n_images - len(self.wrong)].tolist():
            self.wrong.append((x[i].float().cpu(), int(y[i]), int(preds[i])))

    @staticmethod
    def activations(trainer: L.Trainer, pl_module: L.LightningModule) -> Any:
        """The lecture's picture for this model: maps after each downsampling, head output."""
        from poolbench.pictures import activations_figure, spread_indices

        dm = trainer.datamodule
        idx = spread_indices(dm.test.y)
        x, y = dm.normalize(dm.test.x[idx]), dm.test.y[idx]
        net = pl_module.net
        x = x.to(pl_module.device)
        preds = pl_module(x).argmax(1).tolist()
        titles = [
            f"{pl_module.classes[t]} → {pl_module.classes[p]}"
            for t, p in zip(y.tolist(), preds, strict=True)
        ]
        return activations_figure(net, x, titles)

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero or getattr(pl_module, "confusion", None) is None:
            return
        import matplotlib.pyplot as plt

        classes = pl_module.classes
        run_dir = Path(trainer.default_root_dir)
        figures = {"test/confusion_matrix": confusion_figure(pl_module.confusion, classes)}
        if self.wrong:
            images = torch.stack([w[0] for w in self.wrong])
            true = [classes[w[1]] for w in self.wrong]
            pred = [classes[w[2]] for w in self.wrong]
            figures["test/misclassified"] = misclassified_figure(images, true, pred)
        if getattr(trainer.datamodule, "test", None) is not None:
            figures["test/activations"] = self.activations(trainer, pl_module)
        for key, fig in figures.items():
            path = run_dir / f"{key.split('/')[-1]}.png"
            fig.savefig(path, dpi=110)
            plt.close(fig)
            for lg in trainer.loggers:
                if hasattr(lg, "log_image"):
                    lg.log_image(key=key, images=[str(path)])
