"""Figures over many runs: train vs validation accuracy per epoch for the lecture's two nets
(train_vs_val.png) and test accuracy vs parameters for every head × pool (accuracy_vs_params.png).
Runs are read as poolbench-report reads them (runs.find_jobs); only what they left on disk."""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from poolbench.review.figures.style import LECTURE_NETS, TRAIN, VAL, figure, net_label
from poolbench.review.runs import Job, config_key, load_sweep
from poolbench.review.stats import mean_std

METRICS = {"train": "train/acc", "val": "val/acc"}


def load_jobs(dirs: Iterable[Path]) -> list[Job]:
    """Every run under the given run or sweep folders, each once."""
    jobs: list[Job] = []
    seen: set[Path] = set()
    for d in map(Path, dirs):
        for job in load_sweep(d):  # a folder that is none, or holds no run: one UserError
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
