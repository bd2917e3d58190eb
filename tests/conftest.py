"""Shared helpers: compose configs as the CLI would, and run jobs in-process or as commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CONF = str(ROOT / "conf")
SHARED_CIFAR = Path(os.environ.get("POOLBENCH_CIFAR_JPG", ROOT.parent / "shared/data/cifar10-jpg"))

# Small and quick: synthetic data, no progress bar, a couple of epochs.
FAST = [
    "data=synthetic",
    "data.n_train=600",
    "data.n_test=200",
    "trainer.max_epochs=2",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
    "trainer.enable_progress_bar=false",
]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    # No real W&B credentials or settings leak in; caches go to one temp folder per session.
    for var in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path_factory.getbasetemp() / "home"))
    monkeypatch.setenv("WANDB_SILENT", "true")


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def make_cfg(
    overrides: list[str], out: Path, config: str = "train", cache: Path | None = None
) -> DictConfig:
    """Compose like the CLI does, with the run folder set to `out`."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose(config, overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(out)
        cfg.hydra.job.num = 0
        cfg.paths.output_dir = str(out)
        if cache is not None:
            cfg.data.cache_dir = str(cache)
    HydraConfig.instance().set_config(cfg)
    out.mkdir(parents=True, exist_ok=True)
    return cfg


def run_cli(
    args: list[str], cwd: Path = ROOT, timeout: int = 600, env: dict | None = None
) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "WANDB_SILENT": "true", **(env or {})}
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )


def read_results(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


def wandb_summary(run_dir: Path) -> dict:
    """What the offline W&B run recorded, read back with the wandb CLI."""
    runs = sorted((run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, runs
    wandb_cli = Path(sys.executable).with_name("wandb")
    out = subprocess.run(
        [str(wandb_cli), "leet", "inspect", "--summary", "--json", str(runs[0])],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(out.stdout)


def write_image(path: Path, mode: str, size: tuple[int, int], value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.full((size[1], size[0], 3), value, np.uint8)
    im = Image.fromarray(arr).convert(mode)
    im.save(path)


def make_folder(root: Path) -> Path:
    modes = [("RGB", (32, 32)), ("L", (20, 40)), ("RGBA", (64, 64)), ("P", (31, 17))]
    for split in ("train", "test"):
        for c, cls in enumerate(["cat", "dog"]):
            for i, (mode, size) in enumerate(modes):
                ext = "jpg" if mode in ("RGB", "L") else "png"
                write_image(root / split / cls / f"{i}.{ext}", mode, size, 40 + 150 * c)
    return root
