"""accuracy_vs_params.png: test accuracy against parameters for every configuration in the
runs, every point visible and labelled, the lecture's two nets named (the report's scatter
too)."""

from __future__ import annotations

import math
from typing import Any

from poolbench.review.figures.style import LECTURE_NETS, figure, human
from poolbench.review.runs import Job
from poolbench.review.stats import Row, mean_std, summarize

HEAD_MARKERS = "osD^vP*Xh<>"


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
