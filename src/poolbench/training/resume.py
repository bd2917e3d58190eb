"""`resume=latest`: continue the newest earlier run of the same configuration under outputs/ —
its last end-of-epoch checkpoint and its W&B run (same id, so the dashboard shows one run)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from poolbench.errors import ConfigError

# Overrides that do not change what is trained: a run differing only in these is "the same".
IGNORED = (
    "resume",
    "ckpt_path",
    "hydra",
    "paths",
    "trainer.max_epochs",
    "trainer.enable_progress_bar",
    "fast",  # the same training, eager or stacked
    "data.eval_batch_size",
)


@dataclass
class Previous:
    run_dir: Path
    ckpt_path: Path
    wandb_run_id: str | None


def config_overrides(overrides: list[str]) -> list[str]:
    return sorted(o for o in overrides if not o.lstrip("+~").startswith(IGNORED))


def find_previous(runs_root: Path, this_run: Path, overrides: list[str]) -> Previous:
    wanted = config_overrides(overrides)
    candidates = sorted(
        (p for p in runs_root.glob("*/") if p.resolve() != this_run.resolve()),
        key=lambda p: p.name,
        reverse=True,
    )
    for run in candidates:
        ckpt = run / "checkpoints" / "last.ckpt"
        saved = run / ".hydra" / "overrides.yaml"
        if not (ckpt.is_file() and saved.is_file()):
            continue
        if config_overrides(yaml.safe_load(saved.read_text()) or []) != wanted:
            continue
        results = run / "results.json"
        run_id = json.loads(results.read_text()).get("wandb_run_id") if results.is_file() else None
        return Previous(run, ckpt, run_id)
    shown = " ".join(wanted) or "(defaults)"
    raise ConfigError(
        f"resume=latest found no earlier run of this config [{shown}] with "
        f"checkpoints/last.ckpt under {runs_root}; drop resume, or pass "
        "ckpt_path=PATH to a checkpoint"
    )


def check_checkpoint_fits(path: str, module: Any, choices: dict[str, str]) -> None:
    """`ckpt_path=` (or resume=latest's) before any logger, folder or fit: the file exists, is
    a poolbench checkpoint (loaded with weights_only: it cannot run code), and holds the network
    this run builds; else one line naming what differs."""
    from poolbench.config import MODEL_GROUPS
    from poolbench.review.trained import checkpoint_choices, read_checkpoint

    ckpt = read_checkpoint(path)  # missing, unreadable, not poolbench's: one line each
    theirs = {k: v.shape for k, v in ckpt["state_dict"].items() if k.startswith("net.")}
    mine = {k: v.shape for k, v in module.state_dict().items() if k.startswith("net.")}
    if theirs == mine:
        return
    saved = checkpoint_choices(ckpt["hyper_parameters"])
    differ = [
        f"{g}={saved[g]} there, {g}={choices[g]} here"
        for g in MODEL_GROUPS
        if g in saved and g in choices and saved[g] != choices[g]
    ]
    if not differ:  # same options, other keys (model.channels=…): the first layer that differs
        key = next(k for k in sorted(mine.keys() | theirs.keys()) if mine.get(k) != theirs.get(k))
        differ = [f"{key} is {tuple(theirs.get(key, ()))} there, {tuple(mine.get(key, ()))} here"]
    raise ConfigError(
        f"ckpt_path={path} holds another network ({'; '.join(differ)}); resume with the "
        "options it was trained with, or drop ckpt_path"
    )
