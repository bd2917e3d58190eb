"""Sweep folder -> report.md, results.csv, accuracy_vs_params.png, curves.png.

Reads only what jobs left on disk (results.json, .hydra/, csv/metrics.csv): no network, no W&B.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from poolbench.errors import OneLineArgumentParser, UserError, answered
from poolbench.review import shift_report
from poolbench.review.shift_report import CONSISTENCY

PLAIN_KEYS = {"head", "pool", "seed"}  # the grid's axes; other varying overrides name a variant


@dataclass
class Job:
    dir: Path
    results: dict[str, Any]
    seed: Any
    overrides: dict[str, str]
    variant: str = ""
    curve: list[tuple[int, float]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.results.get("status") == "ok"

    def metric(self, key: str) -> float | None:
        return self.results.get("metrics", {}).get(key)


def read_curve(job_dir: Path) -> list[tuple[int, float]]:
    path = job_dir / "csv" / "metrics.csv"
    if not path.exists():
        return []
    with path.open() as f:
        return [
            (int(float(r["epoch"])), float(r["val/acc"]))
            for r in csv.DictReader(f)
            if r.get("val/acc")
        ]


def read_job(results_file: Path) -> Job:
    job_dir = results_file.parent
    results = json.loads(results_file.read_text())
    overrides_file = job_dir / ".hydra" / "overrides.yaml"
    overrides = yaml.safe_load(overrides_file.read_text()) if overrides_file.exists() else []
    config_file = job_dir / ".hydra" / "config.yaml"
    seed = yaml.safe_load(config_file.read_text()).get("seed") if config_file.exists() else None
    pairs = dict(o.split("=", 1) for o in overrides or [] if "=" in o)
    return Job(job_dir, results, seed, pairs, curve=read_curve(job_dir))


def find_jobs(sweep_dir: Path) -> list[Job]:
    files = sorted(sweep_dir.rglob("results.json"), key=lambda p: str(p))
    jobs = [read_job(f) for f in files if ".submitit" not in f.parts]
    # Overrides that differ between jobs, beyond head/pool/seed, name a variant of the config.
    keys = {k for j in jobs for k in j.overrides if k not in PLAIN_KEYS}
    varying = sorted(k for k in keys if len({j.overrides.get(k) for j in jobs}) > 1)
    for j in jobs:
        j.variant = ",".join(f"{k}={j.overrides[k]}" for k in varying if k in j.overrides)
    return jobs


def config_key(job: Job) -> tuple[str, str, str]:
    c = job.results.get("choices", {})
    return c.get("head", "?"), c.get("pool", "?"), job.variant


def mean_std(values: list[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def fmt(values: list[float], scale: float = 100.0) -> str:
    if not values:
        return "–"
    m, s = mean_std(values)
    return f"{m * scale:.2f} ± {s * scale:.2f}" if len(values) > 1 else f"{m * scale:.2f}"


def summarize(jobs: list[Job]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str, str], list[Job]] = defaultdict(list)
    for job in jobs:
        groups[config_key(job)].append(job)
    rows = []
    for (head, pool, variant), members in sorted(groups.items()):
        ok = [j for j in members if j.ok]
        ref = (ok or members)[0].results
        per_epoch = [j.results.get("seconds_per_epoch") for j in ok]
        rows.append(
            {
                "head": head,
                "pool": pool,
                "variant": variant,
                "jobs": len(members),
                "ok": len(ok),
                "params": ref.get("params", {}).get("total"),
                "mflops": (ref.get("flops_per_image") or 0) / 1e6,
                "val_acc_best": [
                    j.metric("val/acc_best") for j in ok if j.metric("val/acc_best") is not None
                ],
                "test_acc": [j.metric("test/acc") for j in ok if j.metric("test/acc") is not None],
                "knn_acc": [
                    j.metric("embed/knn_acc") for j in ok if j.metric("embed/knn_acc") is not None
                ],
                "consistency": [  # shift invariance (shift_invariance.py), where measured
                    j.metric(CONSISTENCY) for j in ok if j.metric(CONSISTENCY) is not None
                ],
                "s_per_epoch": statistics.fmean([s for s in per_epoch if s])
                if any(per_epoch)
                else None,
                "epochs": ref.get("epochs"),
            }
        )
    return rows


# The lecture's two questions: what the head costs and buys (flatten vs. global), and what the
# pooling operation buys (max vs. avg). Each other head/pool is compared with the same reference.
REFERENCE = {"head": "flatten", "pool": "max"}


# The lecture's three claims, each stated in report.md as a - b with its 95% CI over seeds, b
# being the REFERENCE choice as in the comparisons (one sign convention on the page):
# (axis, a, b, the axis held fixed, its value in the lecture's net, wording).
CLAIMS = [
    ("pool", "avg", "max", "head", "flatten", "Average vs max pooling"),
    ("head", "global", "flatten", "pool", "max", "Global vs flatten head"),
    ("pool", "stride", "max", "head", "flatten", "Strided conv vs max pooling"),
]
SIGNS = (
    "Each difference reads a - b in test-accuracy points, b being the lecture's net's choice "
    "(flatten head, max pooling), here and in the comparisons."
)
# How a verdict names an arm; keyed by axis too, as heads and pools share names (max, avg).
ARM_NAMES = {
    ("pool", "max"): "max pooling",
    ("pool", "avg"): "average pooling",
    ("pool", "stride"): "strided conv",
    ("head", "flatten"): "the flatten head",
    ("head", "global"): "the global head",
}


def welch_ci(a: list[float], b: list[float], level: float = 0.95) -> tuple[float, float] | None:
    """CI of mean(a) - mean(b) in points (x100): Welch's t, Welch-Satterthwaite df."""
    if len(a) < 2 or len(b) < 2:
        return None
    from scipy import stats  # here, so that importing the report stays light

    diff = 100 * (statistics.fmean(a) - statistics.fmean(b))
    if statistics.variance(a) + statistics.variance(b) == 0:  # identical seeds: df is 0/0
        return diff, diff
    import warnings

    with warnings.catch_warnings():  # one arm with identical seeds (APS's consistency of 1.0)
        warnings.filterwarnings("ignore", "Precision loss", RuntimeWarning)
        ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(level)
    return 100 * float(ci.low), 100 * float(ci.high)


