"""Helpers that several test files share, and the classes tests name as a Hydra `_target_`
(`helpers.WreckLastEpoch`): no test file imports another test file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import lightning as L
import numpy as np
import torch
from PIL import Image


def picture_stats(path: Path) -> tuple[float, int]:
    """A picture's pixel spread and number of distinct colours (a blank figure has neither)."""
    return picture_stats_of(Image.open(path))


def picture_stats_of(img: Image.Image) -> tuple[float, int]:
    px = np.asarray(img.convert("RGB")).astype(float)
    return float(px.std()), len(np.unique(px.reshape(-1, 3), axis=0))


def wandb_group(job_dir: Path) -> str:
    """The W&B group of a job's offline run, read back with the wandb CLI."""
    run = next((job_dir / "wandb").glob("offline-run-*"))
    wandb_cli = Path(sys.executable).with_name("wandb")
    out = subprocess.run(
        [str(wandb_cli), "leet", "inspect", "--json", str(run)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    for line in out.stdout.splitlines():
        record = json.loads(line)
        if record.get("type") == "run":
            return record["run"]["run_group"]
    raise AssertionError(f"no run record in {run}")


class WreckLastEpoch(L.Callback):
    """Negates the net's last layer before the last validation: that epoch scores far below
    chance, so its checkpoint (last.ckpt) is the worst, and the best is an earlier one."""

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == trainer.max_epochs - 1 and not trainer.sanity_checking:
            last = [m for m in pl_module.modules() if isinstance(m, torch.nn.Linear)][-1]
            with torch.no_grad():
                last.weight.neg_()
                last.bias.neg_()
