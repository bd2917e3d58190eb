"""Multirun sweeps end to end: job folders, one finished W&B run per job, launchers, reports."""

import itertools
import json
import socket
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import FAST, ROOT, WANDB, make_cfg, read_results, run_cli, wandb_summary
from helpers import wandb_group

from poolbench.review.plots import plot_curves, plot_scatter
from poolbench.review.report import report
from poolbench.review.runs import find_jobs


def coloured_pixels(png: Path) -> int:
    """Pixels in a saturated colour: data and legend marks (the axes and text are grey)."""
    import numpy as np
    from PIL import Image

    rgb = np.asarray(Image.open(png).convert("RGB")).astype(int)
    return int((rgb.max(-1) - rgb.min(-1) > 80).sum())


def same_pixels(a: Path, b: Path) -> bool:
    import numpy as np
    from PIL import Image

    return np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))


def check_pictures(sweep_dir: Path, results: list[dict]) -> None:
    """The report's pictures show the jobs' numbers: read back from the figures, and drawn."""
    import csv
    import dataclasses
    import math

    from matplotlib.colors import to_rgba

    jobs = find_jobs(sweep_dir)
    scatter, data = plot_scatter(jobs, sweep_dir / "check_scatter.png")
    assert same_pixels(sweep_dir / "check_scatter.png", sweep_dir / "accuracy_vs_params.png")
    pools = sorted({r["choices"]["pool"] for r in results})
    drawn = {}
    containers = scatter.axes[0].containers  # one errorbar per head x pool, in the points' order
    assert len(containers) == len(data["points"])
    for c, p in zip(containers, data["points"], strict=True):
        (x, y), line = c.lines[0].get_xydata()[0], c.lines[0]
        # drawn at its count, or moved sideways (less than a tenth of a decade) off an equal one
        assert x == p["x"] and abs(math.log10(x / p["params"])) < 0.1
        assert y == p["acc_mean"]
        drawn[(p["params"], round(y, 4))] = (line.get_color(), line.get_marker())
    expected = {
        (r["params"]["total"], round(100 * r["metrics"]["test/acc"], 4)): r["choices"]
        for r in results
    }
    assert set(drawn) == set(expected)
    pool_color = {}
    for point, choices in expected.items():  # colour by pool, marker by head
        pool_color.setdefault(choices["pool"], to_rgba(drawn[point][0]))
        assert to_rgba(drawn[point][0]) == pool_color[choices["pool"]]
    assert len(set(pool_color.values())) == len(pools)
    markers = {expected[p]["head"]: m for p, (_, m) in drawn.items()}
    assert len(set(markers.values())) == len(markers) == 2
    untested = [dataclasses.replace(j, results={**j.results, "metrics": {}}) for j in jobs]
    blank, _ = plot_scatter(untested, sweep_dir / "blank.png")
    assert not blank.axes[0].containers
    # A blank plot (axes, legend) passes any file-size check; it lacks the data's coloured marks.
    assert coloured_pixels(sweep_dir / "accuracy_vs_params.png") > (
        coloured_pixels(sweep_dir / "blank.png") + 200
    )

    curves = plot_curves(find_jobs(sweep_dir), sweep_dir / "check_curves.png")
    assert same_pixels(sweep_dir / "check_curves.png", sweep_dir / "curves.png")
    lines, panel_of = {}, {}
    for ax in curves.axes:  # one panel per head, its lines coloured by pool as in the scatter
        for line in ax.get_lines():
            lines[line.get_label()] = line.get_xydata().tolist()
            panel_of[line.get_label()] = ax.get_title()
            pool = line.get_label().split("/")[1]
            assert to_rgba(line.get_color()) == pool_color[pool]  # as in the scatter plot
    assert {label: f"head={label.split('/')[0]}" for label in lines} == panel_of
    expected_curves = {}
    for job, r in zip(sorted(p for p in sweep_dir.iterdir() if p.is_dir()), results, strict=True):
        with (job / "csv/metrics.csv").open() as f:
            logged = [
                (int(float(m["epoch"])) + 1, 100 * float(m["val/acc"]))
                for m in csv.DictReader(f)
                if m["val/acc"]
            ]
        expected_curves[f"{r['choices']['head']}/{r['choices']['pool']}"] = logged
    assert lines.keys() == expected_curves.keys()
    for label, points in expected_curves.items():
        assert [tuple(p) for p in lines[label]] == points, label
    plot_curves([], sweep_dir / "blank.png")
    assert coloured_pixels(sweep_dir / "blank.png") == 0
    assert coloured_pixels(sweep_dir / "curves.png") > 100


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


