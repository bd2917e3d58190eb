"""The sweep's W&B runs, as they recorded themselves: read back from their .wandb files by the
wandb CLI (`wandb leet inspect`), for the dashboard's one group, project and entity and for the
check of its panels' keys."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from poolbench.errors import DashboardError
from poolbench.review.runs import load_sweep


@dataclass
class RunLog:
    """What one W&B run recorded, read back from its .wandb file."""

    path: Path
    run_id: str
    name: str
    group: str
    entity: str
    project: str
    config: dict[str, Any] = field(default_factory=dict)
    summary: set[str] = field(default_factory=set)
    history: set[str] = field(default_factory=set)

    def config_has(self, dotted: str) -> bool:
        node: Any = self.config
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return True


def wandb_cli() -> str:
    beside = Path(sys.executable).with_name("wandb")
    found = str(beside) if beside.exists() else shutil.which("wandb")
    if not found:
        raise DashboardError("the wandb command is not installed; pip install wandb")
    return found


def read_run(run_dir: Path) -> RunLog:
    # The wandb SDK reads .wandb files in its Go core, not in Python: `leet inspect` prints them.
    out = subprocess.run(
        [wandb_cli(), "leet", "inspect", "--json", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if out.returncode != 0:
        raise DashboardError(f"cannot read the W&B run {run_dir}: {out.stderr.strip()[-300:]}")
    run: dict[str, Any] = {}
    log = RunLog(run_dir, "", "", "", "", "")
    for line in out.stdout.splitlines():
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        kind = record.get("type")
        if kind == "run":
            run = record["run"]
        elif kind == "config":
            log.config.update(record["config"].get("update", {}))
        elif kind == "summary":
            log.summary.update(record["summary"].get("update", {}))
        elif kind == "history":
            log.history.update(record["history"].get("item", {}))
    # Media arrive flattened (test/confusion_matrix._type, .filenames, ...): name the media key.
    for keys in (log.summary, log.history):
        keys |= {k.removesuffix("._type") for k in keys if k.endswith("._type")}
    log.run_id = run.get("run_id", "")
    log.name = run.get("display_name", "")
    log.group = run.get("run_group", "")
    log.entity = run.get("entity", "")
    log.project = run.get("project", "")
    return log


def find_runs(sweep_dir: Path) -> list[RunLog]:
    jobs = load_sweep(sweep_dir)
    run_dirs = [
        d
        for j in jobs
        for d in sorted((j.dir / "wandb").glob("*run-*"))
        if d.is_dir() and not d.is_symlink() and d.name != "latest-run"
    ]
    if not run_dirs:
        raise DashboardError(
            f"no W&B runs under {sweep_dir} (*/wandb/offline-run-*): were its jobs run with "
            "logger=default or logger=wandb?"
        )
    return [read_run(d) for d in run_dirs]


def one_value(runs: list[RunLog], attr: str, sweep_dir: Path) -> str:
    values = sorted({getattr(r, attr) for r in runs})
    if len(values) != 1:
        parts = " (a sweep run in parts: give every part one logger.wandb.group)"
        raise DashboardError(
            f"the W&B runs under {sweep_dir} have {len(values)} different {attr}s {values}; "
            f"pass one sweep folder{parts if attr == 'group' else ''}"
        )
    return values[0]
