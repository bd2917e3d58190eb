"""Where the configs live: conf/ (or the installed copy), the config groups and their options,
including a user's own on hydra.searchpath, and one shipped option as a plain dict.
Composing a command line into a config is poolbench.cli's job."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import suppress
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

# The config groups that describe an experiment, in one place: results.json's and W&B's
# `choices`, run tags (others, like hydra/*, callbacks, paths, are plumbing). MODEL_GROUPS
# build the network: a checkpoint records them, and eval.py holds the command line to them.
GROUPS = (
    "model",
    "head",
    "pool",
    "data",
    "trainer",
    "optimizer",
    "scheduler",
    "logger",
    "experiment",
)
MODEL_GROUPS = ("model", "head", "pool")


def _conf_dir() -> str:
    """conf/ at the top of a checkout (src layout, editable install, PYTHONPATH=src); else the
    copy an installed package ships as poolbench.conf (pyproject maps conf/ to it)."""
    checkout = Path(__file__).resolve().parents[2] / "conf"
    if Path(__file__).resolve().parents[1].name == "src" and (checkout / "train.yaml").is_file():
        return str(checkout)
    import importlib

    return str(next(iter(importlib.import_module("poolbench.conf").__path__)))


CONF_DIR = _conf_dir()


def searchpath(overrides: Iterable[str]) -> list[Path | None]:
    """The folders `hydra.searchpath=[pkg://theirpkg.conf, file://dir]` on the command line
    adds (a user's own pools and heads); None for an entry not found from here."""
    import importlib

    found: list[Path | None] = []
    for o in overrides:
        key, _, value = o.lstrip("+").partition("=")
        if key != "hydra.searchpath":
            continue
        for entry in value.strip().strip("[]").split(","):
            entry = entry.strip().strip("'\"")
            folder = None
            if entry.startswith("file://"):
                folder = Path(entry[len("file://") :])
            elif entry.startswith("pkg://"):
                with suppress(Exception):  # not importable: Hydra's composition names it
                    module = importlib.import_module(entry[len("pkg://") :].replace("/", "."))
                    folder = Path(next(iter(module.__path__)))
            found.append(folder if folder is not None and folder.is_dir() else None)
    return found


def search_dirs(overrides: Iterable[str] = ()) -> list[Path]:
    """poolbench's conf/ and the command line's hydra.searchpath folders that exist."""
    return [Path(CONF_DIR), *(d for d in searchpath(overrides) if d is not None)]


def group_options(group: str, overrides: Iterable[str] = ()) -> list[str]:
    """The options of one of poolbench's config groups (<conf>/<group>/*.yaml, in conf/ and on
    the command line's hydra.searchpath); [] if none."""
    return sorted({p.stem for d in search_dirs(overrides) for p in (d / group).glob("*.yaml")})


def config_groups(overrides: Iterable[str] = ()) -> list[str]:
    """poolbench's own config groups (Hydra's hydra/* groups are checked by Hydra)."""
    return sorted(
        {
            p.name
            for d in search_dirs(overrides)
            for p in d.iterdir()
            if p.is_dir() and p.name != "hydra" and not p.name.startswith(("_", "."))
        }
    )


# Checkpoints written before pools and heads were `_target_` configs hold {"name": "lp", "p": 3}:
# keys renamed since (LPPool2d's own name for the power).
LEGACY_KEYS = {"p": "norm_type"}


# Values renamed since: the global head's avg ‖ max mode took timm's name (models/heads.py).
RENAMED_VALUES = {("mode", "avgmax"): "catavgmax"}


def upgrade_node(group: str, node: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's pool or head node as it is built today: an old one ({"name": …} and
    keywords) becomes that shipped option's `_target_` node with its values, and renamed
    values take their new names; a current one is returned as it is. So checkpoints from
    before each change still evaluate."""
    node = {k: RENAMED_VALUES.get((k, v), v) if isinstance(v, str) else v for k, v in node.items()}
    if "_target_" in node or not isinstance(node.get("name"), str):
        return node
    upgraded = option_node(group, node["name"])
    for key, value in node.items():
        key = LEGACY_KEYS.get(key, key)
        if key in upgraded:
            upgraded[key] = value
    return upgraded


def option_node(group: str, name: str) -> dict[str, Any]:
    """One shipped option's config as a plain dict, e.g. option_node("pool", "max") (for code
    that builds a net without composing a whole config: tests, benchmarks)."""
    return OmegaConf.to_container(OmegaConf.load(Path(CONF_DIR) / group / f"{name}.yaml"))
