"""results.json: the stable, documented summary of one run that other tools read."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from poolbench.files import write_json

FILENAME = "results.json"


def scalar(v: Any) -> Any:
    if hasattr(v, "item"):
        v = v.item()
    return None if isinstance(v, float) and not math.isfinite(v) else v


def write_results(
    run_dir: str | Path,
    *,
    status: str,
    choices: dict[str, str],
    cost: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    epochs: int = 0,
    seconds: float = 0.0,
    **extra: Any,
) -> Path:
    cost = cost or {}
    record = {
        "status": status,  # "ok" | "failed" | "interrupted"
        "choices": choices,
        "params": cost.get("params", {}),
        "flops_per_image": cost.get("flops_per_image"),
        "metrics": {k: scalar(v) for k, v in sorted((metrics or {}).items())},
        "epochs": epochs,
        "seconds": round(seconds, 3),
        **extra,
    }
    path = Path(run_dir) / FILENAME
    write_json(path, record)
    return path


def record_lost_job(job_dir: Path, choices: dict[str, str], error: str) -> Path | None:
    """A job killed from outside never wrote its own results.json: say so, so the sweep's report
    lists it as failed. A results.json the job did write is left as it is."""
    path = Path(job_dir) / FILENAME
    if path.exists():
        return None
    from poolbench.config import GROUPS

    Path(job_dir).mkdir(parents=True, exist_ok=True)
    picked = {g: choices[g] for g in GROUPS if choices.get(g) is not None}
    return write_results(job_dir, status="failed", choices=picked, error=error)