def comparisons(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pairs of configurations that differ in one axis (head or pool), everything else equal."""
    out = []
    for axis, other in (("head", "pool"), ("pool", "head")):
        values = sorted({r[axis] for r in rows})
        ref = REFERENCE[axis] if REFERENCE[axis] in values else values[0]
        by_key = {(r[axis], r[other], r["variant"]): r for r in rows}
        for r in rows:
            base = by_key.get((ref, r[other], r["variant"]))
            if r[axis] == ref or base is None or not (r["test_acc"] and base["test_acc"]):
                continue
            acc, acc_ref = mean_std(r["test_acc"])[0], mean_std(base["test_acc"])[0]
            out.append(
                {
                    "axis": axis,
                    "a": r[axis],
                    "b": ref,
                    "fixed": f"{other}={r[other]}" + (f" {r['variant']}" if r["variant"] else ""),
                    "params_a": r["params"],
                    "params_b": base["params"],
                    "test_acc_a": acc,
                    "test_acc_b": acc_ref,
                    "delta_points": 100 * (acc - acc_ref),
                    "ci_points": welch_ci(r["test_acc"], base["test_acc"]),
                    "seeds": (len(r["test_acc"]), len(base["test_acc"])),
                    "consistency_a": r["consistency"],
                    "consistency_b": base["consistency"],
                    "consistency_ci": welch_ci(r["consistency"], base["consistency"]),
                }
            )
    return out


def comparison_line(c: dict[str, Any]) -> str:
    params = ""
    if c["params_a"] and c["params_b"]:
        params = (
            f"{c['params_a']:,} vs {c['params_b']:,} parameters "
            f"(x{c['params_a'] / c['params_b']:.2f}), "
        )
    ci = c.get("ci_points")
    interval = f", 95% CI {ci[0]:+.2f} to {ci[1]:+.2f}" if ci else ""
    return (
        f"{c['axis']}={c['a']} vs {c['axis']}={c['b']} ({c['fixed']}): {params}"
        f"test/acc {100 * c['test_acc_a']:.2f}% vs {100 * c['test_acc_b']:.2f}% "
        f"({c['delta_points']:+.2f} points{interval}; "
        f"means over {c['seeds'][0]} and {c['seeds'][1]} seeds)"
    )


def verdict(claim: tuple[str, ...], ci: tuple[float, float], seeds: tuple[int, int]) -> str:
    axis, a, b = claim[:3]
    if ci[0] > 0:
        return f"{ARM_NAMES[axis, a]} is better at this budget"
    if ci[1] < 0:
        return f"{ARM_NAMES[axis, b]} is better at this budget"
    n = seeds[0] if seeds[0] == seeds[1] else f"{seeds[0]} vs {seeds[1]}"
    return f"no difference resolved with {n} seeds"


def claim_sentence(claim: tuple[str, ...], a: dict[str, Any], b: dict[str, Any]) -> str:
    fixed_axis, fixed_value, title = claim[3:]
    acc_a, acc_b = a["test_acc"], b["test_acc"]
    mean_a, mean_b = statistics.fmean(acc_a), statistics.fmean(acc_b)
    params = ""
    if a["params"] and b["params"] and a["params"] != b["params"]:
        params = f" with {a['params']:,} vs {b['params']:,} parameters"
    seeds = (len(acc_a), len(acc_b))
    ci = welch_ci(acc_a, acc_b)
    if ci is None:
        evidence = f"({seeds[0]} vs {seeds[1]} seeds; one seed: no interval)"
    else:
        evidence = (
            f"(95% CI {ci[0]:+.2f} to {ci[1]:+.2f} over {seeds[0]} vs {seeds[1]} seeds): "
            + verdict(claim, ci, seeds)
        )
    return (
        f"{title} ({fixed_axis}={fixed_value}): "
        f"{100 * mean_a:.2f}% vs {100 * mean_b:.2f}% test accuracy{params}, "
        f"{100 * (mean_a - mean_b):+.2f} points {evidence}."
    )


def claims(rows: list[dict[str, Any]]) -> list[str]:
    """One sentence per lecture claim whose two arms the sweep ran (plain config, no variant)."""
    plain = {(r["head"], r["pool"]): r for r in rows if not r["variant"]}
    out = []
    for claim in CLAIMS:
        axis, a, b, fixed_axis, fixed_value = claim[:5]
        choices = [{axis: v, fixed_axis: fixed_value} for v in (a, b)]
        arms = [plain.get((c["head"], c["pool"])) for c in choices]
        if all(arm and arm["test_acc"] for arm in arms):
            out.append(claim_sentence(claim, *arms))
    return out


def write_csv(jobs: list[Job], path: Path) -> None:
    fields = [
        "job",
        "head",
        "pool",
        "variant",
        "seed",
        "status",
        "params_total",
        "flops_per_image",
        "val_acc_best",
        "test_acc",
        "knn_acc",  # embed.py's kNN accuracy of the head's vectors, where it ran
        "shift_consistency",  # test/shift_consistency, where the run measured it
        "epochs",
        "seconds_per_epoch",
        "error",
    ]
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for j in jobs:
            head, pool, variant = config_key(j)
            w.writerow(
                {
                    "job": str(j.dir),
                    "head": head,
                    "pool": pool,
                    "variant": variant,
                    "seed": j.seed,
                    "status": j.results.get("status"),
                    "params_total": j.results.get("params", {}).get("total"),
                    "flops_per_image": j.results.get("flops_per_image"),
                    "val_acc_best": j.metric("val/acc_best"),
                    "test_acc": j.metric("test/acc"),
                    "knn_acc": j.metric("embed/knn_acc"),
                    "shift_consistency": j.metric(CONSISTENCY),
                    "epochs": j.results.get("epochs"),
                    "seconds_per_epoch": j.results.get("seconds_per_epoch"),
                    "error": j.results.get("error"),
                }
            )


def table(rows: list[dict[str, Any]]) -> list[str]:
    """report.md's table: one line per head x pool (x variant)."""
    variants = any(r["variant"] for r in rows)
    knn = any(r["knn_acc"] for r in rows)
    shift = any(r["consistency"] for r in rows)
    head = [
        "head",
        "pool",
        *(["variant"] if variants else []),
        "params",
        "MFLOPs/image",
        "val/acc_best %",
        "test/acc %",
        *(["kNN acc %"] if knn else []),
        *(["consistency %"] if shift else []),
        "s/epoch",
        "jobs ok",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [
            r["head"],
            r["pool"],
            *([r["variant"] or "–"] if variants else []),
            f"{r['params']:,}" if r["params"] else "–",
            f"{r['mflops']:.2f}",
            fmt(r["val_acc_best"]),
            fmt(r["test_acc"]),
            *([fmt(r["knn_acc"])] if knn else []),
            *([fmt(r["consistency"])] if shift else []),
            f"{r['s_per_epoch']:.1f}" if r["s_per_epoch"] else "–",
            f"{r['ok']}/{r['jobs']}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def sweep_cost(jobs: list[Job]) -> dict[str, Any] | None:
    """Wall-clock from the first job's process start (Python and imports count, as they do for
    whoever waits on the command) to the last one's end, jobs per hour, and two costs per
    accelerator, labelled apart: the hours the devices were held (each device counted once, for
    the union of the spans of the jobs that used it: 12 jobs sharing one GPU for 4 minutes hold
    4 GPU-minutes) and the jobs' summed time (a job's seconds x its devices).
    None for results written before jobs recorded their times.
    A sweep run in parts (several sweep folders under the one reported) counts the time its
    parts ran, not the idle time between them."""
    parts: dict[Path, list[dict[str, Any]]] = defaultdict(list)
    for j in jobs:
        if {"started_at", "ended_at"} <= j.results.keys():
            parts[j.dir.parent].append(j.results)
    if not parts:
        return None
    timed = [r for part in parts.values() for r in part]
    # Parts that ran at the same time (two machines) count once: the union of their spans.
    wall = _union_seconds(
        [
            (min(_start(r) for r in part), max(r["ended_at"] for r in part))
            for part in parts.values()
        ]
    )
    job_hours: dict[str, float] = defaultdict(float)
    spans_per_device: dict[tuple[str, str, str], list[tuple[float, float]]] = defaultdict(list)
    for r in timed:
        device = r.get("device") or {}
        kind = device.get("accelerator", "unknown")
        job_hours[kind] += r["seconds"] * (device.get("count") or 1) / 3600
        for unit in _devices_used(device):
            spans_per_device[kind, device.get("host", "?"), unit].append((_start(r), r["ended_at"]))
    held_hours: dict[str, float] = defaultdict(float)
    for (kind, _, _), spans in spans_per_device.items():
        held_hours[kind] += _union_seconds(spans) / 3600
    hosts = sorted({(r.get("device") or {}).get("host", "?") for r in timed})
    names = sorted({(r.get("device") or {}).get("name", "?") for r in timed})
    return {
        "jobs": len(timed),
        "wall_clock_s": wall,
        "jobs_per_hour": len(timed) / wall * 3600 if wall > 0 else None,
        "held_hours": dict(held_hours),
        "devices_held": len(spans_per_device),
        "job_hours": dict(job_hours),
        "hosts": hosts,
        "devices": names,
        "parts": len(parts),
    }


def _devices_used(device: dict[str, Any]) -> list[str]:
    """The devices a job held on its host: its visible GPUs (as many as it used), or the host
    itself for CPU jobs (their processes share the machine's cores)."""
    if device.get("accelerator") not in ("cuda", "gpu"):
        return ["host"]
    count = device.get("count") or 1
    visible = device.get("cuda_visible_devices")
    ids = visible.split(",") if visible else [str(i) for i in range(count)]
    return ids[:count]


def _union_seconds(spans: list[tuple[float, float]]) -> float:
    total, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        total += max(0.0, end - max(start, reach))
        reach = max(reach, end)
    return total


def _start(results: dict[str, Any]) -> float:
    # A process's start, where it ran one job or several (joblib workers), is its first job's.
    return min(results["started_at"], results.get("process_started_at") or float("inf"))


def cost_line(cost: dict[str, Any]) -> str:
    def hours(per_kind: dict[str, float]) -> str:
        return ", ".join(f"{h:.3f} {kind.upper()}-hours" for kind, h in sorted(per_kind.items()))

    rate = f"{cost['jobs_per_hour']:.0f} jobs/hour" if cost["jobs_per_hour"] else "-"
    parts = f"over {cost['parts']} parts " if cost.get("parts", 1) > 1 else ""
    n, hosts = cost["devices_held"], len(cost["hosts"])
    return (
        f"Sweep cost: {cost['jobs']} jobs in {cost['wall_clock_s'] / 60:.1f} min wall-clock "
        f"{parts}({rate}); devices held: {hours(cost['held_hours'])} "
        f"({n} device{'s' if n != 1 else ''} x the time each was in use); "
        f"jobs' summed time: {hours(cost['job_hours'])}; on {', '.join(cost['devices'])} "
        f"({hosts} host{'s' if hosts != 1 else ''})."
    )


def markdown(rows: list[dict[str, Any]], jobs: list[Job], sweep_dir: Path) -> str:
    cost = sweep_cost(jobs)
    lines = [
        f"# Sweep report: {sweep_dir.name}",
        "",
        f"{len(jobs)} jobs, {sum(j.ok for j in jobs)} ok. Accuracies: mean ± std over seeds.",
        *(["", cost_line(cost)] if cost else []),
        "",
        *table(rows),
    ]
    stated = claims(rows)
    if stated:
        lines += ["", "## The lecture's claims", "", SIGNS, ""]
        lines += [f"- {sentence}" for sentence in stated]
    compared = comparisons(rows)
    if compared:
        lines += ["", "## Comparisons", ""]
        lines += [f"- {comparison_line(c)}" for c in compared]
    lines += shift_report.section(rows, compared)
    failed = [j for j in jobs if not j.ok]
    if failed:
        lines += ["", "## Failed jobs", ""]
        for j in failed:
            lines.append(
                f"- `{j.dir.name}` ({j.variant or ','.join(config_key(j)[:2])}): "
                f"{j.results.get('status')}: {j.results.get('error')}"
            )
    lines += [
        "",
        "![accuracy vs parameters](accuracy_vs_params.png)",
        "",
        "![validation accuracy per epoch](curves.png)",
        "",
    ]
    return "\n".join(lines)


def plot_scatter(rows: list[dict[str, Any]], path: Path) -> Any:
    """Writes the picture and returns its (closed) Figure, whose artists hold what was drawn."""
    from poolbench.review.plotting import pool_colors, pyplot

    plt = pyplot()

    markers = dict(zip(sorted({r["head"] for r in rows}), "osD^vP*Xh<>", strict=False))
    colors = pool_colors(list({r["pool"] for r in rows}))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in rows:
        if not r["test_acc"] or not r["params"]:
            continue
        m, s = mean_std(r["test_acc"])
        ax.errorbar(
            r["params"],
            m * 100,
            yerr=s * 100,
            fmt=markers[r["head"]],
            capsize=3,
            color=colors[r["pool"]],
            markersize=8,
        )
    for h, mk in markers.items():
        ax.plot([], [], mk, color="gray", label=f"head={h}")
    for p, c in colors.items():
        ax.plot([], [], "s", color=c, label=f"pool={p}")
    ax.set_xscale("log")
    ax.set_xlabel("parameters (log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("accuracy vs. parameter count (error bars: std over seeds)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return fig


def plot_curves(jobs: list[Job], path: Path) -> Any:
    """Writes the picture and returns its (closed) Figure: one panel per head, one labelled line
    per pool (and variant) in it, coloured as in the scatter plot, so a 30-config grid stays
    readable."""
    from matplotlib.ticker import MaxNLocator

    from poolbench.review.plotting import pool_colors, pyplot

    plt = pyplot()

    curves: dict[tuple[str, str, str], dict[int, list[float]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for j in jobs:
        for epoch, acc in j.curve:
            curves[config_key(j)][epoch].append(acc)
    heads = sorted({head for head, _, _ in curves}) or [""]
    colors = pool_colors(list({config_key(j)[1] for j in jobs}))  # as in the scatter plot
    variants = sorted({variant for _, _, variant in curves})
    styles = {v: ("-", "--", ":", "-.")[i % 4] for i, v in enumerate(variants)}
    cols = 2 if len(heads) == 4 else min(len(heads), 3)
    rows = math.ceil(len(heads) / cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.6 * cols + 1.8, 3 * rows), sharex=True, sharey=True, squeeze=False
    )
    panels = dict(zip(heads, axes.flat, strict=False))
    for (head, pool, variant), by_epoch in sorted(curves.items()):
        epochs = sorted(by_epoch)
        panels[head].plot(
            [e + 1 for e in epochs],
            [100 * statistics.fmean(by_epoch[e]) for e in epochs],
            marker="o",
            markersize=3,
            color=colors[pool],
            linestyle=styles[variant],
            label=f"{head}/{pool}" + (f" {variant}" if variant else ""),
        )
    for head, ax in panels.items():
        ax.set_title(f"head={head}" if head else "", fontsize=10)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    for i, ax in enumerate(axes.flat):
        if i >= len(heads):
            ax.set_visible(False)
        elif i + cols >= len(heads):  # no panel below: this one carries the epoch axis
            ax.xaxis.set_tick_params(labelbottom=True)
            ax.set_xlabel("epoch")
    for ax in axes[:, 0]:
        ax.set_ylabel("val accuracy (%)")
    fig.suptitle("validation accuracy per epoch (mean over seeds)")
    if curves:  # one legend for all panels: pools by colour, variants by line style
        drawn = sorted({pool for _, pool, _ in curves})
        handles = [plt.Line2D([], [], color=colors[p], marker="o", markersize=3) for p in drawn]
        names = [f"pool={p}" for p in drawn]
        if len(variants) > 1:
            handles += [plt.Line2D([], [], color="gray", linestyle=styles[v]) for v in variants]
            names += variants
        fig.legend(handles, names, loc="center right", fontsize=8)
    fig.tight_layout(rect=(0, 0, 1 - 1.6 / fig.get_figwidth(), 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return fig


def load(sweep_dir: Path) -> tuple[list[Job], list[dict[str, Any]]]:
    """The jobs of a sweep folder and report.md's rows (the dashboard's report reuses them)."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise UserError(f"{sweep_dir} is not a folder; pass a sweep folder under outputs/")
    jobs = find_jobs(sweep_dir)
    if not jobs:
        raise UserError(
            f"no results.json under {sweep_dir}; pass a sweep folder "
            "(e.g. outputs/train-sweep/<date>) whose jobs have run"
        )
    return jobs, summarize(jobs)


def report(sweep_dir: Path) -> Path:
    sweep_dir = Path(sweep_dir)
    jobs, rows = load(sweep_dir)
    write_csv(jobs, sweep_dir / "results.csv")
    plot_scatter(rows, sweep_dir / "accuracy_vs_params.png")
    plot_curves(jobs, sweep_dir / "curves.png")
    shift_report.plot(jobs, sweep_dir / shift_report.FIGURE, config_key)
    out = sweep_dir / "report.md"
    out.write_text(markdown(rows, jobs, sweep_dir))
    return out


def write_doc(sweep_dirs: list[Path], doc: Path, preface: str) -> None:
    """One markdown page for several sweeps, with their plots copied beside it (docs/)."""
    import shutil

    doc.parent.mkdir(parents=True, exist_ok=True)
    parts = [preface.rstrip() + "\n"] if preface else []
    for d in sweep_dirs:
        text = (d / "report.md").read_text()
        for png in ("accuracy_vs_params.png", "curves.png", shift_report.FIGURE):
            if not (d / png).is_file():  # shift_curves.png: only where runs measured shifts
                continue
            shutil.copy(d / png, doc.parent / f"{d.name}_{png}")
            text = text.replace(f"]({png})", f"]({d.name}_{png})")
        parts.append(text.replace("# Sweep report: ", "## Sweep: ", 1))
    doc.write_text("\n".join(parts))


def main(argv: list[str] | None = None) -> None:
    parser = OneLineArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dirs", nargs="+", type=Path, help="sweep folder(s) under outputs/")
    parser.add_argument("--doc", type=Path, help="also write one page for all sweeps here")
    parser.add_argument("--preface", type=Path, help="markdown to open the --doc page with")
    args = parser.parse_args(argv)
    for d in args.sweep_dirs:
        out = answered(report, d)  # bad input: one error: line, exit 2
        print(out.read_text())
        pictures = "accuracy_vs_params.png, curves.png"
        if (d / shift_report.FIGURE).is_file():
            pictures += f", {shift_report.FIGURE}"
        print(f"wrote {out}, results.csv, {pictures} in {d}")
    if args.doc:
        preface = args.preface.read_text() if args.preface else ""
        write_doc(args.sweep_dirs, args.doc, preface)
        print(f"wrote {args.doc}")


if __name__ == "__main__":
    main()
