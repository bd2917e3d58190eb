"""poolbench-dashboard on real (offline) sweeps: the W&B workspace and report specs it writes."""

import json
from pathlib import Path

import pytest
from conftest import FAST, WANDB, read_results, run_cli, wandb_summary
from helpers import wandb_group

from poolbench.review.report import report

SECTIONS = {
    "Accuracy vs cost": ["Scatter Plot", "Scatter Plot"],
    "Configurations": ["Parallel Coordinates Plot"],
    "Training curves": ["Run History Line Plot", "Run History Line Plot"],
    "Per-class accuracy": ["Bar Chart"],
    "Review images": ["Media Browser"] * 3,
    "Shift invariance": ["Bar Chart", "Bar Chart", "Media Browser"],
}


def sweep(tmp_path: Path, *overrides: str) -> Path:
    out = run_cli(
        [
            "train.py",
            "-m",
            *FAST,
            WANDB,  # the dashboard reads the sweep's W&B runs
            "trainer.max_epochs=1",
            *overrides,
            f"hydra.sweep.dir={tmp_path}/sweep",
            f"data.cache_dir={tmp_path}/cache",
        ]
    )
    assert out.returncode == 0, out.stderr[-3000:]  # every job finished, not only the first
    assert (tmp_path / "sweep/0/results.json").exists(), out.stderr[-3000:]
    return tmp_path / "sweep"


@pytest.mark.ci
def test_dry_run_writes_the_workspace_and_report(tmp_path: Path) -> None:
    sweep_dir = sweep(tmp_path, "head=flatten,global")
    jobs = [sweep_dir / "0", sweep_dir / "1"]
    runs = [wandb_summary(j) for j in jobs]
    group = wandb_group(jobs[0])
    assert group == wandb_group(jobs[1]) == f"{tmp_path.name}/sweep"
    report_md = report(sweep_dir).read_text()

    out = run_cli(["scripts/dashboard.py", str(sweep_dir), "--dry-run"])
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"wandb sync --project poolbench {sweep_dir}/*/wandb/offline-run-*" in out.stdout
    assert f"poolbench-dashboard {sweep_dir}" in out.stdout

    ws = json.loads((sweep_dir / "wandb_workspace.json").read_text())
    assert (ws["entity"], ws["project"]) == ("", "poolbench")  # offline runs name no entity
    sections = ws["spec"]["section"]["panelBankConfig"]["sections"]
    assert {s["name"]: [p["viewType"] for p in s["panels"]] for s in sections} == SECTIONS
    panels = {s["name"]: [p["config"] for p in s["panels"]] for s in sections}

    runset = ws["spec"]["section"]["runSets"][0]
    assert runset["filters"]["filters"] == [
        {"key": {"section": "run", "name": "group"}, "op": "=", "value": group, "disabled": False}
    ]
    assert runset["grouping"] == [
        {"section": "config", "name": "head.value"},
        {"section": "config", "name": "pool.value"},
    ]
    # Both jobs use pool=max: both runs get the first pool colour, as in accuracy_vs_params.png.
    colors = ws["spec"]["section"]["customRunColors"]
    assert {r["run_id"]: colors[r["run_id"]] for r in runs} == {
        r["run_id"]: "#1f77b4" for r in runs
    }

    scatter = [(p["xAxis"], p["yAxis"], p["xAxisLogScale"]) for p in panels["Accuracy vs cost"]]
    assert scatter == [
        ("summary:params/total", "summary:test/acc", True),
        ("summary:flops/forward", "summary:test/acc", True),
    ]
    assert [c["accessor"] for c in panels["Configurations"][0]["columns"]] == [
        "config:head.value",
        "config:pool.value",
        "config:config.value.optimizer.lr",
        "summary:params/total",
        "summary:val/acc_best",
        "summary:test/acc",
    ]
    curves = [
        (p["xAxis"], p["metrics"], p["groupAgg"], p["groupArea"]) for p in panels["Training curves"]
    ]
    assert curves == [
        ("epoch", ["val/acc"], "mean", "stddev"),
        ("epoch", ["train/loss_epoch"], "mean", "stddev"),
    ]
    classes = sorted(k for k in runs[0]["summary"] if k.startswith("test/acc_class/"))
    assert len(classes) == 10 and panels["Per-class accuracy"][0]["metrics"] == classes
    media = [p["mediaKeys"] for p in panels["Review images"]]
    assert media == [["test/confusion_matrix"], ["test/misclassified"], ["test/activations"]]
    consistency, curve, picture = panels["Shift invariance"]
    assert consistency["metrics"] == ["test/shift_consistency"]
    assert curve["metrics"] == [f"test/shift_acc/{s}" for s in range(9)]  # in shift order
    assert picture["mediaKeys"] == ["test/shift_curve"]
    media.append(["test/shift_curve"])

    # Every key a panel names is one the runs logged (read here by wandb's own CLI).
    for r in runs:
        summary, config = r["summary"], r["config"]
        shift = ["test/shift_consistency", *curve["metrics"]]
        for key in ["params/total", "flops/forward", "test/acc", "val/acc_best", *classes, *shift]:
            assert isinstance(summary[key], int | float), key
        for key in ["val/acc", "train/loss_epoch", "epoch"]:  # history keys end in the summary
            assert key in summary, key
        for key in media:
            assert summary[key[0]]["_type"] == "images/separated"
        assert config["head"] in ("flatten", "global") and config["pool"] == "max"
        assert config["config"]["optimizer"]["lr"] == 0.002

    # The report states report.md's figures: its table, claims and comparisons, word for word.
    rep = json.loads((sweep_dir / "wandb_report.json").read_text())
    blocks = rep["spec"]["blocks"]
    table = [b["content"] for b in blocks if b["type"] == "markdown-block"]
    assert len(table) == 1
    assert table[0] in report_md and "| flatten | max | 270,942 |" in table[0]
    items = [
        i["children"][0]["children"][0]["text"]
        for b in blocks
        if b["type"] == "list"
        for i in b["children"]
    ]
    bullets = [line[2:] for line in report_md.splitlines() if line.startswith("- ")]
    assert items == bullets and len(items) == 2
    # one seed per arm here: the claim is stated without an interval
    assert items[0].startswith("Global vs flatten head (pool=max): ")
    assert items[0].endswith("(1 vs 1 seeds; one seed: no interval).")
    assert items[1].startswith("head=global vs head=flatten (pool=max): 32,862 vs 270,942")
    grids = [
        b["metadata"]["runSets"][0]["filters"]["filters"]
        for b in blocks
        if b["type"] == "panel-grid"
    ]
    assert len(grids) == 2 and all(g[0]["value"] == group for g in grids)

    # --entity/--project override the runs' own settings.
    out = run_cli(
        ["scripts/dashboard.py", str(sweep_dir), "--dry-run", "--entity", "me", "--project", "p2"]
    )
    assert out.returncode == 0, out.stderr[-3000:]
    ws = json.loads((sweep_dir / "wandb_workspace.json").read_text())
    assert (ws["entity"], ws["project"]) == ("me", "p2")
    assert "wandb sync --entity me --project p2 " in out.stdout


