"""hydra/launcher=packed: a sweep's jobs trained side by side in one process (threads), each
keeping what it has alone: its seed's weights and batches, folder, log, W&B run and failure."""

import itertools
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from conftest import FAST, ROOT, WANDB, read_results, run_cli, wandb_summary
from helpers import wandb_group

from poolbench.review.report import report

pytestmark = pytest.mark.slow

TESTS = Path(__file__).parents[1]
PROBE = "+callbacks.first_steps={_target_:first_steps.FirstSteps,steps:3,seed:${seed}}"
QUIET = ["callbacks.shift_invariance=null", "callbacks.review_images=null"]


def sweep(out: Path, *overrides: str) -> subprocess.CompletedProcess:
    return run_cli(
        [
            "train.py",
            "-m",
            *FAST,
            WANDB,  # each job's own W&B run is part of what packing must keep
            "trainer.max_epochs=1",
            *QUIET,
            *overrides,
            f"hydra.sweep.dir={out}",
            f"data.cache_dir={out.parent}/cache",
        ],
        env={"PYTHONPATH": str(TESTS)},  # the probe callback (tests/first_steps.py)
    )


def swept(job: Path) -> list[str]:
    overrides = yaml.safe_load((job / ".hydra/overrides.yaml").read_text())
    return [o for o in overrides if o.startswith(("head=", "seed="))]


def jobs_of(sweep_dir: Path) -> list[Path]:
    return sorted(p for p in sweep_dir.iterdir() if p.is_dir())


@pytest.mark.ci
def test_packed_jobs_run_together_and_start_as_they_would_alone(tmp_path: Path) -> None:
    grid = ["head=flatten,global", "seed=0,1", PROBE]
    packed = sweep(tmp_path / "packed", "hydra/launcher=packed", *grid)
    assert packed.returncode == 0, packed.stderr[-3000:]
    # Hydra's basic launcher: one job after another (W&B is checked on the packed jobs)
    alone = sweep(tmp_path / "alone", *grid, "logger=csv")
    assert alone.returncode == 0, alone.stderr[-3000:]

    jobs = jobs_of(tmp_path / "packed")
    assert [j.name for j in jobs] == ["0", "1", "2", "3"]
    results = [read_results(j) for j in jobs]
    assert all(r["status"] == "ok" for r in results)
    # side by side: every job started before any ended (the basic launcher's run in turn)
    assert max(r["started_at"] for r in results) < min(r["ended_at"] for r in results)
    turns = sorted(
        (r["started_at"], r["ended_at"]) for r in map(read_results, jobs_of(tmp_path / "alone"))
    )
    assert all(end <= start for (_, end), (start, _) in itertools.pairwise(turns))
    assert "Packed launcher: 4 jobs, 4 at once in this process" in packed.stderr + packed.stdout

    for job in jobs:
        mine = torch.load(job / "first_steps.pt")
        theirs = torch.load(tmp_path / "alone" / job.name / "first_steps.pt")
        assert swept(job) == swept(tmp_path / "alone" / job.name)  # the same job
        assert mine["weights"].keys() == theirs["weights"].keys()
        for key, w in mine["weights"].items():
            assert torch.equal(w, theirs["weights"][key]), (job.name, key)
        assert len(mine["batches"]) == 3
        for (x, y), (x0, y0) in zip(mine["batches"], theirs["batches"], strict=True):
            assert torch.equal(x, x0) and torch.equal(y, y0)
        assert mine["losses"] == pytest.approx(theirs["losses"], abs=1e-5)
        # each job's own files: checkpoints, metrics, and a log of its own records only
        assert (job / "checkpoints/last.ckpt").is_file() and (job / "csv/metrics.csv").is_file()
        log = (job / "train.log").read_text()
        assert f"job in {job}:" in log
        others = [o for o in jobs if o != job]
        assert not any(f"job in {o}:" in log for o in others)
        assert log.count("Seed set to") == 1
    # the four seeds' nets differ: a probe that saved one job's files four times would not
    firsts = {j.name: torch.load(j / "first_steps.pt")["losses"][0] for j in jobs}
    assert len(set(firsts.values())) == 4

    runs = [wandb_summary(j) for j in jobs]
    assert len({r["run_id"] for r in runs}) == 4
    assert [r["run_id"] for r in runs] == [r["wandb_run_id"] for r in results]
    assert all(r["state"] == "finished" for r in runs)
    assert all(r["summary"]["status"] == "ok" for r in runs)  # each job finished its own run
    assert {r["name"] for r in runs} == {
        f"head={h},seed={s}" for h, s in itertools.product(["flatten", "global"], [0, 1])
    }
    assert len({wandb_group(j) for j in jobs}) == 1


