"""A test's probe into a training job (a Lightning callback added from the command line): what
the job started from and its first steps, saved to <run>/first_steps.pt; and, to test how a
sweep takes a failing job, an exception in one chosen job's step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch


class FirstSteps(L.Callback):
    def __init__(self, steps: int = 3, seed: int | None = None, fail_seed: int | None = None):
        self.steps, self.seed, self.fail_seed = steps, seed, fail_seed
        self.record: dict[str, Any] = {"batches": [], "losses": []}

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # after Lightning's sanity check, before any step: the weights the job starts from
        self.record["weights"] = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: Any, batch: Any, i: int) -> None:
        if len(self.record["batches"]) < self.steps:
            x, y = batch
            self.record["batches"].append((x.detach().clone(), y.detach().clone()))

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any, i: int
    ) -> None:
        if self.seed is not None and self.seed == self.fail_seed:
            raise RuntimeError(f"planted failure in the step of the job with seed {self.seed}")
        if len(self.record["losses"]) < self.steps:
            self.record["losses"].append(float(outputs["loss"]))
            if len(self.record["losses"]) == self.steps:
                torch.save(self.record, Path(trainer.default_root_dir) / "first_steps.pt")