@pytest.mark.ci
def test_two_heads_by_two_pools(tmp_path: Path) -> None:
    out = sweep(tmp_path, "head=flatten,global", "pool=max,avg", WANDB)
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
    # Each job says where it ran; the report adds up what the sweep cost.
    host = socket.gethostname()
    for r, run in zip(results, runs, strict=True):
        assert r["device"]["host"] == host and r["device"]["accelerator"] == "cpu"
        assert r["device"]["count"] == 1 and r["device"]["name"]
        assert r["ended_at"] - r["started_at"] == pytest.approx(r["seconds"], abs=0.01)
        assert run["config"]["device/host"] == host
        assert run["config"]["device/name"] == r["device"]["name"]
    # from the sweep process's start (Python, imports, Hydra: the one process of the basic
    # launcher, so every job names it) to the last job's end
    (process_start,) = {r["process_started_at"] for r in results}
    assert process_start < min(r["started_at"] for r in results)
    wall = max(r["ended_at"] for r in results) - process_start
    spans = sorted((r["started_at"], r["ended_at"]) for r in results)
    assert all(end <= start for (_, end), (start, _) in itertools.pairwise(spans))  # in turn
    rate = 4 / wall * 3600
    assert f"Sweep cost: 4 jobs in {wall / 60:.1f} min wall-clock ({rate:.0f} jobs/hour)" in text
    # one host held from the process's start to the end; the jobs' own seconds, summed apart
    assert f"devices held: {wall / 3600:.3f} CPU-hours (1 device x" in text
    assert f"jobs' summed time: {sum(r['seconds'] for r in results) / 3600:.3f} CPU-hours" in text
    check_pictures(tmp_path / "sweep", results)
    rows = (tmp_path / "sweep" / "results.csv").read_text().splitlines()
    assert len(rows) == 5


@pytest.mark.ci
def test_failing_job_leaves_the_others_complete(tmp_path: Path) -> None:
    out = sweep(
        tmp_path, "optimizer.lr=0.002,1e12,0.003", WANDB, epochs=4
    )  # the middle one diverges
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


# The joblib launcher (jobs at once, threads per job): a real 2-job sweep in test_promises.py,
# test_joblib_jobs_run_at_once_and_share_the_cores, whose jobs the report test reuses.


@pytest.mark.ci
def test_submitit_local_launcher(tmp_path: Path) -> None:
    out = sweep(tmp_path, "hydra/launcher=submitit_local", "head=flatten,global")
    assert out.returncode == 0, out.stderr[-3000:]
    totals = {read_results(tmp_path / f"sweep/{i}")["params"]["total"] for i in (0, 1)}
    assert totals == {270_942, 32_862}


@pytest.mark.ci
def test_optuna_search_runs_trials(tmp_path: Path) -> None:
    out = sweep(tmp_path, "hparams_search=optuna", "hydra.sweeper.n_trials=2")
    assert out.returncode == 0, out.stderr[-3000:]
    best = yaml.safe_load((tmp_path / "sweep/optimization_results.yaml").read_text())
    trials = [read_results(tmp_path / f"sweep/{i}") for i in (0, 1)]
    assert best["best_value"] == pytest.approx(max(t["metrics"]["val/acc_best"] for t in trials))
    assert set(best["best_params"]) == {"optimizer.lr", "optimizer.weight_decay"}


@pytest.mark.slow
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


README_TOTALS = {  # README, "Parameter counts": pool=max/avg share a count; stride adds 5,168
    **{
        (h, p): n
        for h, n in [("flatten", 270_942), ("global", 32_862), ("avg", 29_022), ("max", 29_022)]
        for p in ("max", "avg")
    },
    **{
        (h, "stride"): n + 5_168
        for h, n in [("flatten", 270_942), ("global", 32_862), ("avg", 29_022), ("max", 29_022)]
    },
}


@pytest.mark.slow
def test_wandb_sweep_parameters_compose(tmp_path: Path) -> None:
    from poolbench.training.job import build_module

    spec = yaml.safe_load((ROOT / "scripts/wandb_sweep.yaml").read_text())
    assert spec["command"][-1] == "${args_no_hyphens}" and spec["program"] == "train.py"
    choices = {}
    for key, p in spec["parameters"].items():
        choices[key] = p.get("values") or ([p["value"]] if "value" in p else [p["min"], p["max"]])
    keys = list(choices)
    for combo in itertools.product(*choices.values()):
        args = [f"{k}={v}" for k, v in zip(keys, combo, strict=True)]  # as the agent writes them
        cfg = make_cfg(args, tmp_path)
        # every combination the agent can send builds the net with the README's parameter count
        picked = dict(zip(keys, combo, strict=True))
        total = build_module(cfg, 10, None).net.param_counts()["total"]
        assert total == README_TOTALS[picked["head"], picked["pool"]]
    assert spec["metric"]["name"] == "val/acc_best"


