"""Sweep folder -> a saved W&B workspace and report for its runs (offline: their specs as JSON).

Built with wandb-workspaces (W&B's workspaces and reports as code). Every key a panel names is
checked against what the sweep's W&B runs logged, read from their .wandb files, before anything
is written or saved.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from poolbench.errors import DashboardError, OneLineArgumentParser, answered
from poolbench.review.wandb_private import spec
from poolbench.training.loggers import wandb_online

WORKSPACE_FILE = "wandb_workspace.json"
REPORT_FILE = "wandb_report.json"

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


@dataclass
class RunLog:
    """What one W&B run recorded, read back from its .wandb file."""

    path: Path
    run_id: str
    name: str
    group: str
    entity: str
    project: str
    config: dict[str, Any] = field(default_factory=dict)
    summary: set[str] = field(default_factory=set)
    history: set[str] = field(default_factory=set)

    def config_has(self, dotted: str) -> bool:
        node: Any = self.config
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return True


def wandb_cli() -> str:
    beside = Path(sys.executable).with_name("wandb")
    found = str(beside) if beside.exists() else shutil.which("wandb")
    if not found:
        raise DashboardError("the wandb command is not installed; pip install wandb")
    return found


def read_run(run_dir: Path) -> RunLog:
    # The wandb SDK reads .wandb files in its Go core, not in Python: `leet inspect` prints them.
    out = subprocess.run(
        [wandb_cli(), "leet", "inspect", "--json", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if out.returncode != 0:
        raise DashboardError(f"cannot read the W&B run {run_dir}: {out.stderr.strip()[-300:]}")
    run: dict[str, Any] = {}
    log = RunLog(run_dir, "", "", "", "", "")
    for line in out.stdout.splitlines():
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        kind = record.get("type")
        if kind == "run":
            run = record["run"]
        elif kind == "config":
            log.config.update(record["config"].get("update", {}))
        elif kind == "summary":
            log.summary.update(record["summary"].get("update", {}))
        elif kind == "history":
            log.history.update(record["history"].get("item", {}))
    # Media arrive flattened (test/confusion_matrix._type, .filenames, ...): name the media key.
    for keys in (log.summary, log.history):
        keys |= {k.removesuffix("._type") for k in keys if k.endswith("._type")}
    log.run_id = run.get("run_id", "")
    log.name = run.get("display_name", "")
    log.group = run.get("run_group", "")
    log.entity = run.get("entity", "")
    log.project = run.get("project", "")
    return log


def find_runs(sweep_dir: Path) -> list[RunLog]:
    from poolbench.review.report import load

    jobs, _ = load(sweep_dir)
    run_dirs = [
        d
        for j in jobs
        for d in sorted((j.dir / "wandb").glob("*run-*"))
        if d.is_dir() and not d.is_symlink() and d.name != "latest-run"
    ]
    if not run_dirs:
        raise DashboardError(
            f"no W&B runs under {sweep_dir} (*/wandb/offline-run-*): were its jobs run with "
            "logger=default or logger=wandb?"
        )
    return [read_run(d) for d in run_dirs]


def one_value(runs: list[RunLog], attr: str, sweep_dir: Path) -> str:
    values = sorted({getattr(r, attr) for r in runs})
    if len(values) != 1:
        parts = " (a sweep run in parts: give every part one logger.wandb.group)"
        raise DashboardError(
            f"the W&B runs under {sweep_dir} have {len(values)} different {attr}s {values}; "
            f"pass one sweep folder{parts if attr == 'group' else ''}"
        )
    return values[0]


# ---- the workspace and report, as wandb-workspaces objects ----


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

    from poolbench.review.report import SIGNS, claims, comparison_line, comparisons, load, table

    jobs, rows = load(sweep_dir)  # report.md's own rows and comparisons, not a second computation
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
            [wr.H2("The lecture's claims"), wr.P(SIGNS), wr.UnorderedList(items=stated)]
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


# ---- checks: every panel's keys against what the runs logged ----


def panel_keys(panel: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, key) pairs a serialized panel reads: where is summary, history or config."""
    kind, cfg = panel["viewType"], panel.get("config", {})

    def split(accessor: str) -> tuple[str, str]:
        where, key = accessor.split(":", 1)
        # W&B stores config values under <key>.value (nested: config.value.optimizer.lr).
        if where == "config":
            top, _, rest = key.partition(".value")
            key = top + rest
        return where, key

    if kind == "Scatter Plot":
        return [split(cfg[a]) for a in ("xAxis", "yAxis") if a in cfg]
    if kind == "Parallel Coordinates Plot":
        return [split(c["accessor"]) for c in cfg.get("columns", [])]
    if kind == "Run History Line Plot":
        return [("history", k) for k in [cfg.get("xAxis"), *cfg.get("metrics", [])] if k]
    if kind == "Bar Chart":
        return [("summary", k) for k in cfg.get("metrics", [])]
    if kind == "Media Browser":
        return [("summary", k) for k in cfg.get("mediaKeys", [])]
    raise AssertionError(f"no key check for panel type {kind}")


