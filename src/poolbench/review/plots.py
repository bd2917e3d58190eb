"""The report's two pictures: accuracy_vs_params.png (the lecture figure's code,
figures/sweep.py, in its 16:9 style) and curves.png (validation accuracy per epoch, a panel per
head, pools coloured as in the scatter plot)."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from poolbench.review.figures.scatter import accuracy_vs_params_figure
from poolbench.review.figures.style import lecture_style, save
from poolbench.review.runs import Job, config_key


def plot_scatter(jobs: list[Job], path: Path) -> tuple[Any, dict[str, Any]]:
    """Writes accuracy vs parameters (poolbench-figures' accuracy_vs_params.png for these jobs)
    and returns its (closed) Figure, whose artists hold what was drawn, and the figure's data
    (its points: head, pool, params, acc_mean, acc_std, the x drawn, label)."""
    with lecture_style():
        fig, data = accuracy_vs_params_figure(jobs)
        save(fig, path)
    return fig, data


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
