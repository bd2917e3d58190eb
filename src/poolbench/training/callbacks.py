"""Small callbacks Lightning does not ship."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from poolbench.training.lightning_private import save_last_unless_saved, saves_on_train_epoch_end


class EpochTimer(L.Callback):
    """Logs seconds per training epoch and training throughput (images/s), and notes how long
    the process took from start-up to its first training step."""

    def __init__(self) -> None:
        self.epoch_seconds: list[float] = []
        self.images_per_epoch: list[int] = []  # trained on, per epoch: what throughput counts
        self.startup_seconds: float | None = None
        self._start = 0.0
        self._images = 0

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self.startup_seconds is None:
            import poolbench

            self.startup_seconds = time.time() - poolbench.IMPORTED_AT

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # A run resumed inside an epoch goes on without on_train_epoch_start: that epoch is
        # timed (and its images counted) from here, not from 0.
        self.on_train_epoch_start(trainer, pl_module)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start, self._images = time.perf_counter(), 0

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        # A stack of batches on the fast path: its training_step says how many it trained on,
        # fewer where max_steps cut it short.
        images = outputs.get("images") if isinstance(outputs, Mapping) else None
        self._images += batch[1].numel() if images is None else images

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        seconds = time.perf_counter() - self._start
        self.epoch_seconds.append(seconds)
        self.images_per_epoch.append(self._images)
        # Under DDP the job's figures, as one process training on everything would log them:
        # the epoch lasts until its slowest rank ends, and throughput counts every rank's images.
        # A single process reduces nothing (the strategy's reduce returns the value as it is).
        reduce = trainer.strategy.reduce
        job_seconds = reduce(torch.tensor(seconds, device=pl_module.device), reduce_op="max")
        images = reduce(torch.tensor(float(self._images), device=pl_module.device), reduce_op="sum")
        # the same on every rank now: max of equal values (module.ALREADY_GLOBAL)
        already_global = {"sync_dist": True, "reduce_fx": "max"}
        pl_module.log("time/epoch_s", job_seconds, **already_global)
        pl_module.log("time/train_img_per_s", images / job_seconds, **already_global)


class RunCheckpoint(ModelCheckpoint):
    """ModelCheckpoint that a resumed run continues: `resume=latest` writes into a new run
    folder, and Lightning then forgets the best score so far (it restores it only into the same
    folder), so a resumed run could test another "best" than an uninterrupted one. Here the
    best score and path carry over; files in the earlier folder are never deleted (Lightning
    removes only checkpoints inside this run's folder). And last.ckpt is the last finished
    epoch, always: Lightning 2.6 rewrites it only in a step that also saved a best checkpoint,
    so after an epoch that did not improve, `resume=latest` would start an epoch early."""

    @property
    def state_key(self) -> str:
        # Lightning's own key: checkpoints stay interchangeable with plain ModelCheckpoint ones.
        return super().state_key.replace(type(self).__qualname__, "ModelCheckpoint", 1)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict({**state_dict, "dirpath": self.dirpath})

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if saves_on_train_epoch_end(self, trainer):
            save_last_unless_saved(self, trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not saves_on_train_epoch_end(self, trainer):
            save_last_unless_saved(self, trainer)
