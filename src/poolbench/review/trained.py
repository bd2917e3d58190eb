"""A trained run, loaded the one way every tool does (eval, embed, visualize, figures; train's
ckpt_path reads its checkpoint here too): the checkpoint read safely (weights_only), the data
its run trained on unless the command names data=, the precision it ran at unless the command
names one, the seed, and one `error:` line for each way the pieces disagree, before any output.
"""

from __future__ import annotations

import logging
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from poolbench.config import MODEL_GROUPS, upgrade_node
from poolbench.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class LoadedRun:
    """A trained net in eval mode with the data it is judged on, as eval.py sees them."""

    cfg: DictConfig  # the command's config: ckpt_path, the run's data unless data= was given
    checkpoint: dict[str, Any]  # the checkpoint as read (weights_only)
    module: Any  # PoolNetModule with the checkpoint's weights, converted to the precision
    datamodule: Any  # ImageDataModule, prepared and set up for `stage`
    precision: Any  # Lightning's precision plugin for the precision below
    precision_why: str  # where that precision comes from (the command, the run, this machine)
    data_choice: str | None  # the run's data option where its data was used, else None


def load_trained(
    cfg: DictConfig, overrides: list[str], stage: str = "test", augment: bool | None = None
) -> LoadedRun:
    """cfg.ckpt_path's net and data, by the rules above; `overrides` are the command's (they
    decide whether the run's data and precision apply). `augment` overrides data.augment."""
    from poolbench.data.datamodule import ImageDataModule
    from poolbench.training.checks import check_trainer
    from poolbench.training.devices import precision_plugin
    from poolbench.training.module import PoolNetModule

    ckpt = read_checkpoint(cfg.ckpt_path)
    hp = ckpt["hyper_parameters"]
    data_choice = use_training_data(cfg, overrides)
    precision, why = use_training_precision(cfg, overrides)
    check_trainer(cfg)
    if wrong := model_mismatches(cfg, hp, overrides):
        raise ConfigError(
            f"checkpoint {cfg.ckpt_path} was trained with a different model: "
            f"{'; '.join(wrong)}. Drop those overrides (the model comes from the "
            "checkpoint) or pick the matching checkpoint"
        )
    if augment is not None:
        with open_dict(cfg):
            cfg.data.augment = augment
    datamodule = ImageDataModule(cfg.data, seed=cfg.get("seed") or 0)
    check_classes(hp, datamodule, cfg.data.source)
    datamodule.prepare_data()  # missing or broken data stops here, before any output
    datamodule.setup(stage)
    module = PoolNetModule(**hp)
    module.load_state_dict(ckpt["state_dict"])
    module.eval()
    plugin = precision_plugin(precision)
    plugin.convert_module(module)
    return LoadedRun(cfg, ckpt, module, datamodule, plugin, why, data_choice)


def read_checkpoint(path: str | None) -> dict[str, Any]:
    import torch

    if not path:
        raise ConfigError("no checkpoint given; pass ckpt_path=outputs/<run>/checkpoints/last.ckpt")
    p = Path(path)
    if not p.is_file():
        raise ConfigError(
            f"ckpt_path={path} does not exist; pass a .ckpt file from a run's checkpoints/ folder"
        )
    try:
        # Plain tensors and containers only: a checkpoint cannot run code when loaded this way.
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ConfigError(
            f"ckpt_path={path} is not a readable checkpoint ({type(err).__name__}); "
            "pass a .ckpt file written by poolbench"
        ) from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise ConfigError(
            f"ckpt_path={path} is not a poolbench checkpoint (no state_dict/"
            "hyper_parameters); pass a .ckpt file written by poolbench"
        )
    return ckpt


def checkpoint_choices(hparams: dict[str, Any]) -> dict[str, str]:
    """The options a checkpoint's net was built from (older checkpoints: the nodes' names)."""
    return hparams.get("choices") or {
        g: node["name"]
        for g in MODEL_GROUPS
        if isinstance(node := hparams.get(g), dict) and isinstance(node.get("name"), str)
    }


