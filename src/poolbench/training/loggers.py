"""Loggers from the `logger` config group, with W&B offline unless the user can reach W&B."""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf


def wandb_online() -> bool:
    """Whether W&B is reachable for this user, the one rule for runs and the dashboard:
    WANDB_MODE when it says (offline, disabled, dryrun: no; online: yes), else credentials
    (WANDB_API_KEY, or `wandb login`'s ~/.netrc entry)."""
    mode = os.environ.get("WANDB_MODE", "").lower()
    if mode in ("offline", "disabled", "dryrun"):
        return False
    if mode == "online" or os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc(Path.home() / ".netrc").authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def wandb_offline(requested: bool | None) -> bool:
    """W&B runs offline unless forced (logger.wandb.offline) or wandb_online()."""
    if requested is not None:
        return bool(requested)
    return not wandb_online()


def build_loggers(
    cfg: DictConfig, run_name: str, group: str | None, tags: list[str], resume_id: str | None = None
) -> list[Any]:
    loggers = []
    for key, node in (cfg.get("logger") or {}).items():
        if key == "wandb":
            node = OmegaConf.merge(
                node,
                {
                    "offline": wandb_offline(node.offline),
                    "name": node.name or run_name,
                    "group": node.group or group,
                    "tags": list(node.tags) + tags,
                },
            )
            if resume_id:  # continue the earlier run: same id, W&B appends to it
                node = OmegaConf.merge(node, {"id": resume_id})
            Path(node.save_dir).mkdir(parents=True, exist_ok=True)  # else W&B picks a temp folder
            # a run of its own even while other jobs' runs are open in this process (packed)
            loggers.append(instantiate(node, reinit="create_new"))
            continue
        loggers.append(instantiate(node))
    return loggers


def wandb_logger(loggers: list[Any]) -> Any | None:
    from lightning.pytorch.loggers import WandbLogger

    return next((lg for lg in loggers if isinstance(lg, WandbLogger)), None)


def finish_wandb(run: Any, exit_code: int, status: str = "ok") -> None:
    """Close the job's W&B run (or, if it never got one, a run left open in this process) so
    the next job of a sweep starts a fresh one."""
    import sys

    wandb = sys.modules.get("wandb")
    run = run if run is not None else getattr(wandb, "run", None)
    if run is not None:
        run.summary["status"] = status  # ok | failed | interrupted
        run.finish(exit_code=exit_code)
