"""Where the configs live: conf/ (or the installed copy), the config groups and their options,
including a user's own on hydra.searchpath, and one shipped option as a plain dict.
Composing a command line into a config is poolbench.cli.overrides's job."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
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


def _searchpath_overrides(overrides: Iterable[str]) -> list[str]:
    return [o for o in overrides if o.lstrip("+").partition("=")[0] == "hydra.searchpath"]


def searchpath(overrides: Iterable[str]) -> list[Path | None]:
    """The folders `hydra.searchpath=[pkg://theirpkg.conf, file://dir]` on the command line
    adds (a user's own pools and heads), read by Hydra's override parser; None for an entry
    not found from here."""
    import importlib

    from hydra.core.override_parser.overrides_parser import OverridesParser

    found: list[Path | None] = []
    for line in _searchpath_overrides(overrides):
        try:
            value = OverridesParser.create().parse_overrides([line])[0].value()
        except Exception:  # noqa: BLE001 - Hydra's own composition names a malformed one
            found.append(None)
            continue
        for entry in value if isinstance(value, list) else [value]:
            entry, folder = str(entry), None
            if entry.startswith("file://"):
                folder = Path(entry[len("file://") :])
            elif entry.startswith("pkg://"):
                with suppress(Exception):  # not importable: Hydra's composition names it
                    module = importlib.import_module(entry[len("pkg://") :].replace("/", "."))
                    folder = Path(next(iter(module.__path__)))
            found.append(folder if folder is not None and folder.is_dir() else None)
    return found


@contextmanager
def _config_loader() -> Iterator[Any]:
    """Hydra's config loader (its public interface) over conf/ and the installed plugins: the
    running app's, else one made for the call (Hydra's state is restored after)."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        yield GlobalHydra.instance().config_loader()
        return
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        yield GlobalHydra.instance().config_loader()


def _options(group: str, overrides: Iterable[str], groups: bool = False) -> list[str]:
    from hydra.core.object_type import ObjectType

    extra = _searchpath_overrides(overrides)
    kind = ObjectType.GROUP if groups else ObjectType.CONFIG
    with warnings.catch_warnings(), _config_loader() as loader:
        warnings.simplefilter("ignore")  # an unavailable search path: Hydra names it later
        found = loader.get_group_options(
            group, results_filter=kind, config_name="train" if extra else None, overrides=extra
        )
    return sorted(set(found))


def group_options(group: str, overrides: Iterable[str] = ()) -> list[str]:
    """The options of a config group (in conf/ and on the command line's hydra.searchpath), as
    Hydra's config loader lists them; [] if none."""
    return _options(group, overrides)


def config_groups(overrides: Iterable[str] = ()) -> list[str]:
    """poolbench's own config groups (Hydra's hydra/* groups are checked by Hydra)."""
    return [
        g
        for g in _options("", overrides, groups=True)
        if g != "hydra" and not g.startswith(("_", "."))
    ]


# Checkpoints written before pools and heads were `_target_` configs hold {"name": "lp", "p": 3}:
# keys renamed since (LPPool2d's own name for the power).
LEGACY_KEYS = {"p": "norm_type"}


# Values renamed since: the global head's avg ‖ max mode took timm's name (models/heads.py).
RENAMED_VALUES = {("mode", "avgmax"): "catavgmax"}

# Keys that became config groups since: a command line that sets one is told the group's
# spelling (cli/explain.py), e.g. data.tta=none -> tta=none.
KEYS_NOW_GROUPS = {"data.tta": "tta"}


def upgrade_node(group: str, node: dict[str, Any] | str) -> dict[str, Any]:
    """A checkpoint's pool, head or tta node as it is built today: an old one ({"name": …} and
    keywords, or the bare name tta was before it became a group) becomes that shipped option's
    `_target_` node with its values, and renamed values take their new names; a current one is
    returned as it is. So checkpoints from before each change still evaluate."""
    if isinstance(node, str):
        node = {"name": node}
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
