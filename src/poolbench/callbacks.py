"""Small callbacks Lightning does not ship."""

from __future__ import annotations

import time
from typing import Any

import lightning as L


class EpochTimer(L.Callback):
    """Logs seconds per training epoch and training throughput (images/s), and notes how long
    the process took from start-up to its first training step."""

    def __init__(self) -> None:
        self.epoch_seconds: list[float] = []
        self.startup_seconds: float | None = None
        self._start = 0.0
        self._images = 0

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self.startup_seconds is None:
            import poolbench

            self.startup_seconds = time.time() - poolbench.IMPORTED_AT

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
        self._images += len(batch[1])

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        seconds = time.perf_counter() - self._start
        self.epoch_seconds.append(seconds)
        # Throughput summed over ranks: every rank sees its own shard.
        pl_module.log("time/epoch_s", seconds)
        pl_module.log("time/train_img_per_s", self._images * trainer.world_size / seconds)


class SaveOnInterrupt(L.Callback):
    """On Ctrl-C or SIGTERM, saves the mid-epoch state as checkpoints/interrupted.ckpt.

    `resume=latest` continues from last.ckpt (the last finished epoch) instead, so a resumed
    run ends exactly as an uninterrupted one would.
    """

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        from lightning.pytorch.utilities.exceptions import SIGTERMException

        if (
            isinstance(exception, KeyboardInterrupt | SIGTERMException)
            and trainer.checkpoint_callback
        ):
            trainer.save_checkpoint(f"{trainer.checkpoint_callback.dirpath}/interrupted.ckpt")