def workspace_panels(workspace_spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    sections = workspace_spec["spec"]["section"]["panelBankConfig"]["sections"]
    return [(s["name"], p) for s in sections for p in s["panels"]]


def check_keys(
    panels: list[tuple[str, dict[str, Any]]], runs: list[RunLog], sweep_dir: Path
) -> int:
    logged = {
        "summary": set().union(*(r.summary for r in runs)),
        "history": set().union(*(r.history for r in runs)),
    }
    missing: dict[str, list[str]] = {}
    checked = 0
    for section, panel in panels:
        for where, key in panel_keys(panel):
            checked += 1
            ok = any(r.config_has(key) for r in runs) if where == "config" else key in logged[where]
            if not ok:
                missing.setdefault(f"{where} key {key}", []).append(section)
    if missing:
        named = ", ".join(f"{k} ({', '.join(sorted(set(v)))})" for k, v in missing.items())
        raise DashboardError(
            f"the W&B runs under {sweep_dir} never logged {named}; did its jobs get through "
            "training and testing? (nothing written: those panels would be empty)"
        )
    return checked


# ---- saving ----


def sync_command(sweep_dir: Path, entity: str, project: str, runs: list[RunLog]) -> str:
    where = (f"--entity {entity} " if entity else "") + f"--project {project}"
    # <job>/wandb/offline-run-*, or <part>/<job>/wandb/... for a sweep run in parts.
    depths = sorted({len(r.path.relative_to(sweep_dir).parts) - 2 for r in runs}) or [1]
    globs = " ".join(f"{shlex.quote(str(sweep_dir))}/{'*/' * d}wandb/offline-run-*" for d in depths)
    return f"wandb sync {where} {globs}"


def dashboard(
    sweep_dir: Path,
    entity: str | None = None,
    project: str | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    sweep_dir = Path(sweep_dir)
    runs = find_runs(sweep_dir)
    group = one_value(runs, "group", sweep_dir)
    if not group:
        raise DashboardError(
            f"the W&B runs under {sweep_dir} have no group: was it run as a sweep (-m)?"
        )
    project = project or one_value(runs, "project", sweep_dir)
    entity = entity or one_value(runs, "entity", sweep_dir)  # empty for runs made offline
    online = not dry_run and wandb_online()
    if online and not entity:
        import wandb

        entity = wandb.Api().default_entity or ""
    name = f"poolbench {group}"
    workspace = build_workspace(runs, entity, project, group, name)
    report = build_report(sweep_dir, entity, project, group, online)
    workspace_spec, report_spec = spec(workspace), spec(report)
    checked = check_keys(workspace_panels(workspace_spec), runs, sweep_dir)

    result: dict[str, Any] = {
        "group": group,
        "entity": entity,
        "project": project,
        "runs": len(runs),
        "keys_checked": checked,
        "sync": sync_command(sweep_dir, entity, project, runs),
    }
    if not online:
        (sweep_dir / WORKSPACE_FILE).write_text(json.dumps(workspace_spec, indent=1) + "\n")
        (sweep_dir / REPORT_FILE).write_text(json.dumps(report_spec, indent=1) + "\n")
        result["files"] = [str(sweep_dir / WORKSPACE_FILE), str(sweep_dir / REPORT_FILE)]
        return result

    import wandb

    uploaded = wandb.Api().runs(f"{entity}/{project}", filters={"group": group}, per_page=1)
    if len(uploaded) == 0:
        raise DashboardError(
            f"W&B has no runs of group {group} in {entity}/{project}; upload them first: "
            f"{result['sync']}"
        )
    workspace.save()
    report.save()
    result["workspace_url"] = workspace.url
    result["report_url"] = report.url
    return result


def main(argv: list[str] | None = None) -> None:
    parser = OneLineArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "sweep_dir", type=Path, help="a sweep folder, e.g. outputs/train-sweep/<date>"
    )
    parser.add_argument("--entity", help="W&B entity (default: the runs', else your default)")
    parser.add_argument("--project", help="W&B project (default: the runs', i.e. poolbench)")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help=f"only write {WORKSPACE_FILE} and {REPORT_FILE} into the sweep folder",
    )
    args = parser.parse_args(argv)
    # bad input: one error: line, exit 2
    result = answered(dashboard, args.sweep_dir, args.entity, args.project, args.dry_run)
    print(
        f"{result['runs']} W&B runs of group {result['group']}: "
        f"{result['keys_checked']} panel keys checked against what they logged"
    )
    if "files" in result:
        why = "--dry-run" if args.dry_run else "offline: no W&B credentials (wandb login)"
        print(f"{why}: wrote {' and '.join(result['files'])}")
        again = f"poolbench-dashboard {args.sweep_dir}"
        again += f" --entity {args.entity}" if args.entity else ""
        again += f" --project {args.project}" if args.project else ""
        print("to make the dashboard in W&B, upload the runs and run this again with credentials:")
        print(f"  {result['sync']}")
        print(f"  {again}")
    else:
        print(f"workspace: {result['workspace_url']}")
        print(f"report:    {result['report_url']}")


if __name__ == "__main__":
    main()
