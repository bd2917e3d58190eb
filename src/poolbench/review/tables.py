"""The report's two tables: results.csv (one row per job) and report.md's table (one line per
head x pool x variant, mean ± std over seeds)."""

from __future__ import annotations

import csv
from pathlib import Path

from poolbench.review.runs import Job, config_key
from poolbench.review.shift_report import CONSISTENCY
from poolbench.review.stats import Row, fmt


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


def table(rows: list[Row]) -> list[str]:
    """report.md's table: one line per head x pool (x variant)."""
    variants = any(r.variant for r in rows)
    knn = any(r.knn_acc for r in rows)
    shift = any(r.consistency for r in rows)
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
            r.head,
            r.pool,
            *([r.variant or "–"] if variants else []),
            f"{r.params:,}" if r.params else "–",
            f"{r.mflops:.2f}",
            fmt(r.val_acc_best),
            fmt(r.test_acc),
            *([fmt(r.knn_acc)] if knn else []),
            *([fmt(r.consistency)] if shift else []),
            f"{r.s_per_epoch:.1f}" if r.s_per_epoch else "–",
            f"{r.ok}/{r.jobs}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines
