"""Interruptions, resumption, reproducibility and secrets: nothing computed is lost or leaked."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import FAST, ROOT, make_cfg, read_results, wandb_summary

from poolbench.experiment import train

SLOW_ENOUGH = [  # epochs long enough (about a second) to interrupt one in the middle
    *FAST[:-1],
    "data.n_train=3000",
    "data.augment=true",
    "trainer.max_epochs=5",
    "trainer.enable_progress_bar=false",
    "task_name=resumable",
]


def command(tmp_path: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "train.py",
        *SLOW_ENOUGH,
        f"paths.root_dir={tmp_path}",
        f"data.cache_dir={tmp_path}/cache",
        *extra,
    ]


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_SILENT": "true"}
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)


def runs(tmp_path: Path) -> list[Path]:
    root = tmp_path / "outputs" / "resumable"
    return sorted(root.iterdir()) if root.is_dir() else []


def test_sigterm_then_resume_latest_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    full = run(command(tmp_path))
    assert full.returncode == 0, full.stderr[-3000:]
    reference = read_results(runs(tmp_path)[0])

    proc = subprocess.Popen(
        command(tmp_path),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "WANDB_SILENT": "true"},
    )
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if len(runs(tmp_path)) == 2 and (runs(tmp_path)[1] / "checkpoints/last.ckpt").exists():
            proc.send_signal(signal.SIGTERM)  # as a cluster preempting the job would
            break
        time.sleep(0.05)
    proc.wait(timeout=300)
    interrupted_dir = runs(tmp_path)[1]
    interrupted = read_results(interrupted_dir)
    assert proc.returncode != 0
    assert interrupted["status"] == "interrupted", interrupted
    assert interrupted["epochs"] < 5
    assert (interrupted_dir / "checkpoints/interrupted.ckpt").is_file()
    assert wandb_summary(interrupted_dir)["summary"]["status"] == "interrupted"

    resumed = run(command(tmp_path, "resume=latest"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    final = read_results(runs(tmp_path)[2])
    assert final["status"] == "ok" and final["epochs"] == 5
    for key in ("val/acc", "val/acc_best", "test/acc", "test/loss"):
        assert final["metrics"][key] == pytest.approx(reference["metrics"][key], abs=1e-6), key
    # The dashboard shows one continuous run: the resumed job reuses the interrupted W&B run.
    assert final["wandb_run_id"] == interrupted["wandb_run_id"]


def test_resume_latest_without_an_earlier_run_says_so(tmp_path: Path) -> None:
    out = run(command(tmp_path, "resume=latest"))
    assert out.returncode == 2
    assert "resume=latest found no earlier run" in out.stderr
    assert not (tmp_path / "outputs" / "resumable").exists() or not runs(tmp_path)


def test_same_seed_twice_gives_identical_metrics(tmp_path: Path) -> None:
    metrics = []
    for name in ("a", "b"):
        cfg = make_cfg(
            [*FAST, "data.augment=true", "logger=csv", "seed=7"],
            tmp_path / name,
            cache=tmp_path / "cache",
        )
        train(cfg)
        metrics.append(read_results(tmp_path / name)["metrics"])
    for key in ("val/acc", "val/acc_best", "test/acc", "test/loss", "train/loss"):
        assert metrics[0][key] == metrics[1][key], key


def test_secrets_in_the_environment_are_never_logged(tmp_path: Path) -> None:
    secret = "sk-FAKE-SECRET-4f9a1c"
    env = {
        **os.environ,
        "WANDB_SILENT": "true",
        "WANDB_MODE": "offline",
        "WANDB_API_KEY": secret,
        "GITHUB_TOKEN": secret,
        "HF_TOKEN": secret,
    }
    out = subprocess.run(
        [
            sys.executable,
            "train.py",
            *FAST,
            "trainer.max_epochs=1",
            f"hydra.run.dir={tmp_path}/run",
            f"data.cache_dir={tmp_path}/cache",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    files = [p for p in (tmp_path / "run").rglob("*") if p.is_file()]
    assert any(p.suffix == ".wandb" for p in files) and any(p.name == "results.json" for p in files)
    leaked = [str(p) for p in files if secret.encode() in p.read_bytes()]
    assert leaked == []


def test_ctrl_c_saves_a_checkpoint_and_marks_the_run_interrupted(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        command(tmp_path, "trainer.max_epochs=30"),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "WANDB_SILENT": "true"},
    )
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if runs(tmp_path) and (runs(tmp_path)[0] / "checkpoints/last.ckpt").exists():
            proc.send_signal(signal.SIGINT)
            break
        time.sleep(0.05)
    proc.wait(timeout=300)
    run_dir = runs(tmp_path)[0]
    r = read_results(run_dir)
    assert proc.returncode != 0 and r["status"] == "interrupted", r
    assert (run_dir / "checkpoints/interrupted.ckpt").is_file()
    assert wandb_summary(run_dir)["summary"]["status"] == "interrupted"


def test_run_folders_are_unique_and_shared_by_a_jobs_ranks(monkeypatch: pytest.MonkeyPatch) -> None:
    from poolbench.distributed import run_stamp

    before = dict(os.environ)
    stamps = {run_stamp() for _ in range(3)}
    assert len(stamps) == 3  # microseconds: two runs started in one second still differ
    assert dict(os.environ) == before  # nothing leaks into the runs this process starts
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "x")  # torchrun ranks share their agent
    assert run_stamp() == run_stamp()
    assert run_stamp().endswith(f"-torchrun{os.getppid()}")
