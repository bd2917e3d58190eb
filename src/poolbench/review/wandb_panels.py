"""The dashboard's W&B workspace and report, as wandb-workspaces objects (W&B's workspaces and
reports as code): which panels, on which keys, grouped and coloured how. The report states
report.md's own table, claims and comparisons."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from poolbench.review.claims import claims, lecture
from poolbench.review.comparisons import comparison_line, comparisons
from poolbench.review.runs import load_sweep
from poolbench.review.stats import summarize
from poolbench.review.tables import table
from poolbench.review.wandb_runs import RunLog

COST_KEYS = ["params/total", "flops/forward"]
# W&B gets train/loss per step and per epoch (Lightning: train/loss_step, train/loss_epoch).
CURVE_KEYS = ["val/acc", "train/loss_epoch"]
EPOCH_KEY = "epoch"
MEDIA_KEYS = ["test/confusion_matrix", "test/misclassified", "test/activations"]
CLASS_PREFIX = "test/acc_class/"
SHIFT_KEY = "test/shift_consistency"  # shift_invariance.py, where the runs measured it
# The optimizer's settings are logged inside the resolved config, so W&B knows them as
# config.optimizer.lr; the option names (head, pool, ...) are logged flat beside it.
PARALLEL = [
    ("config", "head"),
    ("config", "pool"),
    ("config", "config.optimizer.lr"),
    ("summary", "params/total"),
    ("summary", "val/acc_best"),
    ("summary", "test/acc"),
]


def run_pool_colors(runs: list[RunLog]) -> dict[str, str]:
    # the offline pictures' colours (plotting.py), so a pool looks the same in both
    from poolbench.review.plotting import pool_colors

    return pool_colors(list({str(r.config.get("pool")) for r in runs}))


def class_keys(runs: list[RunLog]) -> list[str]:
    keys = sorted({k for r in runs for k in r.summary if k.startswith(CLASS_PREFIX)})
    return keys or [CLASS_PREFIX + "*"]  # reported as missing by check_keys


def shift_section(runs: list[RunLog]) -> list[Any]:
    """Consistency and the accuracy-under-shift curve (mean ± std over seeds), and each run's
    curve picture; no section where no run measured shifts (~callbacks.shift_invariance)."""
    import wandb_workspaces.reports.v2 as wr
    import wandb_workspaces.workspaces as ws

    if not any(SHIFT_KEY in r.summary for r in runs):
        return []
    shifts = sorted(
        {k for r in runs for k in r.summary if k.startswith("test/shift_acc/")},
        key=lambda k: int(k.rsplit("/", 1)[1]),
    )
    bars = {"groupby_aggfunc": "mean", "groupby_rangefunc": "stddev"}
    panels = [
        wr.BarPlot(
            title="shift consistency (Zhang 2019; mean ± std over seeds)",
            metrics=[SHIFT_KEY],
            **bars,
        ),
        wr.BarPlot(title="accuracy at diagonal shifts of 0, 1, … px", metrics=shifts, **bars),
        wr.MediaBrowser(title="test/shift_curve", media_keys=["test/shift_curve"], num_columns=2),
    ]
    return [ws.Section(name="Shift invariance", panels=panels, is_open=True)]


def cost_panels() -> list[Any]:
    import wandb_workspaces.reports.v2 as wr

    return [
        wr.ScatterPlot(
            title=f"test/acc vs {x} (log x; colour: pool)", x=x, y="test/acc", log_x=True
        )
        for x in COST_KEYS
    ]


def parallel_panel() -> Any:
    import wandb_workspaces.reports.v2 as wr

    metric = {"config": wr.Config, "summary": wr.SummaryMetric}
    columns = [
        wr.ParallelCoordinatesPlotColumn(metric=metric[kind](key), log=key == "params/total")
        for kind, key in PARALLEL
    ]
    return wr.ParallelCoordinatesPlot(title="head, pool, lr -> cost and accuracy", columns=columns)


def curve_panels() -> list[Any]:
    import wandb_workspaces.reports.v2 as wr

    # Runs are grouped by head and pool (the runset), so seeds draw as a mean with a std band.
    return [
        wr.LinePlot(
            title=f"{y} per epoch (mean ± std over seeds)",
            x=EPOCH_KEY,
            y=[y],
            groupby_aggfunc="mean",
            groupby_rangefunc="stddev",
        )
        for y in CURVE_KEYS
    ]


def build_workspace(runs: list[RunLog], entity: str, project: str, group: str, name: str) -> Any:
    import wandb_workspaces.reports.v2 as wr
    import wandb_workspaces.workspaces as ws

    colors = run_pool_colors(runs)
    pairs = sorted({(str(r.config.get("head")), str(r.config.get("pool"))) for r in runs})
    sections = [
        ws.Section(name="Accuracy vs cost", panels=cost_panels(), is_open=True),
        ws.Section(name="Configurations", panels=[parallel_panel()], is_open=True),
        ws.Section(name="Training curves", panels=curve_panels(), is_open=True),
        ws.Section(
            name="Per-class accuracy",
            panels=[
                wr.BarPlot(
                    title="test accuracy per class (mean ± std over seeds)",
                    metrics=class_keys(runs),
                    groupby_aggfunc="mean",
                    groupby_rangefunc="stddev",
                )
            ],
            is_open=True,
        ),
        ws.Section(
            name="Review images",
            panels=[wr.MediaBrowser(title=k, media_keys=[k], num_columns=2) for k in MEDIA_KEYS],
            is_open=True,
        ),
        *shift_section(runs),
    ]
    return ws.Workspace(
        entity=entity,
        project=project,
        name=name,
        sections=sections,
        runset_settings=ws.RunsetSettings(
            filters=[ws.Metric("Group") == group],
            groupby=[ws.Config("head"), ws.Config("pool")],
            # W&B's scatter has no per-point marker or colour-by setting: colour each run (and
            # each head/pool group) by its pool, as in accuracy_vs_params.png.
            run_settings={
                r.run_id: ws.RunSettings(color=colors[str(r.config.get("pool"))]) for r in runs
            },
            group_colors={ws.GroupPath(h, p): colors[p] for h, p in pairs},
            pinned_columns=[f"summary:{k}" for k in ("test/acc", "val/acc_best", "params/total")],
        ),
    )


def build_report(sweep_dir: Path, entity: str, project: str, group: str, online: bool) -> Any:
    import wandb_workspaces.reports.v2 as wr
    import wandb_workspaces.workspaces as ws

    jobs = load_sweep(sweep_dir)
    rows = summarize(jobs)  # report.md's own rows and comparisons, not a second computation
    compared = [comparison_line(c) for c in comparisons(rows)]
    stated = claims(rows)
    # A runset that names its entity looks the project up on W&B when serialized; offline it names
    # none, and W&B reads the report's own project.
    runset = wr.Runset(
        entity=entity if online else "",
        project=project,
        name=group,
        filters=[ws.Metric("Group") == group],
        groupby=["config.head", "config.pool"],
    )
    blocks = [
        wr.P(
            f"{len(jobs)} jobs, {sum(j.ok for j in jobs)} ok, W&B group {group}. "
            "Figures from scripts/report.py (report.md in the sweep folder); "
            "accuracies: mean ± std over seeds."
        ),
        *(
            [wr.H2("The lecture's claims"), wr.P(lecture().signs), wr.UnorderedList(items=stated)]
            if stated
            else []
        ),
        wr.H2("What the lecture compares"),
        wr.UnorderedList(items=compared)
        if compared
        else wr.P("No pair differs in head or pool only."),
        wr.H2("Every configuration"),
        wr.MarkdownBlock(text="\n".join(table(rows))),
        wr.H2("Accuracy vs cost"),
        wr.PanelGrid(runsets=[runset], panels=[*cost_panels(), parallel_panel()]),
        wr.H2("Training curves"),
        wr.PanelGrid(runsets=[runset], panels=curve_panels()),
    ]
    return wr.Report(
        entity=entity,
        project=project,
        title=f"poolbench sweep {group}",
        description="Pooling and heads: accuracy against parameters and FLOPs.",
        blocks=blocks,
    )
