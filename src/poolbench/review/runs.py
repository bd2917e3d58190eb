"""A sweep's jobs as they left them on disk (results.json, .hydra/, csv/metrics.csv): no network,
no W&B. The report, its figures and the dashboard read runs here."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from poolbench.errors import UserError

PLAIN_KEYS = {"head", "pool", "seed"}  # the grid's axes; other varying overrides name a variant


@dataclass
class Job:
    dir: Path
    results: dict[str, Any]
    seed: Any
    overrides: dict[str, str]
    variant: str = ""
    curve: list[tuple[int, float]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.results.get("status") == "ok"

    def metric(self, key: str) -> float | None:
        return self.results.get("metrics", {}).get(key)


def read_curve(job_dir: Path) -> list[tuple[int, float]]:
    path = job_dir / "csv" / "metrics.csv"
    if not path.exists():
        return []
    with path.open() as f:
        return [
            (int(float(r["epoch"])), float(r["val/acc"]))
            for r in csv.DictReader(f)
            if r.get("val/acc")
        ]


def read_job(results_file: Path) -> Job:
    job_dir = results_file.parent
    results = json.loads(results_file.read_text())
    overrides_file = job_dir / ".hydra" / "overrides.yaml"
    overrides = yaml.safe_load(overrides_file.read_text()) if overrides_file.exists() else []
    config_file = job_dir / ".hydra" / "config.yaml"
    seed = yaml.safe_load(config_file.read_text()).get("seed") if config_file.exists() else None
    pairs = dict(o.split("=", 1) for o in overrides or [] if "=" in o)
    return Job(job_dir, results, seed, pairs, curve=read_curve(job_dir))


def find_jobs(sweep_dir: Path) -> list[Job]:
    files = sorted(sweep_dir.rglob("results.json"), key=lambda p: str(p))
    jobs = [read_job(f) for f in files if ".submitit" not in f.parts]
    # Overrides that differ between jobs, beyond head/pool/seed, name a variant of the config.
    keys = {k for j in jobs for k in j.overrides if k not in PLAIN_KEYS}
    varying = sorted(k for k in keys if len({j.overrides.get(k) for j in jobs}) > 1)
    for j in jobs:
        j.variant = ",".join(f"{k}={j.overrides[k]}" for k in varying if k in j.overrides)
    return jobs


def config_key(job: Job) -> tuple[str, str, str]:
    c = job.results.get("choices", {})
    return c.get("head", "?"), c.get("pool", "?"), job.variant


def load_sweep(sweep_dir: Path) -> list[Job]:
    """The jobs of a sweep folder, for report.md and the dashboard's report (which summarize
    them alike); a folder that is not one, or holds no finished job, is one UserError."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise UserError(f"{sweep_dir} is not a folder; pass a sweep folder under outputs/")
    jobs = find_jobs(sweep_dir)
    if not jobs:
        raise UserError(
            f"no results.json under {sweep_dir}; pass a sweep folder "
            "(e.g. outputs/train-sweep/<date>) whose jobs have run"
        )
    return jobs
