"""The sweep report's shift-invariance part (shift_invariance.py measures it per run): the
consistency column, its differences between pools with 95% intervals, and one figure of
accuracy and correct-class probability against the shift, a line per pool (Zhang 2019, Fig. 1
style), one row of panels per head (and variant)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # stats.py reads CONSISTENCY from here
    from poolbench.review.stats import Row

CONSISTENCY = "test/shift_consistency"
FIGURE = "shift_curves.png"


def curve(metrics: dict[str, Any], what: str) -> list[float]:
    """A run's test/shift_<what>/0, /1, … as a list (what: acc or prob)."""
    points = []
    while (v := metrics.get(f"test/shift_{what}/{len(points)}")) is not None:
        points.append(v)
    return points


def consistency_line(c: dict[str, Any]) -> str:
    """The comparison's consistency difference, as its accuracy one is written."""
    a, b = c["consistency_a"], c["consistency_b"]
    ci = c.get("consistency_ci")
    interval = f", 95% CI {ci[0]:+.2f} to {ci[1]:+.2f}" if ci else ""
    return (
        f"shift consistency {100 * statistics.fmean(a):.2f}% vs {100 * statistics.fmean(b):.2f}% "
        f"({100 * (statistics.fmean(a) - statistics.fmean(b)):+.2f} points{interval})"
    )


def section(rows: list[Row], compared: list[dict[str, Any]]) -> list[str]:
    """report.md's "Shift invariance" part: only where the runs measured it."""
    if not any(r.consistency for r in rows):
        return []
    lines = [
        "",
        "## Shift invariance",
        "",
        "Consistency: how often two random shifts of a test image get the same top-1 class "
        "(Zhang 2019); mean ± std over seeds, in the table's `consistency %` column.",
        "",
    ]
    for c in compared:
        if c["axis"] == "pool" and c.get("consistency_a") and c.get("consistency_b"):
            lines.append(
                f"- pool={c['a']} vs pool={c['b']} ({c['fixed']}): {consistency_line(c)}; "
                f"test/acc {c['delta_points']:+.2f} points"
            )
    lines += ["", f"![accuracy against shift]({FIGURE})"]
    return lines


def plot(jobs: list[Any], path: Path, config_key: Any) -> Any:
    """Writes the figure and returns its (closed) Figure: per head (and variant) a row of two
    panels, accuracy and P(correct class) against the diagonal shift, a line per pool (mean
    over seeds), in the pools' colours of the other figures. None where no run measured it."""
    from poolbench.review.plotting import pool_colors, pyplot

    curves: dict[tuple[str, str, str], dict[str, list[list[float]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for j in jobs:
        metrics = j.results.get("metrics", {}) if j.ok else {}
        for what in ("acc", "prob"):
            if points := curve(metrics, what):
                curves[config_key(j)][what].append(points)
    if not curves:
        return None
    plt = pyplot()
    groups = sorted({(head, variant) for head, _, variant in curves})
    colors = pool_colors(list({pool for _, pool, _ in curves}))
    fig, axes = plt.subplots(
        len(groups), 2, figsize=(12, 3.8 * len(groups)), squeeze=False, sharex=True
    )
    for (head, pool, variant), by_what in sorted(curves.items()):
        row = groups.index((head, variant))
        for col, what in enumerate(("acc", "prob")):
            runs = [p for p in by_what[what] if len(p) == len(by_what[what][0])]
            if not runs:
                continue
            mean = [100 * statistics.fmean(vals) for vals in zip(*runs, strict=True)]
            axes[row, col].plot(
                range(len(mean)), mean, "o-", color=colors[pool], label=f"pool={pool}", lw=2
            )
    for (head, variant), (ax_acc, ax_prob) in zip(groups, axes, strict=True):
        where = f"head={head}" + (f", {variant}" if variant else "")
        ax_acc.set_title(f"accuracy under shift ({where})", fontsize=13)
        ax_prob.set_title(f"P(correct class) under shift ({where})", fontsize=13)
        for ax in (ax_acc, ax_prob):
            ax.grid(alpha=0.3)
            ax.set_ylabel("%", fontsize=12)
            ax.tick_params(labelsize=11)
    for ax in axes[-1]:
        ax.set_xlabel("diagonal shift (pixels)", fontsize=12)
    fig.suptitle("what pooling buys: the answer as the image moves (mean over seeds)", fontsize=14)
    # one legend for every panel, beside them: no line hidden behind it
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=12)
    fig.tight_layout(rect=(0, 0, 1 - 1.9 / fig.get_figwidth(), 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return fig