@pytest.mark.slow
def test_runs_without_test_acc_are_one_error(tmp_path: Path) -> None:
    sweep_dir = sweep(tmp_path, "head=global", "trainer.limit_test_batches=0")  # never tests
    assert read_results(sweep_dir / "0")["status"] == "ok"
    assert "test/acc" not in wandb_summary(sweep_dir / "0")["summary"]

    out = run_cli(["scripts/dashboard.py", str(sweep_dir), "--dry-run"])
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr[-3000:]
    assert "summary key test/acc (Accuracy vs cost, Configurations)" in lines[0]
    assert str(sweep_dir) in lines[0]
    assert not list(sweep_dir.glob("wandb_*.json"))  # nothing written


def test_sync_command_reaches_the_runs_of_a_sweep_in_parts(tmp_path: Path) -> None:
    import glob

    import pytest

    from poolbench.review.dashboard import sync_command
    from poolbench.review.wandb_runs import RunLog

    runs = []
    for part, job in (("seeds_0_1", "0"), ("seeds_0_1", "1"), ("seeds_2", "0")):
        run_dir = tmp_path / part / job / "wandb" / f"offline-run-{part}-{job}"
        run_dir.mkdir(parents=True)
        runs.append(RunLog(run_dir, "", "", "", "", ""))
    command = sync_command(tmp_path, "", "p", runs)
    assert command == f"wandb sync --project p {tmp_path}/*/*/wandb/offline-run-*"
    matched = sorted(glob.glob(command.split()[-1]))
    assert matched == sorted(str(r.path) for r in runs)
    spaced = tmp_path / "my grid"  # a folder name with a space stays one shell word
    (spaced / "0" / "wandb" / "offline-run-x").mkdir(parents=True)
    run = RunLog(spaced / "0" / "wandb" / "offline-run-x", "", "", "", "", "")
    assert sync_command(spaced, "", "p", [run]).endswith(f"'{spaced}'/*/wandb/offline-run-*")
    one_part = [r for r in runs if "seeds_2" in r.path.parts]
    assert sync_command(tmp_path / "seeds_2", "me", "p", one_part) == (
        f"wandb sync --entity me --project p {tmp_path}/seeds_2/*/wandb/offline-run-*"
    )
    # Parts left in their default groups (each its folder's name): the fix is named.
    from poolbench.errors import DashboardError
    from poolbench.review.wandb_runs import one_value

    for r in runs:
        r.group = r.path.parts[-4]
    with pytest.raises(DashboardError) as err:
        one_value(runs, "group", tmp_path)
    assert str(err.value) == (
        f"the W&B runs under {tmp_path} have 2 different groups ['seeds_0_1', 'seeds_2']; pass "
        "one sweep folder (a sweep run in parts: give every part one logger.wandb.group)"
    )


