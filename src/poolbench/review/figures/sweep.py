"""Figures over many runs: train vs validation accuracy per epoch for the lecture's two nets
(train_vs_val.png) and test accuracy vs parameters for every head × pool (accuracy_vs_params.png).
Runs are read as poolbench-report reads them (runs.find_jobs); only what they left on disk."""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from poolbench.errors import UserError
from poolbench.review.figures.style import LECTURE_NETS, TRAIN, VAL, figure, human, net_label
from poolbench.review.runs import Job, config_key, find_jobs
from poolbench.review.stats import Row, mean_std, summarize

METRICS = {"train": "train/acc", "val": "val/acc"}
HEAD_MARKERS = "osD^vP*Xh<>"


def load_jobs(dirs: Iterable[Path]) -> list[Job]:
    """Every run under the given run or sweep folders, each once."""
    jobs: list[Job] = []
    seen: set[Path] = set()
    for d in map(Path, dirs):
        if not d.is_dir():
            raise UserError(f"{d} is not a folder; pass run or sweep folders under outputs/")
        found = find_jobs(d)
        if not found:
            raise UserError(
                f"no results.json under {d}; pass a run or sweep folder whose jobs have run "
                "(e.g. outputs/train-sweep/<date>)"
            )
        for job in found:
            if job.dir.resolve() not in seen:
                seen.add(job.dir.resolve())
                jobs.append(job)
    return jobs


def metrics_file(job_dir: Path) -> Path | None:
    """The run's CSVLogger file: csv/metrics.csv, or under a version folder of csv/."""
    plain = job_dir / "csv" / "metrics.csv"
    found = [plain] if plain.is_file() else sorted((job_dir / "csv").rglob("metrics.csv"))
    return found[0] if found else None


def read_epochs(job_dir: Path) -> dict[str, dict[int, float]]:
    """{'train': {epoch: train/acc}, 'val': {epoch: val/acc}} from metrics.csv, epochs from 0;
    an epoch logged twice (a resumed run) keeps its last value."""
    out: dict[str, dict[int, float]] = {k: {} for k in METRICS}
    path = metrics_file(job_dir)
    if path is None:
        return out
    with path.open() as f:
        for row in csv.DictReader(f):
            for name, key in METRICS.items():
                if row.get(key) and row.get("epoch"):
                    out[name][int(float(row["epoch"]))] = float(row[key])
    return out


def _net_groups(jobs: list[Job]) -> dict[str, list[Job]]:
    """The finished runs of the lecture's two nets (plain config, no variant), by net; where
    the runs hold neither, the first two configurations they do hold."""
    groups: dict[tuple[str, str, str], list[Job]] = defaultdict(list)
    for j in jobs:
        if j.ok:
            groups[config_key(j)].append(j)
    chosen = [(h, p, "") for h, p in LECTURE_NETS if (h, p, "") in groups]
    chosen = chosen or sorted(groups)[:2]
    return {net_label(h, p) + (f" {v}" if v else ""): groups[(h, p, v)] for h, p, v in chosen}


def band(per_run: list[dict[int, float]]) -> dict[str, list[float]]:
    """Per epoch (numbered from 1) over the runs that logged it: mean and std (sample; 0 for
    one run) in percent, and how many runs."""
    epochs = sorted({e for run in per_run for e in run})
    out: dict[str, list[float]] = {"epochs": [], "mean": [], "std": [], "n": []}
    for e in epochs:
        values = [100 * run[e] for run in per_run if e in run]
        m, s = mean_std(values)
        out["epochs"].append(e + 1)
        out["mean"].append(m)
        out["std"].append(s)
        out["n"].append(len(values))
    return out


