"""Every key a dashboard panel reads, checked against what the sweep's W&B runs logged, before
anything is written or saved: a panel on a key no run logged would be empty."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from poolbench.errors import DashboardError
from poolbench.review.wandb_runs import RunLog


def panel_keys(panel: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, key) pairs a serialized panel reads: where is summary, history or config."""
    kind, cfg = panel["viewType"], panel.get("config", {})

    def split(accessor: str) -> tuple[str, str]:
        where, key = accessor.split(":", 1)
        # W&B stores config values under <key>.value (nested: config.value.optimizer.lr).
        if where == "config":
            top, _, rest = key.partition(".value")
            key = top + rest
        return where, key

    if kind == "Scatter Plot":
        return [split(cfg[a]) for a in ("xAxis", "yAxis") if a in cfg]
    if kind == "Parallel Coordinates Plot":
        return [split(c["accessor"]) for c in cfg.get("columns", [])]
    if kind == "Run History Line Plot":
        return [("history", k) for k in [cfg.get("xAxis"), *cfg.get("metrics", [])] if k]
    if kind == "Bar Chart":
        return [("summary", k) for k in cfg.get("metrics", [])]
    if kind == "Media Browser":
        return [("summary", k) for k in cfg.get("mediaKeys", [])]
    raise AssertionError(f"no key check for panel type {kind}")


def workspace_panels(workspace_spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    sections = workspace_spec["spec"]["section"]["panelBankConfig"]["sections"]
    return [(s["name"], p) for s in sections for p in s["panels"]]


def check_keys(
    panels: list[tuple[str, dict[str, Any]]], runs: list[RunLog], sweep_dir: Path
) -> int:
    logged = {
        "summary": set().union(*(r.summary for r in runs)),
        "history": set().union(*(r.history for r in runs)),
    }
    missing: dict[str, list[str]] = {}
    checked = 0
    for section, panel in panels:
        for where, key in panel_keys(panel):
            checked += 1
            ok = any(r.config_has(key) for r in runs) if where == "config" else key in logged[where]
            if not ok:
                missing.setdefault(f"{where} key {key}", []).append(section)
    if missing:
        named = ", ".join(f"{k} ({', '.join(sorted(set(v)))})" for k, v in missing.items())
        raise DashboardError(
            f"the W&B runs under {sweep_dir} never logged {named}; did its jobs get through "
            "training and testing? (nothing written: those panels would be empty)"
        )
    return checked