@pytest.mark.slow
def test_each_panel_is_checked_where_wandb_keeps_its_keys(tmp_path: Path) -> None:
    import pytest

    from poolbench.errors import DashboardError
    from poolbench.review.panel_checks import check_keys, panel_keys
    from poolbench.review.wandb_runs import RunLog

    scatter = {"xAxis": "summary:params/total", "yAxis": "summary:test/acc"}
    columns = [{"accessor": "config:config.value.optimizer.lr"}, {"accessor": "config:head.value"}]
    panels = {
        "Scatter Plot": scatter,
        "Parallel Coordinates Plot": {"columns": columns},
        "Run History Line Plot": {"xAxis": "epoch", "metrics": ["val/acc"]},
        "Bar Chart": {"metrics": ["test/acc_class/cat"]},
        "Media Browser": {"mediaKeys": ["test/misclassified"]},
    }
    keys = {kind: panel_keys({"viewType": kind, "config": cfg}) for kind, cfg in panels.items()}
    assert keys == {
        "Scatter Plot": [("summary", "params/total"), ("summary", "test/acc")],
        # W&B keeps a config value under <key>.value: the run's own config has no .value
        "Parallel Coordinates Plot": [("config", "config.optimizer.lr"), ("config", "head")],
        "Run History Line Plot": [("history", "epoch"), ("history", "val/acc")],
        "Bar Chart": [("summary", "test/acc_class/cat")],
        "Media Browser": [("summary", "test/misclassified")],
    }
    with pytest.raises(AssertionError, match="no key check for panel type Markdown Panel"):
        panel_keys({"viewType": "Markdown Panel"})
    # a key the runs logged per step but never as a final value leaves a bar chart empty
    run = RunLog(tmp_path, "r", "n", "g", "", "p", config={"config": {"optimizer": {"lr": 0.1}}})
    run.history = {"test/acc_class/cat"}
    section = [("Per-class accuracy", {"viewType": "Bar Chart", "config": panels["Bar Chart"]})]
    with pytest.raises(DashboardError, match=r"summary key test/acc_class/cat \(Per-class"):
        check_keys(section, [run], tmp_path)
    run.summary = {"test/acc_class/cat"}
    lr = {"viewType": "Parallel Coordinates Plot", "config": {"columns": columns[:1]}}
    assert check_keys([*section, ("Configurations", lr)], [run], tmp_path) == 2


@pytest.mark.slow
def test_wandb_workspaces_still_serializes() -> None:
    """wandb_private.py's one private name (Report._to_model), on the installed release."""
    import wandb_workspaces
    import wandb_workspaces.reports.v2 as wr

    from poolbench.review.wandb_private import TO_MODEL, spec

    version = getattr(wandb_workspaces, "__version__", "?")
    assert callable(getattr(wr.Report, TO_MODEL, None)), (
        f"wandb_workspaces {version}: {TO_MODEL} moved"
    )
    wire = spec(wr.Report(entity="", project="p", title="t", blocks=[wr.H2("x")]))
    heading = [b for b in wire["spec"]["blocks"] if b["type"] == "heading"]
    assert wire["displayName"] == "t" and heading == [
        {"type": "heading", "children": [{"text": "x"}], "level": 2}
    ]


@pytest.mark.slow
def test_a_misspelt_option_is_one_line(tmp_path: Path) -> None:
    out = run_cli(["-m", "poolbench.review.dashboard", str(tmp_path), "--dryrun"])
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "error: unrecognized arguments: --dryrun (did you mean --dry-run?); see dashboard.py --help"
    ]
