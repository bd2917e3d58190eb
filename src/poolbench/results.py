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