def train_vs_val_figure(jobs: list[Job]) -> tuple[Any, dict[str, dict[str, Any]]]:
    """One panel per net: train and validation accuracy per epoch, mean ± std band over seeds.
    Data: {net: {'train': band, 'val': band, 'seeds': n, 'gap': last train − val, points}}."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    data: dict[str, dict[str, Any]] = {}
    for name, members in _net_groups(jobs).items():
        curves = [read_epochs(j.dir) for j in members]
        bands = {k: band([c[k] for c in curves]) for k in METRICS}
        gap = None
        if bands["train"]["mean"] and bands["val"]["mean"]:
            gap = bands["train"]["mean"][-1] - bands["val"]["mean"][-1]
        data[name] = {**bands, "seeds": len(members), "gap": gap}
    fig = figure()
    n = max(1, len(data))
    axes = fig.subplots(1, n, sharey=True, squeeze=False)[0]
    fig.subplots_adjust(left=0.07, right=0.98, top=0.77, bottom=0.11, wspace=0.08)
    for ax, (name, d) in zip(axes, data.items(), strict=False):
        for key, colour, style in (("train", TRAIN, "-"), ("val", VAL, "--")):
            b = d[key]
            lo = [m - s for m, s in zip(b["mean"], b["std"], strict=True)]
            hi = [m + s for m, s in zip(b["mean"], b["std"], strict=True)]
            ax.fill_between(b["epochs"], lo, hi, color=colour, alpha=0.22, linewidth=0)
            ax.plot(b["epochs"], b["mean"], style, color=colour, lw=3, marker="o", label=key)
        gap = "" if d["gap"] is None else f"\ntrain − val at the last epoch: {d['gap']:+.1f} points"
        ax.set_title(f"{name} ({d['seeds']} seed{'s' * (d['seeds'] != 1)}){gap}")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy (%)")
    if not data:
        axes[0].text(0.5, 0.5, "no finished runs", ha="center", transform=axes[0].transAxes)
    fig.legend(
        [
            Line2D([], [], color=TRAIN, lw=3, marker="o"),
            Line2D([], [], color=VAL, lw=3, ls="--", marker="o"),
            Patch(color="0.6", alpha=0.4),
        ],
        ["train accuracy", "validation accuracy", "± std over seeds"],
        loc="upper left",
        bbox_to_anchor=(0.065, 0.935),
        ncol=3,
        frameon=False,
    )
    fig.suptitle("Train vs validation accuracy per epoch (mean over seeds)", x=0.07, ha="left")
    return fig, data


def nice_ticks(lo: float, hi: float) -> list[float]:
    """Round numbers between lo and hi for a log axis (10k, 30k, 100k, …): 1-2-5 or 1-3
    steps per decade, whichever gives two to nine ticks."""
    decades = range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1)
    for steps in ((1, 3), (1, 2, 3, 5), (1, 1.5, 2, 3, 5, 7), (1,)):
        ticks = [m * 10**e for e in decades for m in steps if lo <= m * 10**e <= hi]
        if 2 <= len(ticks) <= 9:
            return ticks
    return ticks


def scatter_points(rows: list[Row]) -> list[dict[str, Any]]:
    """One point per configuration with test accuracies and a parameter count: mean and std
    (percent) over seeds; the lecture's two nets marked."""
    points = []
    for r in rows:
        if not r.test_acc or not r.params:
            continue
        m, s = mean_std(r.test_acc)
        lecture = (r.head, r.pool) in LECTURE_NETS and not r.variant
        name = f"{r.head}/{r.pool}" + (f" {r.variant}" if r.variant else "")
        points.append(
            {
                "head": r.head,
                "pool": r.pool,
                "variant": r.variant,
                "params": r.params,
                "acc_mean": 100 * m,
                "acc_std": 100 * s,
                "seeds": len(r.test_acc),
                "lecture": lecture,
                "label": f"{name}: the lecture's {r.head} net" if lecture else name,
            }
        )
    return points


def spread(logx: list[float], y: list[float], sep_x: float, sep_y: float) -> list[float]:
    """New log10 x positions such that no two points lie within sep_x (decades) and sep_y of
    each other: points that would hide one another (head=avg and head=max have one count;
    pools without weights share their head's) are merged into a cluster, laid side by side
    sep_x apart around the cluster's mean, until no two clusters collide. Order within a
    cluster: by true position, then by index (callers sort points by name)."""
    pos = list(logx)
    clusters = [[i] for i in range(len(pos))]

    def collide(a: list[int], b: list[int]) -> bool:
        return any(
            abs(pos[i] - pos[j]) < sep_x * 0.999 and abs(y[i] - y[j]) < sep_y for i in a for j in b
        )

    while True:
        pair = next(
            ((a, b) for n, a in enumerate(clusters) for b in clusters[n + 1 :] if collide(a, b)),
            None,
        )
        if pair is None:
            return pos
        a, b = pair
        clusters.remove(b)
        a += b
        a.sort(key=lambda i: (logx[i], i))
        mid = sum(logx[i] for i in a) / len(a)
        for k, i in enumerate(a):
            pos[i] = mid + (k - (len(a) - 1) / 2) * sep_x


