"""What a sweep cost, from the times its jobs recorded: wall-clock, jobs per hour, and hours
per accelerator, held and summed; the report's "Sweep cost" line."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from poolbench.review.runs import Job


def sweep_cost(jobs: list[Job]) -> dict[str, Any] | None:
    """Wall-clock from the first job's process start (Python and imports count, as they do for
    whoever waits on the command) to the last one's end, jobs per hour, and two costs per
    accelerator, labelled apart: the hours the devices were held (each device counted once, for
    the union of the spans of the jobs that used it: 12 jobs sharing one GPU for 4 minutes hold
    4 GPU-minutes) and the jobs' summed time (a job's seconds x its devices).
    None for results written before jobs recorded their times.
    A sweep run in parts (several sweep folders under the one reported) counts the time its
    parts ran, not the idle time between them."""
    parts: dict[Path, list[dict[str, Any]]] = defaultdict(list)
    for j in jobs:
        if {"started_at", "ended_at"} <= j.results.keys():
            parts[j.dir.parent].append(j.results)
    if not parts:
        return None
    timed = [r for part in parts.values() for r in part]
    # Parts that ran at the same time (two machines) count once: the union of their spans.
    wall = _union_seconds(
        [
            (min(_start(r) for r in part), max(r["ended_at"] for r in part))
            for part in parts.values()
        ]
    )
    job_hours: dict[str, float] = defaultdict(float)
    spans_per_device: dict[tuple[str, str, str], list[tuple[float, float]]] = defaultdict(list)
    for r in timed:
        device = r.get("device") or {}
        kind = device.get("accelerator", "unknown")
        job_hours[kind] += r["seconds"] * (device.get("count") or 1) / 3600
        for unit in _devices_used(device):
            spans_per_device[kind, device.get("host", "?"), unit].append((_start(r), r["ended_at"]))
    held_hours: dict[str, float] = defaultdict(float)
    for (kind, _, _), spans in spans_per_device.items():
        held_hours[kind] += _union_seconds(spans) / 3600
    hosts = sorted({(r.get("device") or {}).get("host", "?") for r in timed})
    names = sorted({(r.get("device") or {}).get("name", "?") for r in timed})
    return {
        "jobs": len(timed),
        "wall_clock_s": wall,
        "jobs_per_hour": len(timed) / wall * 3600 if wall > 0 else None,
        "held_hours": dict(held_hours),
        "devices_held": len(spans_per_device),
        "job_hours": dict(job_hours),
        "hosts": hosts,
        "devices": names,
        "parts": len(parts),
    }


def _devices_used(device: dict[str, Any]) -> list[str]:
    """The devices a job held on its host: its visible GPUs (as many as it used), or the host
    itself for CPU jobs (their processes share the machine's cores)."""
    if device.get("accelerator") not in ("cuda", "gpu"):
        return ["host"]
    count = device.get("count") or 1
    visible = device.get("cuda_visible_devices")
    ids = visible.split(",") if visible else [str(i) for i in range(count)]
    return ids[:count]


def _union_seconds(spans: list[tuple[float, float]]) -> float:
    total, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        total += max(0.0, end - max(start, reach))
        reach = max(reach, end)
    return total


def _start(results: dict[str, Any]) -> float:
    # A process's start, where it ran one job or several (joblib workers), is its first job's.
    return min(results["started_at"], results.get("process_started_at") or float("inf"))


def cost_line(cost: dict[str, Any]) -> str:
    def hours(per_kind: dict[str, float]) -> str:
        return ", ".join(f"{h:.3f} {kind.upper()}-hours" for kind, h in sorted(per_kind.items()))

    rate = f"{cost['jobs_per_hour']:.0f} jobs/hour" if cost["jobs_per_hour"] else "-"
    parts = f"over {cost['parts']} parts " if cost.get("parts", 1) > 1 else ""
    n, hosts = cost["devices_held"], len(cost["hosts"])
    return (
        f"Sweep cost: {cost['jobs']} jobs in {cost['wall_clock_s'] / 60:.1f} min wall-clock "
        f"{parts}({rate}); devices held: {hours(cost['held_hours'])} "
        f"({n} device{'s' if n != 1 else ''} x the time each was in use); "
        f"jobs' summed time: {hours(cost['job_hours'])}; on {', '.join(cost['devices'])} "
        f"({hosts} host{'s' if hosts != 1 else ''})."
    )
