"""Pairs of configurations that differ in one axis (head or pool), everything else equal: each
head or pool against the lecture net's (claims.yaml's reference), test accuracy and shift
consistency as a - b with Welch's 95% CI over seeds; and the line report.md writes for one."""

from __future__ import annotations

from typing import Any

from poolbench.review.claims import lecture
from poolbench.review.stats import Row, mean_std, welch_ci


def comparisons(rows: list[Row]) -> list[dict[str, Any]]:
    """Pairs of configurations that differ in one axis (head or pool), everything else equal."""
    reference = lecture().reference
    out = []
    for axis, other in (("head", "pool"), ("pool", "head")):
        values = sorted({getattr(r, axis) for r in rows})
        ref = reference[axis] if reference[axis] in values else values[0]
        by_key = {(getattr(r, axis), getattr(r, other), r.variant): r for r in rows}
        for r in rows:
            base = by_key.get((ref, getattr(r, other), r.variant))
            if getattr(r, axis) == ref or base is None or not (r.test_acc and base.test_acc):
                continue
            acc, acc_ref = mean_std(r.test_acc)[0], mean_std(base.test_acc)[0]
            fixed = f"{other}={getattr(r, other)}" + (f" {r.variant}" if r.variant else "")
            out.append(
                {
                    "axis": axis,
                    "a": getattr(r, axis),
                    "b": ref,
                    "fixed": fixed,
                    "params_a": r.params,
                    "params_b": base.params,
                    "test_acc_a": acc,
                    "test_acc_b": acc_ref,
                    "delta_points": 100 * (acc - acc_ref),
                    "ci_points": welch_ci(r.test_acc, base.test_acc),
                    "seeds": (len(r.test_acc), len(base.test_acc)),
                    "consistency_a": r.consistency,
                    "consistency_b": base.consistency,
                    "consistency_ci": welch_ci(r.consistency, base.consistency),
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
