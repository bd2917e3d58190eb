"""`python eval.py ckpt_path=…`: test a checkpoint on the configured data, print and record it."""

from __future__ import annotations

import logging
from contextlib import suppress
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from poolbench.cli import run_app
from poolbench.config import CONF_DIR, MODEL_GROUPS
from poolbench.errors import ConfigError
from poolbench.train import answer_user_errors

log = logging.getLogger(__name__)


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


def model_mismatches(cfg: DictConfig, hparams: dict[str, Any]) -> list[str]:
    """What the user set on the command line that disagrees with the checkpoint's model: a
    different option (head=flatten for a global net), else a different key."""
    from poolbench.runtime import model_choices

    overridden = {o.split("=", 1)[0].lstrip("+~") for o in HydraConfig.get().overrides.task}
    mine_chosen, theirs_chosen = model_choices(), checkpoint_choices(hparams)
    wrong = []
    for group in MODEL_GROUPS:
        if group in overridden and theirs_chosen.get(group, mine_chosen.get(group)) != (
            mine_chosen.get(group)
        ):
            wrong.append(
                f"{group}: config {mine_chosen.get(group)!r} vs checkpoint "
                f"{theirs_chosen.get(group)!r}"
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
    data = OmegaConf.load(saved).get("data")
    if data is None:
        return None
    data = OmegaConf.merge(OmegaConf.to_container(cfg.data), data)  # unresolved, both
    hydra_yaml = saved.with_name("hydra.yaml")
    run = OmegaConf.load(hydra_yaml) if hydra_yaml.is_file() else {}
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


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    from poolbench.checks import check_trainer
    from poolbench.runtime import job_choices

    ckpt = read_checkpoint(cfg.ckpt_path)
    hp = ckpt["hyper_parameters"]
    overrides = list(HydraConfig.get().overrides.task)
    choices = job_choices()
    if data_choice := use_training_data(cfg, overrides):
        choices["data"] = data_choice
    _, precision_why = use_training_precision(cfg, overrides)
    check_trainer(cfg)
    if wrong := model_mismatches(cfg, hp):
        raise ConfigError(
            f"checkpoint {cfg.ckpt_path} was trained with a different model: "
            f"{'; '.join(wrong)}. Drop those overrides (the model comes from the "
            "checkpoint) or pick the matching checkpoint"
        )

    from poolbench.data.datamodule import ImageDataModule
    from poolbench.experiment import build_trainer
    from poolbench.loggers import build_loggers, finish_wandb
    from poolbench.module import PoolNetModule
    from poolbench.results import write_results

    datamodule = ImageDataModule(cfg.data, seed=cfg.seed or 0)
    check_classes(hp, datamodule, cfg.data.source)
    datamodule.prepare_data()  # missing or broken data stops here, before any output
    datamodule.setup()
    module = PoolNetModule(**hp)
    run_dir = Path(cfg.paths.output_dir)
    # nothing to checkpoint: no training, and no interrupted.ckpt beside a failed test
    eval_cfg = cfg.copy()
    with open_dict(eval_cfg):  # a callback the command deleted (~callbacks.x) may be missing
        for name in ("checkpoint", "lr_monitor", "save_on_interrupt"):
            eval_cfg.callbacks[name] = None
    record = {
        "choices": {**choices, **checkpoint_choices(hp)},
        "cost": module.cost(),
        "ckpt_path": str(Path(cfg.ckpt_path).resolve()),
        "precision_why": precision_why,  # beside `precision`, what the trainer ran at
    }
    status = "failed"
    try:
        loggers = build_loggers(eval_cfg, f"eval:{Path(cfg.ckpt_path).name}", None, ["eval"])
        trainer = build_trainer(eval_cfg, loggers, run_dir)
        tested = trainer.test(
            module, datamodule=datamodule, ckpt_path=cfg.ckpt_path, weights_only=True
        )
        metrics = tested[0] if tested else {}  # none: limit_test_batches=0
        record["precision"] = trainer.precision
        status = "ok"
    except BaseException as err:
        write_results(run_dir, status="failed", error=f"{type(err).__name__}: {err}", **record)
        raise
    finally:
        finish_wandb(0 if status == "ok" else 1)
    write_results(run_dir, status=status, metrics=metrics, **record)
    for key in ("test/acc", "test/loss"):
        if key in metrics:
            print(f"{key} {metrics[key]:.6f}")
    return metrics


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="eval")
def hydra_main(cfg: DictConfig) -> None:
    answer_user_errors(evaluate, cfg)


def main() -> None:
    run_app(hydra_main, "eval")


if __name__ == "__main__":
    main()