def accuracy_vs_params_figure(jobs: list[Job]) -> tuple[Any, dict[str, Any]]:
    """Test accuracy vs parameters, every head × pool of the runs: mean over seeds, error bars
    one std; colour = pool, marker = head; coinciding counts spread sideways; every point
    labelled where no other label or point is. Data: points (with their drawn x), limits, ticks."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator
    from matplotlib.transforms import Bbox

    from poolbench.review.figures.labels import place_labels
    from poolbench.review.plotting import pool_colors

    points = sorted(scatter_points(summarize(jobs)), key=lambda p: (p["head"], p["pool"]))
    fig = figure()
    ax = fig.add_axes((0.08, 0.1, 0.7, 0.78))
    data: dict[str, Any] = {"points": points}
    if not points:
        ax.text(
            0.5, 0.5, "no finished runs with a test accuracy", ha="center", transform=ax.transAxes
        )
        return fig, data
    lo, hi = (math.log10(f(p["params"] for p in points)) for f in (min, max))
    span = max(hi - lo, 0.5)  # decades; one count alone still gets a readable axis
    y_lo = min(p["acc_mean"] - p["acc_std"] for p in points)
    y_hi = max(p["acc_mean"] + p["acc_std"] for p in points)
    y_pad = 0.15 * max(y_hi - y_lo, 1.0)
    ylim = (y_lo - y_pad, y_hi + y_pad)
    # Points that would hide each other move sideways, by a marker's width in pixels.
    size = 13  # marker size, points
    box = ax.get_window_extent()
    gap = 1.2 * size * fig.dpi / 72  # pixels between marker centres
    sep_y = gap * (ylim[1] - ylim[0]) / box.height
    mid, half = (lo + hi) / 2, span / 2 + 0.12 * span
    for _ in range(3):  # the spread widens the axis, which narrows a marker's width in decades
        sep_x = gap * 2 * half / box.width
        logx = spread(
            [math.log10(p["params"]) for p in points], [p["acc_mean"] for p in points], sep_x, sep_y
        )
        need = max(mid - min(logx), max(logx) - mid) + 0.06 * span
        if need <= half:
            break
        half = need
    for p, x in zip(points, logx, strict=True):
        p["x"] = 10**x
    xlim = (10 ** (mid - half), 10 ** (mid + half))

    heads = sorted({p["head"] for p in points})
    markers = {h: HEAD_MARKERS[i % len(HEAD_MARKERS)] for i, h in enumerate(heads)}
    colours = pool_colors(list({p["pool"] for p in points}))  # as poolbench-report's
    for p in points:
        ax.errorbar(
            p["x"],
            p["acc_mean"],
            yerr=p["acc_std"],
            fmt=markers[p["head"]],
            color=colours[p["pool"]],
            markersize=size,
            markeredgecolor="black" if p["lecture"] else colours[p["pool"]],
            markeredgewidth=2 if p["lecture"] else 1,
            capsize=5,
            elinewidth=2,
        )
    ax.set_xscale("log")
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ticks = nice_ticks(*xlim)
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: human(v)))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("parameters (log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    # Two legends beside the axes: heads by marker (grey), pools by colour swatch (no marker,
    # so no pool is read as a head).
    head_legend = ax.legend(
        [Line2D([], [], ls="", marker=markers[h], color="0.45", markersize=size) for h in heads],
        [f"head={h}" for h in heads],
        title="marker: head",
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        frameon=False,
    )
    ax.add_artist(head_legend)
    ax.legend(
        [Patch(color=colours[p]) for p in colours],
        [f"pool={p}" for p in colours],
        title="colour: pool",
        loc="lower left",
        bbox_to_anchor=(1.01, 0.0),
        frameon=False,
    )
    seeds = sorted({p["seeds"] for p in points})
    fig.suptitle(
        "Test accuracy vs parameters (mean ± std over "
        f"{'/'.join(map(str, seeds))} seed{'s' * (seeds != [1])})",
        x=0.08,
        ha="left",
    )
    fig.text(
        0.08,
        0.905,
        "points that would hide each other are moved sideways, in a row around their count",
        fontsize=14,
        color="0.35",
    )
    # Labels last, in pixels: the lecture's nets pick their places first.
    trans = ax.transData
    r = size / 2 * fig.dpi / 72 + 2
    obstacles = []
    for p in points:
        x, y = trans.transform((p["x"], p["acc_mean"]))
        obstacles.append(Bbox([[x - r, y - r], [x + r, y + r]]))
        y0 = trans.transform((p["x"], p["acc_mean"] - p["acc_std"]))[1]
        y1 = trans.transform((p["x"], p["acc_mean"] + p["acc_std"]))[1]
        cap = 5 * fig.dpi / 72
        obstacles.append(Bbox([[x - cap, y0 - 1], [x + cap, y1 + 1]]))
    order = sorted(
        range(len(points)), key=lambda i: (not points[i]["lecture"], -points[i]["acc_mean"])
    )
    texts = place_labels(
        ax,
        [(points[i]["x"], points[i]["acc_mean"]) for i in order],
        [points[i]["label"] for i in order],
        obstacles,
        [{"fontsize": 15, "weight": "bold" if points[i]["lecture"] else "normal"} for i in order],
    )
    for i, text in zip(order, texts, strict=True):
        points[i]["text"] = text
    data.update(xlim=xlim, ylim=ylim, xticks=ticks, xticklabels=[human(t) for t in ticks])
    return fig, data
