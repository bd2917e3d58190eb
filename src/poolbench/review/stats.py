"""A sweep's numbers: one Row per configuration (head x pool x variant) with its seeds' values,
mean ± std, and Welch's interval for the difference of two configurations' means."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass

from poolbench.review.runs import Job, config_key
from poolbench.review.shift_report import CONSISTENCY


@dataclass
class Row:
    """One configuration of a sweep: its jobs, its cost, and per metric the values of its
    finished seeds (fractions, 0..1; empty where no seed logged the metric)."""

    head: str
    pool: str
    variant: str  # the overrides beyond head/pool/seed that differ between jobs; "" for none
    jobs: int
    ok: int
    params: int | None
    mflops: float  # per image
    val_acc_best: list[float]
    test_acc: list[float]
    knn_acc: list[float]  # embed.py's kNN accuracy of the head's vectors, where it ran
    consistency: list[float]  # shift invariance (shift_invariance.py), where measured
    s_per_epoch: float | None
    epochs: int | None


def mean_std(values: list[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def fmt(values: list[float], scale: float = 100.0) -> str:
    if not values:
        return "–"
    m, s = mean_std(values)
    return f"{m * scale:.2f} ± {s * scale:.2f}" if len(values) > 1 else f"{m * scale:.2f}"


def _values(jobs: list[Job], key: str) -> list[float]:
    return [v for j in jobs if (v := j.metric(key)) is not None]


def summarize(jobs: list[Job]) -> list[Row]:
    groups: dict[tuple[str, str, str], list[Job]] = defaultdict(list)
    for job in jobs:
        groups[config_key(job)].append(job)
    rows = []
    for (head, pool, variant), members in sorted(groups.items()):
        ok = [j for j in members if j.ok]
        ref = (ok or members)[0].results
        per_epoch = [j.results.get("seconds_per_epoch") for j in ok]
        rows.append(
            Row(
                head=head,
                pool=pool,
                variant=variant,
                jobs=len(members),
                ok=len(ok),
                params=ref.get("params", {}).get("total"),
                mflops=(ref.get("flops_per_image") or 0) / 1e6,
                val_acc_best=_values(ok, "val/acc_best"),
                test_acc=_values(ok, "test/acc"),
                knn_acc=_values(ok, "embed/knn_acc"),
                consistency=_values(ok, CONSISTENCY),
                s_per_epoch=statistics.fmean([s for s in per_epoch if s])
                if any(per_epoch)
                else None,
                epochs=ref.get("epochs"),
            )
        )
    return rows


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
