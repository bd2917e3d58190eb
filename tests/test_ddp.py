"""DDP on CPU (gloo, 2 processes) with Hydra single runs, multiruns and torchrun."""

import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import FAST, make_cfg, read_results, run_cli, run_command, wandb_summary
from hydra.utils import instantiate
from omegaconf import OmegaConf

DDP = [*FAST, "trainer=ddp_cpu", "trainer.max_epochs=2", "trainer.enable_progress_bar=false"]


def only_dirs(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir() if p.is_dir())


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ddp")
    out = run_cli(["train.py", *DDP, f"paths.root_dir={root}", f"data.cache_dir={root}/cache"])
    assert out.returncode == 0, out.stderr[-3000:]
    return root


def test_single_ddp_run_makes_one_of_everything(ddp_run: Path) -> None:
    runs = list((ddp_run / "outputs" / "train").iterdir())
    assert len(runs) == 1  # no per-rank run folders
    run = runs[0]
    assert only_dirs(run) == [".hydra", "checkpoints", "csv", "wandb"]
    assert sorted(p.name for p in (run / "checkpoints").iterdir())[-1] == "last.ckpt"
    assert len(list((run / "checkpoints").iterdir())) == 2  # best + last, once
    r = read_results(run)
    assert r["status"] == "ok"
    for key in ("train/loss", "val/acc", "val/acc_best", "test/acc", "test/loss"):
        assert key in r["metrics"]
    summary = wandb_summary(run)  # exactly one W&B run (rank zero)
    assert summary["state"] == "finished"
    assert summary["config"]["batch/per_device"] == 128
    assert summary["config"]["batch/global"] == 256
    assert (run / "train_ddp_process_1.log").is_file()
    # Each rank trains on its half of the training split: its optimizer steps per epoch are
    # ceil(half / per-device batch). A rank training on everything would take about twice as many.
    cfg = OmegaConf.load(run / ".hydra" / "config.yaml")
    world = cfg.trainer.devices
    n_train = cfg.data.n_train - round(cfg.data.n_train * cfg.data.val_fraction)
    per_rank = n_train // world  # shards are equal: the remainder is dropped
    steps = math.ceil(per_rank / cfg.data.batch_size) * cfg.trainer.max_epochs
    assert (world, n_train, per_rank, steps) == (2, 540, 270, 6)  # the formula on this config
    last = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["global_step"] == steps
    # 10 balanced classes (20 test images each): chance and the majority rate are 0.1; two
    # short epochs on 270 images a rank reach about 0.2.
    assert r["metrics"]["test/acc"] > 0.15


def test_ddp_test_accuracy_equals_single_process_eval(ddp_run: Path, tmp_path: Path) -> None:
    run = next((ddp_run / "outputs" / "train").iterdir())
    r = read_results(run)
    out = run_cli(
        [
            "eval.py",
            f"ckpt_path={r['best_checkpoint']}",
            *FAST[:3],
            "logger=csv",
            "trainer.enable_progress_bar=false",
            "trainer.precision=32-true",  # as the DDP run tested (auto may be bf16 on a CPU)
            f"hydra.run.dir={tmp_path}/eval",
            f"data.cache_dir={ddp_run}/cache",
        ]
    )
    assert out.returncode == 0, out.stderr[-3000:]
    single = read_results(tmp_path / "eval")["metrics"]["test/acc"]
    assert single == pytest.approx(r["metrics"]["test/acc"], abs=1e-6)


def test_ddp_multirun_one_folder_and_run_per_job(tmp_path: Path) -> None:
    out = run_cli(
        [
            "train.py",
            "-m",
            "head=flatten,global",
            *DDP,
            f"paths.root_dir={tmp_path}",
            f"hydra.sweep.dir={tmp_path}/sweep",
            f"data.cache_dir={tmp_path}/cache",
        ]
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert only_dirs(tmp_path / "sweep") == ["0", "1"]
    assert not (tmp_path / "outputs").exists()  # no stray per-rank runs or nested sweeps
    totals = {read_results(tmp_path / f"sweep/{j}")["params"]["total"] for j in (0, 1)}
    assert totals == {270_942, 32_862}
    runs = [wandb_summary(tmp_path / f"sweep/{j}") for j in (0, 1)]
    assert len({r["run_id"] for r in runs}) == 2
    assert all(r["state"] == "finished" for r in runs)


def test_torchrun_launch(tmp_path: Path) -> None:
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    out = run_command(  # torchrun and both ranks are killed, whatever happens
        [
            torchrun,
            "--nproc_per_node=2",
            "train.py",
            *DDP,
            f"paths.root_dir={tmp_path}",
            f"data.cache_dir={tmp_path}/cache",
        ]
    )
    assert out.returncode == 0, out.stderr[-3000:]
    runs = list((tmp_path / "outputs" / "train").iterdir())
    assert len(runs) == 1
    assert read_results(runs[0])["status"] == "ok"
    assert (runs[0] / "train_rank1.log").is_file()
    assert wandb_summary(runs[0])["state"] == "finished"


def test_slurm_config_matches_the_trainer(tmp_path: Path) -> None:
    cfg = make_cfg(
        [
            "trainer=slurm",
            "hydra/launcher=slurm_ddp",
            "trainer.devices=8",
            "trainer.num_nodes=3",
            "hydra.launcher.partition=gpu",
        ],
        tmp_path,
    )
    launcher = cfg.hydra.launcher
    assert launcher.tasks_per_node == 8 and launcher.gpus_per_node == 8
    assert launcher.nodes == 3 and launcher.partition == "gpu"
    assert launcher._target_.endswith("SlurmLauncher")
    assert cfg.trainer.strategy._target_.endswith("DDPStrategy")
    env = instantiate(cfg.trainer.plugins[0])
    assert type(env).__name__ == "SLURMEnvironment" and env.auto_requeue
    import signal

    assert env.requeue_signal == signal.SIGUSR1


def _children_running(marker: str) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if marker in cmd and "train_ddp_process_1" in cmd:
                pids.append(int(proc.name))
    return pids


def test_a_dying_rank_fails_the_job_promptly(tmp_path: Path, spawn) -> None:
    import os
    import signal
    import time

    cmd = [
        sys.executable,
        "train.py",
        *DDP,
        "data.n_train=4000",
        "trainer.max_epochs=50",
        f"hydra.run.dir={tmp_path}/run",
        f"data.cache_dir={tmp_path}/cache",
    ]
    # spawn: the job and its ranks are killed when the test ends, passed or failed
    proc = spawn(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not (tmp_path / "run/checkpoints/last.ckpt").exists():
        time.sleep(0.2)  # wait until training is under way
    children = _children_running(str(tmp_path))
    assert children, "no rank-1 process found"
    os.kill(children[0], signal.SIGKILL)
    proc.wait(timeout=60)  # never hangs: a job still waiting on the dead rank raises here
    assert proc.returncode != 0