def test_sweep_cost_adds_device_hours_per_accelerator(tmp_path: Path) -> None:
    from poolbench.review.cost import cost_line, sweep_cost
    from poolbench.review.runs import Job

    def job(start: float, seconds: float, accelerator: str, count: int, host: str) -> Job:
        device = {"accelerator": accelerator, "count": count, "host": host, "name": "H100"}
        results = {"started_at": start, "ended_at": start + seconds, "seconds": seconds}
        return Job(tmp_path, {**results, "device": device}, 0, {})

    # Two 2-GPU DDP jobs at once on one host, a third one later on another host.
    jobs = [
        job(0, 1800, "cuda", 2, "a"),
        job(0, 1800, "cuda", 2, "a"),
        job(1800, 1800, "cuda", 2, "b"),
    ]
    cost = sweep_cost(jobs)
    assert cost["wall_clock_s"] == 3600 and cost["jobs_per_hour"] == 3
    # The two jobs on host a shared its GPUs 0 and 1 for 30 min: 1 GPU-hour held, not 2.
    assert cost["held_hours"] == {"cuda": 2.0} and cost["devices_held"] == 4
    assert cost["job_hours"] == {"cuda": 3.0}
    assert cost_line(cost) == (
        "Sweep cost: 3 jobs in 60.0 min wall-clock (3 jobs/hour); devices held: 2.000 CUDA-hours "
        "(4 devices x the time each was in use); jobs' summed time: 3.000 CUDA-hours; "
        "on H100 (2 hosts)."
    )
    # Twelve jobs sharing one GPU (the H200 lecture grid): held once, summed twelve times.
    shared = [job(0, 234, "cuda", 1, "a") for _ in range(12)]
    for j in shared:
        j.results["device"]["cuda_visible_devices"] = "3"
    cost = sweep_cost(shared)
    assert cost["held_hours"] == {"cuda": 234 / 3600} and cost["devices_held"] == 1
    assert cost["job_hours"] == {"cuda": pytest.approx(12 * 234 / 3600)}
    # Jobs on GPUs 0 and 1 (joblib_gpus placement) hold two devices, each for its own jobs' span.
    shared[0].results["device"]["cuda_visible_devices"] = "1"
    shared[0].results["ended_at"] = 1000
    assert sweep_cost(shared)["held_hours"] == {"cuda": (234 + 1000) / 3600}
    assert sweep_cost([Job(tmp_path, {"seconds": 5}, 0, {})]) is None  # older results.json

    # The same grid in two parts (two sweep folders, a day apart): the idle day is not counted.
    first, later = job(0, 1800, "cuda", 1, "a"), job(86_400, 600, "cuda", 1, "a")
    first.dir, later.dir = tmp_path / "seeds_0_1" / "0", tmp_path / "seeds_2" / "0"
    cost = sweep_cost([first, later])
    assert cost["wall_clock_s"] == 2400 and cost["parts"] == 2
    assert cost_line(cost).startswith("Sweep cost: 2 jobs in 40.0 min wall-clock over 2 parts (3 ")
    # Two parts at once on two hosts (0-1800 s and 600-2400 s): 2400 s, not 3600.
    other = job(600, 1800, "cuda", 1, "b")
    other.dir = tmp_path / "seeds_2" / "0"
    assert sweep_cost([first, other])["wall_clock_s"] == 2400
    # A part counts from its first process's start (Python and imports before the first job):
    # a worker started 20 s before its first job, which ran 0-1800 s; another job of the same
    # worker, started later, names the same process start.
    first.results["process_started_at"] = -20
    later_job = job(1800, 600, "cuda", 1, "a")
    later_job.dir, later_job.results["process_started_at"] = first.dir.parent / "1", -20
    assert sweep_cost([first, later_job])["wall_clock_s"] == 2420


def test_curves_colour_pools_as_the_scatter_and_style_variants(tmp_path: Path) -> None:
    from matplotlib.colors import to_rgba

    from poolbench.review.runs import Job

    jobs = []
    for pool, variant, base in (
        ("max", "lr=0.1", 50),
        ("max", "lr=0.01", 40),
        ("avg", "lr=0.1", 30),
    ):
        results = {"status": "ok", "choices": {"head": "global", "pool": pool}}
        jobs.append(Job(tmp_path, results, 0, {}, variant, [(0, base / 100), (1, base / 90)]))
    fig = plot_curves(jobs, tmp_path / "curves.png")
    lines = {line.get_label(): line for ax in fig.axes for line in ax.get_lines()}
    assert sorted(lines) == ["global/avg lr=0.1", "global/max lr=0.01", "global/max lr=0.1"]
    assert lines["global/max lr=0.1"].get_ydata().tolist() == [50.0, 50 / 0.9]
    tested = [  # one count, one accuracy: the scatter draws the two side by side
        Job(
            tmp_path / pool,
            {
                "status": "ok",
                "choices": {"head": "global", "pool": pool},
                "params": {"total": 32_862},
                "metrics": {"test/acc": 0.5},
            },
            0,
            {},
        )
        for pool in ("avg", "max")
    ]
    scatter, data = plot_scatter(tested, tmp_path / "scatter.png")
    scatter_color = {}
    for container, point in zip(scatter.axes[0].containers, data["points"], strict=True):
        scatter_color[point["pool"]] = to_rgba(container.lines[0].get_color())
    assert sorted(scatter_color) == ["avg", "max"]
    for label, line in lines.items():  # the pool's colour; the variant's line style
        assert to_rgba(line.get_color()) == scatter_color[label.split("/")[1].split()[0]]
    assert lines["global/max lr=0.1"].get_linestyle() == lines["global/avg lr=0.1"].get_linestyle()
    assert lines["global/max lr=0.1"].get_linestyle() != lines["global/max lr=0.01"].get_linestyle()
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["pool=avg", "pool=max", "lr=0.01", "lr=0.1"]
