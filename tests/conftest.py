"""Shared helpers: compose configs as the CLI would, and run jobs in-process or as commands."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict
from PIL import Image

# Tests run side by side (make test: pytest-xdist, a worker per core). One torch thread per worker
# and per command it starts: two workers of two threads each on two cores spin-wait on each other.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

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
    "logger=csv",  # W&B's service costs ~3.5 s a run: tests that read W&B back add WANDB after
]
# The default loggers (offline W&B + CSV), as users run: after FAST, for tests that read W&B back
# (the last `logger=` wins).
WANDB = "logger=default"


# Three tiers, marked where each test lives. `slow` (`@pytest.mark.slow` on a test, or
# `pytestmark = pytest.mark.slow` for a module whose every test is slow): end-to-end tests (CLI
# training runs, DDP, sweeps, real data, benchmark); `make test-fast` (`pytest -m "not slow"`) is
# the developer's sub-minute loop. `ci` (`@pytest.mark.ci`): the heaviest of those (about 20 s to
# 3 min each on 2 cores), slow too (the hook below adds it); `make test` (`-m "not ci"`) stays
# under 10 minutes, and CI runs everything (`make test-all`). A new test that trains through the
# CLI takes @pytest.mark.slow.


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("ci"):  # the heaviest tests are slow too
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    # No real W&B credentials or settings leak in; caches go to one temp folder per session.
    for var in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path_factory.getbasetemp() / "home"))
    monkeypatch.setenv("WANDB_SILENT", "true")


def truthy(var: str) -> bool:
    return os.environ.get(var, "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture
def shared_cifar() -> Path:
    """The real CIFAR-10 JPEGs. Missing on a developer's machine: the test is skipped, with the
    reason in the summary. Missing in CI ($CI set) or where $POOLBENCH_CIFAR_JPG names them:
    the test fails, saying where they must be."""
    if (SHARED_CIFAR / "train").is_dir():
        return SHARED_CIFAR
    where = (
        f"real CIFAR-10 JPEGs (an ImageFolder tree with train/ and test/) not found at "
        f"{SHARED_CIFAR}: put them at ../shared/data/cifar10-jpg beside the checkout or set "
        "POOLBENCH_CIFAR_JPG"
    )
    if truthy("CI") or "POOLBENCH_CIFAR_JPG" in os.environ:
        pytest.fail(f"{where}; the real-data tests must run here", pytrace=False)
    pytest.skip(where)


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


def kill_group(proc: subprocess.Popen) -> None:
    """Kill a command started by `run_command`/`spawn` and every process it started (its own
    process group: DDP ranks, W&B's service), and reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=30)


def run_command(
    cmd: list[str], cwd: Path = ROOT, timeout: int = 600, env: dict | None = None
) -> subprocess.CompletedProcess:
    """subprocess.run, but the command runs in its own process group, killed at the end
    whatever happens (timeout, Ctrl-C): no DDP rank outlives its test."""
    full_env = {**os.environ, "WANDB_SILENT": "true", **(env or {})}
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        kill_group(proc)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def run_cli(
    args: list[str], cwd: Path = ROOT, timeout: int = 600, env: dict | None = None
) -> subprocess.CompletedProcess:
    return run_command([sys.executable, *args], cwd=cwd, timeout=timeout, env=env)


@pytest.fixture
def spawn() -> Iterator[Callable[..., subprocess.Popen]]:
    """Start commands (subprocess.Popen arguments) in their own process groups; at teardown,
    whatever the test's outcome, each group is killed: a failed assertion leaves no job running."""
    procs: list[subprocess.Popen] = []

    def start(cmd: list[str], **kwargs: Any) -> subprocess.Popen:
        kwargs.setdefault("cwd", ROOT)
        kwargs.setdefault("env", {**os.environ, "WANDB_SILENT": "true"})
        # A test run started in the background (nohup, `&`) ignores SIGINT, and so would the job:
        # it gets Ctrl-C's default back, as a job started from a terminal has.
        kwargs.setdefault("preexec_fn", lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        proc = subprocess.Popen(cmd, start_new_session=True, **kwargs)
        procs.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in procs:
            kill_group(proc)


@pytest.fixture(scope="session")
def seed_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A joblib sweep of two seeds run at once, shared by tests/sweeps/test_joblib.py and
    tests/review/test_report.py (made once, for whichever asks first)."""
    tmp = tmp_path_factory.mktemp("joblib")
    out = run_cli(
        [
            "train.py",
            "-m",
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=2",
            "seed=0,1",
            *FAST,
            "callbacks.review_images=null",
            f"hydra.sweep.dir={tmp}/sweep",
            f"data.cache_dir={tmp}/cache",
        ]
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return tmp / "sweep"


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


def docs_text() -> str:
    """README.md and every docs/*.md page, one text: facts tests hold may live on either (the
    README is the teacher's first screen; the rest moved into the docs site)."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return "\n\n".join(page.read_text() for page in pages)
