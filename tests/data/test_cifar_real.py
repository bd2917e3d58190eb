"""A short run on the real CIFAR-10 images (the shared JPEG copy), as a user would start it."""

from pathlib import Path

import pytest
from conftest import read_results, run_cli, wandb_summary

pytestmark = pytest.mark.ci


def test_short_cifar10_run_beats_chance(tmp_path: Path, shared_cifar: Path) -> None:
    # shared_cifar: skipped on a machine without the images; in CI (CI=true), missing fails
    out = run_cli(
        [
            "train.py",
            "data=folder",
            f"data.root={shared_cifar}",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=120",
            "trainer.enable_progress_bar=false",
            f"hydra.run.dir={tmp_path}/run",
            f"data.cache_dir={tmp_path}/cache",
        ]
    )
    assert out.returncode == 0, out.stderr[-3000:]
    r = read_results(tmp_path / "run")
    assert r["status"] == "ok"
    assert r["params"]["total"] == 32_862
    assert r["choices"]["data"] == "folder"
    assert r["metrics"]["test/acc"] > 0.25  # 15k images seen; chance is 0.10
    assert wandb_summary(tmp_path / "run")["state"] == "finished"