def model_mismatches(cfg: DictConfig, hparams: dict[str, Any], overrides: list[str]) -> list[str]:
    """What the command line set that disagrees with the checkpoint's model: a different
    option (head=flatten for a global net), else a different key."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    overridden = {o.key_or_group for o in parsed}
    mine_chosen = {
        o.key_or_group: o.value()
        for o in parsed
        if o.key_or_group in MODEL_GROUPS and not o.is_delete() and isinstance(o.value(), str)
    }
    theirs_chosen = checkpoint_choices(hparams)
    wrong = []
    for group in MODEL_GROUPS:
        if (
            group in mine_chosen
            and theirs_chosen.get(group, mine_chosen[group]) != (mine_chosen[group])
        ):
            wrong.append(
                f"{group}: config {mine_chosen[group]!r} vs checkpoint {theirs_chosen.get(group)!r}"
            )
            continue
        mine = OmegaConf.to_container(cfg[group], resolve=True)
        theirs = hparams.get(group, {})
        for key, value in mine.items():
            dotted = f"{group}.{key}"
            explicit = group in overridden or dotted in overridden
            if explicit and key in theirs and theirs[key] != value:
                wrong.append(f"{dotted}: config {value!r} vs checkpoint {theirs[key]!r}")
    return wrong


def training_data(cfg: DictConfig, overrides: list[str]) -> tuple[DictConfig, str] | None:
    """The data cfg.ckpt_path's run trained on (its folder's saved config, over today's
    defaults for keys added since), with this command's data.* overrides on top, and that
    run's data option; None where the command chose data= itself or the checkpoint lies
    outside a run folder."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    saved = Path(cfg.ckpt_path).resolve().parent.parent / ".hydra" / "config.yaml"
    overrides = OverridesParser.create().parse_overrides(overrides)
    if any(o.key_or_group == "data" for o in overrides) or not saved.is_file():
        return None
    data = saved_data = OmegaConf.load(saved).get("data")
    if data is None:
        return None
    data = OmegaConf.merge(OmegaConf.to_container(cfg.data), data)  # unresolved, both
    if "reader" not in saved_data:  # saved before sources were _target_ configs: by its name
        data.reader = upgrade_node("data", {"name": data.source})["reader"]
    hydra_yaml = saved.with_name("hydra.yaml")
    run = OmegaConf.load(hydra_yaml) if hydra_yaml.is_file() else OmegaConf.create()
    choice = OmegaConf.select(run, "hydra.runtime.choices.data", default=None) or data.source
    for o in overrides:
        if not o.key_or_group.startswith("data."):
            continue
        key = o.key_or_group.removeprefix("data.")
        if o.is_delete():
            parent, _, leaf = key.rpartition(".")
            node = OmegaConf.select(data, parent) if parent else data
            with open_dict(node):
                node.pop(leaf, None)
        else:
            OmegaConf.update(data, key, o.value(), force_add=True)
    return data, choice


def use_training_data(cfg: DictConfig, overrides: list[str]) -> str | None:
    """Point cfg.data at the data the checkpoint's run trained on (training_data); return
    that run's data option, or None where cfg.data stays as composed."""
    if (trained := training_data(cfg, overrides)) is None:
        return None
    with open_dict(cfg):
        cfg.data, choice = trained
    log.info("data as the checkpoint's run had it: data=%s", choice)
    return choice


def training_precision(cfg: DictConfig, overrides: list[str]) -> tuple[Any, str]:
    """The precision to test cfg.ckpt_path at, and why: the command's trainer.precision where it
    names one; else the precision the checkpoint's run ran at (its results.json: what `auto`
    resolved to there, e.g. 32-true under DDP), so the test repeats the run's own number; else
    this machine's `auto`."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    named = [
        o
        for o in OverridesParser.create().parse_overrides(overrides)
        if o.key_or_group in ("trainer", "trainer.precision")
    ]
    if named:
        return cfg.trainer.precision, f"the command's {named[-1].input_line}"
    run_dir = Path(cfg.ckpt_path).resolve().parent.parent
    results = run_dir / "results.json"
    if results.is_file():
        import json

        with suppress(ValueError, OSError):
            if ran_at := json.loads(results.read_text()).get("precision"):
                return str(ran_at), f"the run's, from {results}"
    return cfg.trainer.precision, "this machine's default: no results.json beside the run"


def use_training_precision(cfg: DictConfig, overrides: list[str]) -> tuple[Any, str]:
    """Set cfg.trainer.precision as training_precision says; return it and why."""
    precision, why = training_precision(cfg, overrides)
    with open_dict(cfg):
        cfg.trainer.precision = precision
    log.info("precision %s: %s", precision, why)
    return precision, why


def check_classes(hparams: dict[str, Any], datamodule: Any, source: str) -> None:
    """The checkpoint's classes, by count and by name, are the data's."""
    trained_on = list(hparams.get("classes") or [])
    n, names = datamodule.num_classes, datamodule.classes
    if n != hparams["num_classes"] or trained_on not in ([], names):
        raise ConfigError(
            f"the checkpoint predicts {hparams['num_classes']} classes ({shorten(trained_on)}) "
            f"but data={source} has {n} ({shorten(names)}); evaluate on the data it was "
            "trained on (without data=, poolbench takes it from the checkpoint's run folder)"
        )


def shorten(names: list[str], most: int = 4) -> str:
    return ", ".join(names[:most]) + (", …" if len(names) > most else "")
