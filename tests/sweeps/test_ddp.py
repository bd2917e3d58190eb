"""DDP on CPU (gloo, 2 processes) with Hydra single runs, multiruns and torchrun."""

import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import FAST, WANDB, make_cfg, read_results, run_cli, run_command, wandb_summary
from hydra.utils import instantiate
from omegaconf import OmegaConf

DDP = [*FAST, "trainer=ddp_cpu", "trainer.max_epochs=2", "trainer.enable_progress_bar=false"]


def only_dirs(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir() if p.is_dir())


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ddp")
    out = run_cli(
        ["train.py", *DDP, WANDB, f"paths.root_dir={root}", f"data.cache_dir={root}/cache"]
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return root


@pytest.mark.ci
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


def eval_run(run: Path, out_dir: Path, cache: Path) -> dict:
    """eval.py on a run's best checkpoint, with no data or precision keys: both come from the
    run's folder."""
    r = read_results(run)
    out = run_cli(
        [
            "eval.py",
            f"ckpt_path={r['best_checkpoint']}",
            "logger=csv",
            "trainer.enable_progress_bar=false",
            f"hydra.run.dir={out_dir}",
            f"data.cache_dir={cache}",
        ]
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return read_results(out_dir)


def class_accuracies(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k.startswith("test/acc_class/")}


@pytest.mark.ci
def test_ddp_test_accuracy_equals_single_process_eval(ddp_run: Path, tmp_path: Path) -> None:
    run = next((ddp_run / "outputs" / "train").iterdir())
    r = read_results(run)
    e = eval_run(run, tmp_path / "eval", ddp_run / "cache")
    # trainer=ddp_cpu ran at 32-true; eval's own `auto` would be bf16-mixed on a CPU with bf16
    assert (r["precision"], e["precision"]) == ("32-true", "32-true")
    assert e["metrics"]["test/acc"] == pytest.approx(r["metrics"]["test/acc"], abs=1e-6)
    assert class_accuracies(e["metrics"]) == pytest.approx(class_accuracies(r["metrics"]), abs=1e-6)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_node_torchrun(root: Path, rdzv_id: str = "poolbench-test") -> tuple[str, str]:
    """One job on two torchrun "nodes" (two agents, one rank each) on 127.0.0.1, started in the
    same checkout as on a cluster's shared file system; both agents and their ranks are killed
    whatever happens. Returns both agents' stderr."""
    import concurrent.futures

    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    endpoint = f"127.0.0.1:{free_port()}"

    def node(rank: int) -> subprocess.CompletedProcess:
        return run_command(
            [
                torchrun,
                "--nnodes=2",
                f"--node-rank={rank}",
                "--nproc-per-node=1",
                "--rdzv-backend=c10d",
                f"--rdzv-endpoint={endpoint}",
                f"--rdzv-id={rdzv_id}",
                "train.py",
                "trainer=ddp_cpu",
                "trainer.num_nodes=2",
                "trainer.devices=1",
                "data=digits",
                # a precision no machine's `auto` picks: eval must take it from the run
                "trainer.precision=64-true",
                "trainer.max_epochs=2",
                "trainer.enable_progress_bar=false",
                "callbacks.progress_bar=null",
                "logger=csv",
                f"paths.root_dir={root}",
                f"data.cache_dir={root}/cache",
            ],
            timeout=300,
        )

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        outs = list(pool.map(node, (0, 1)))
    for out in outs:
        assert out.returncode == 0, out.stderr[-3000:]
    return outs[0].stderr, outs[1].stderr


@pytest.fixture(scope="module")
def two_node_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """The same two-node command, twice in a row (the same rendezvous id both times)."""
    root = tmp_path_factory.mktemp("two_nodes")
    logs = [*two_node_torchrun(root), *two_node_torchrun(root)]
    return root, logs


@pytest.mark.ci
def test_two_torchrun_nodes_write_one_run_folder(two_node_runs: tuple[Path, list[str]]) -> None:
    root, _ = two_node_runs
    runs = sorted((root / "outputs" / "train").iterdir())
    assert len(runs) == 2  # one folder per job: the same command twice gives two
    for run in runs:
        names = {p.name for p in run.iterdir()}
        # rank 0's files and node 1's rank-1 log side by side
        assert {".hydra", "checkpoints", "csv", "results.json", "train.log"} <= names
        assert "train_rank1.log" in names
        r = read_results(run)
        assert r["status"] == "ok" and r["device"]["count"] == 2
        assert r["metrics"]["test/acc"] > 0.15  # 10 digits: chance is about 0.1


@pytest.mark.ci
def test_two_node_run_equals_eval_and_logs_no_sync_warning(
    two_node_runs: tuple[Path, list[str]], tmp_path: Path
) -> None:
    root, logs = two_node_runs
    run = sorted((root / "outputs" / "train").iterdir())[0]
    r = read_results(run)
    e = eval_run(run, tmp_path / "eval", root / "cache")
    # what eval's trainer ran at (read from it), and why
    assert r["precision"] == e["precision"] == "64-true"
    assert e["precision_why"] == f"the run's, from {run / 'results.json'}"
    # digits' 359 test images, an odd count: split 180 + 179 over the ranks, each image once
    assert e["metrics"]["test/acc"] == pytest.approx(r["metrics"]["test/acc"], abs=1e-6)
    per_class = class_accuracies(r["metrics"])
    assert len(per_class) == 10
    assert class_accuracies(e["metrics"]) == pytest.approx(per_class, abs=1e-6)
    # Each logged value is the job's, so Lightning has nothing to warn about.
    assert not any("sync_dist" in log for log in logs), [
        line for log in logs for line in log.splitlines() if "sync_dist" in line
    ]


@pytest.mark.ci
def test_ddp_multirun_one_folder_and_run_per_job(tmp_path: Path) -> None:
    out = run_cli(
        [
            "train.py",
            "-m",
            "head=flatten,global",
            *DDP,
            WANDB,
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


@pytest.mark.ci
def test_torchrun_launch(tmp_path: Path) -> None:
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    out = run_command(  # torchrun and both ranks are killed, whatever happens
        [
            torchrun,
            "--nproc_per_node=2",
            "train.py",
            *DDP,
            WANDB,
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


@pytest.mark.ci
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