def test_a_failing_packed_job_fails_alone(tmp_path: Path) -> None:
    out = sweep(
        tmp_path / "sweep",
        "hydra/launcher=packed",
        "seed=0,1,2,3",
        PROBE.replace("seed:${seed}", "seed:${seed},fail_seed:2"),
    )
    assert out.returncode != 0  # Hydra reports the failure once every job has run
    jobs = jobs_of(tmp_path / "sweep")
    assert len(jobs) == 4
    bad = read_results(jobs[2])
    assert bad["status"] == "failed" and "planted failure" in bad["error"]
    assert wandb_summary(jobs[2])["exit_code"] == 1
    for good in (jobs[0], jobs[1], jobs[3]):
        r = read_results(good)
        assert r["status"] == "ok" and r["metrics"]["test/acc"] > 0
        assert (good / "checkpoints/last.ckpt").is_file() and r["best_checkpoint"]
        assert (good / "csv/metrics.csv").is_file()
        assert wandb_summary(good)["state"] == "finished"
    text = report(tmp_path / "sweep").read_text()
    assert "## Failed jobs" in text and "planted failure" in text


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer.devices=2", "trainer.devices=2 trainer.num_nodes=1: a packed job trains on one"),
        ("hydra.launcher.jobs=0", "hydra.launcher.jobs=0: jobs packed in one process must be"),
    ],
)
def test_what_cannot_be_packed_is_one_line_before_any_job(
    tmp_path: Path, override: str, message: str
) -> None:
    out = sweep(tmp_path / "sweep", "hydra/launcher=packed", "seed=0,1", override)
    assert out.returncode == 2
    (line,) = [x for x in out.stderr.splitlines() if x.startswith("error:")]
    assert message in line and "Traceback" not in out.stderr
    assert not any((tmp_path / "sweep").glob("*/results.json"))  # no job ran


def test_packed_launcher_is_listed_with_the_others() -> None:
    out = run_cli(["train.py", "--hydra-help"], cwd=ROOT)
    (line,) = [x for x in out.stdout.splitlines() if x.startswith("hydra/launcher:")]
    assert "packed" in line.split(": ", 1)[1].split(", ")


def test_why_not_packed_names_each_fix() -> None:
    from omegaconf import OmegaConf

    from hydra_plugins.poolbench_packed.launcher import why_not_packed

    def job(**trainer: object) -> object:
        base = {"devices": 1, "num_nodes": 1, "strategy": "auto"}
        return OmegaConf.create({"hydra": {"job": {"chdir": False}}, "trainer": base | trainer})

    assert why_not_packed(job()) is None
    chdir = job()
    chdir.hydra.job.chdir = True
    assert "hydra.job.chdir=true changes the one working directory" in why_not_packed(chdir)
    assert "trainer.num_nodes=2" in why_not_packed(job(num_nodes=2))
    assert "a packed job trains on one device" in why_not_packed(job(strategy="ddp"))


def test_sigterm_stops_every_packed_job_and_each_records_it(tmp_path: Path, spawn) -> None:
    # SIGTERM is turned into Ctrl-C's KeyboardInterrupt in the launcher's thread: one path for
    # both (Ctrl-C alone was tested the same way, and passed, when this was written)

    out = tmp_path / "sweep"
    proc = spawn(
        [
            sys.executable,
            "train.py",
            "-m",
            "hydra/launcher=packed",
            "seed=0,1",
            *FAST,
            WANDB,
            *QUIET,
            "data.n_train=2000",
            "trainer.max_epochs=100",
            f"hydra.sweep.dir={out}",
            f"data.cache_dir={tmp_path}/cache",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lasts = [out / f"{i}/checkpoints/last.ckpt" for i in (0, 1)]
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not all(p.exists() for p in lasts):
        time.sleep(0.05)
    assert all(p.exists() for p in lasts), "both jobs should be training"
    proc.send_signal(signal.SIGTERM)  # only the launcher's (main) thread hears it
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    assert "interrupted: each running job saved checkpoints/interrupted.ckpt" in err
    for i in (0, 1):
        r = read_results(out / str(i))
        assert r["status"] == "interrupted" and r["epochs"] < 100, r
        assert (out / f"{i}/checkpoints/interrupted.ckpt").is_file()
        assert wandb_summary(out / str(i))["summary"]["status"] == "interrupted"
