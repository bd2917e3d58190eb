"""Multirun sweeps end to end: job folders, one finished W&B run per job, launchers, reports."""

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import FAST, ROOT, make_cfg, read_results, run_cli, wandb_summary

from poolbench.report import report


def wandb_group(job_dir: Path) -> str:
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


def sweep(tmp_path: Path, *overrides: str, epochs: int = 1) -> subprocess.CompletedProcess:
    return run_cli(
        [
            "train.py",
            "-m",
            *FAST,
            f"trainer.max_epochs={epochs}",
            *overrides,
            f"hydra.sweep.dir={tmp_path}/sweep",
            f"data.cache_dir={tmp_path}/cache",
        ]
    )


def test_two_heads_by_two_pools(tmp_path: Path) -> None:
    out = sweep(tmp_path, "head=flatten,global", "pool=max,avg")
    assert out.returncode == 0, out.stderr[-3000:]
    jobs = sorted(p for p in (tmp_path / "sweep").iterdir() if p.is_dir())
    assert [p.name for p in jobs] == ["0", "1", "2", "3"]
    results = [read_results(j) for j in jobs]
    assert all(r["status"] == "ok" for r in results)
    pairs = {(r["choices"]["head"], r["choices"]["pool"]) for r in results}
    assert pairs == set(itertools.product(["flatten", "global"], ["max", "avg"]))
    runs = [wandb_summary(j) for j in jobs]
    assert len({r["run_id"] for r in runs}) == 4
    assert all(r["state"] == "finished" for r in runs)
    assert {r["name"] for r in runs} == {f"head={h},pool={p}" for h, p in pairs}
    assert len({wandb_group(j) for j in jobs}) == 1
    assert sorted(runs[0]["tags"]) == sorted(["head:flatten", "pool:max", "data:synthetic"])

    text = report(tmp_path / "sweep").read_text()
    assert (
        len(
            [
                line
                for line in text.splitlines()
                if line.startswith("| flatten") or line.startswith("| global")
            ]
        )
        == 4
    )
    assert "270,942" in text and "32,862" in text
    for png in ("accuracy_vs_params.png", "curves.png"):
        assert (tmp_path / "sweep" / png).stat().st_size > 10_000
    rows = (tmp_path / "sweep" / "results.csv").read_text().splitlines()
    assert len(rows) == 5


def test_failing_job_leaves_the_others_complete(tmp_path: Path) -> None:
    out = sweep(tmp_path, "optimizer.lr=0.002,1e12,0.003", epochs=4)  # the middle one diverges
    assert out.returncode != 0  # Hydra reports the failure once every job has run
    first, bad, last = (read_results(tmp_path / f"sweep/{i}") for i in range(3))
    assert bad["status"] == "failed" and "NonFiniteLossError" in bad["error"]
    for good in (first, last):
        assert good["status"] == "ok" and good["metrics"]["test/acc"] > 0.2
    assert wandb_summary(tmp_path / "sweep/1")["exit_code"] == 1
    assert wandb_summary(tmp_path / "sweep/2")["state"] == "finished"
    text = report(tmp_path / "sweep").read_text()
    assert "## Failed jobs" in text and "NonFiniteLossError" in text
    assert "optimizer.lr=0.003" in text


def test_parallel_jobs_share_the_cores(tmp_path: Path) -> None:
    import os

    import torch

    from poolbench.experiment import limit_threads

    make_cfg(["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "hydra.mode=MULTIRUN"], tmp_path)
    before = torch.get_num_threads()
    try:
        limit_threads()
        assert torch.get_num_threads() == max(1, (os.cpu_count() or 1) // 2)
    finally:
        torch.set_num_threads(before)


def test_submitit_local_launcher(tmp_path: Path) -> None:
    out = sweep(tmp_path, "hydra/launcher=submitit_local", "head=flatten,global")
    assert out.returncode == 0, out.stderr[-3000:]
    totals = {read_results(tmp_path / f"sweep/{i}")["params"]["total"] for i in (0, 1)}
    assert totals == {270_942, 32_862}


def test_optuna_search_runs_trials(tmp_path: Path) -> None:
    out = sweep(tmp_path, "hparams_search=optuna", "hydra.sweeper.n_trials=2")
    assert out.returncode == 0, out.stderr[-3000:]
    best = yaml.safe_load((tmp_path / "sweep/optimization_results.yaml").read_text())
    trials = [read_results(tmp_path / f"sweep/{i}") for i in (0, 1)]
    assert best["best_value"] == pytest.approx(max(t["metrics"]["val/acc_best"] for t in trials))
    assert set(best["best_params"]) == {"optimizer.lr", "optimizer.weight_decay"}


def test_report_of_a_single_job(tmp_path: Path) -> None:
    job = tmp_path / "sweep" / "0"
    job.mkdir(parents=True)
    (job / "results.json").write_text(
        json.dumps(
            {
                "status": "ok",
                "choices": {"head": "global", "pool": "max"},
                "params": {"total": 32862},
                "flops_per_image": 9048400,
                "metrics": {"val/acc_best": 0.5, "test/acc": 0.49},
                "epochs": 1,
                "seconds_per_epoch": 3.0,
            }
        )
    )
    text = report(tmp_path / "sweep").read_text()
    assert "| global | max | 32,862 | 9.05 | 50.00 | 49.00 | 3.0 | 1/1 |" in text


def test_wandb_sweep_parameters_compose(tmp_path: Path) -> None:
    spec = yaml.safe_load((ROOT / "scripts/wandb_sweep.yaml").read_text())
    assert spec["command"][-1] == "${args_no_hyphens}" and spec["program"] == "train.py"
    choices = {}
    for key, p in spec["parameters"].items():
        choices[key] = p.get("values") or ([p["value"]] if "value" in p else [p["min"], p["max"]])
    keys = list(choices)
    for combo in itertools.product(*choices.values()):
        args = [f"{k}={v}" for k, v in zip(keys, combo, strict=True)]  # as the agent writes them
        cfg = make_cfg(args, tmp_path)
        assert cfg.head.name == dict(zip(keys, combo, strict=True))["head"]
    assert spec["metric"]["name"] == "val/acc_best"
