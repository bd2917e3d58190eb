"""One training job: build data and model, fit, test the best checkpoint, record results."""

from __future__ import annotations

import logging
import os
import socket
import time
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from poolbench.checks import validate
from poolbench.config import GROUPS, MODEL_GROUPS

log = logging.getLogger(__name__)


def job_choices() -> dict[str, str]:
    choices = HydraConfig.get().runtime.choices
    return {g: choices[g] for g in GROUPS if choices.get(g) is not None}


def model_choices() -> dict[str, str]:
    """The options that chose the network (head, pool, model), when Hydra ran the job."""
    if not HydraConfig.initialized():
        return {}
    return {g: c for g, c in job_choices().items() if g in MODEL_GROUPS}


def swept_keys() -> set[str] | None:
    """Keys a multirun varies (command-line sweeps and hydra.sweeper.params); None outside one."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    hc = HydraConfig.get()
    if hc.mode != RunMode.MULTIRUN:
        return None
    keys = set((hc.sweeper.get("params") or {}).keys())
    sweep_file = Path(hc.sweep.dir) / "multirun.yaml"
    if sweep_file.exists():
        command_line = OmegaConf.load(sweep_file).hydra.overrides.task
        parsed = OverridesParser.create().parse_overrides(list(command_line))
        keys |= {o.key_or_group for o in parsed if o.is_sweep_override()}
    return keys


def job_name() -> str:
    """A readable run name from the overrides, e.g. head=global,pool=max,seed=1 (in a sweep,
    only the keys the sweep varies)."""
    overrides = [
        o for o in HydraConfig.get().overrides.task if not o.startswith(("hydra", "paths"))
    ]
    swept = swept_keys()
    if swept:
        overrides = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") in swept]
    return ",".join(overrides) or "defaults"


def sweep_group() -> str | None:
    """Jobs of one sweep share a W&B group: the sweep folder, e.g. train-sweep/<date>_<time>."""
    hc = HydraConfig.get()
    if hc.mode != RunMode.MULTIRUN:
        return None
    sweep_dir = Path(hc.sweep.dir)
    return f"{sweep_dir.parent.name}/{sweep_dir.name}"


def limit_threads() -> None:
    """Parallel local jobs (joblib launcher) share the cores: jobs x threads <= cores."""
    import os

    import torch

    hc = HydraConfig.get()
    n_jobs = hc.launcher.get("n_jobs") if hc.mode == RunMode.MULTIRUN else None
    if n_jobs is None:
        return
    cores = os.cpu_count() or 1
    parallel = cores if n_jobs < 0 else max(1, min(n_jobs, cores))
    torch.set_num_threads(max(1, cores // parallel))
    log.info(
        "torch threads: %d (%d jobs at once on %d cores)", torch.get_num_threads(), parallel, cores
    )


def place_on_gpu(cfg: DictConfig) -> None:
    """Parallel local sweeps (joblib) spread their jobs over the GPUs; Ray places its own."""
    hc = HydraConfig.get()
    if hc.mode == RunMode.MULTIRUN and "joblib" in str(hc.launcher.get("_target_", "")):
        from poolbench.placement import place_job

        place_job(Path(hc.sweep.dir), (cfg.get("placement") or {}).get("gpus"))


def plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True)


def build_module(cfg: DictConfig, num_classes: int, classes: list[str]) -> Any:
    from poolbench.module import PoolNetModule

    return PoolNetModule(
        model=plain(cfg.model),
        head=plain(cfg.head),
        pool=plain(cfg.pool),
        optimizer=plain(cfg.optimizer),
        scheduler=plain(cfg.scheduler),
        num_classes=num_classes,
        image_size=cfg.data.image_size,
        classes=classes,
        label_smoothing=cfg.label_smoothing,
        tta=cfg.data.tta,
        choices=model_choices(),
    )


def build_trainer(cfg: DictConfig, loggers: list[Any], run_dir: Path) -> Any:
    from hydra.utils import instantiate

    # Callbacks that Lightning refuses in this set-up are left out rather than failing the run.
    skip = set() if loggers else {"lr_monitor"}
    if not cfg.trainer.get("enable_progress_bar", True):
        skip.add("progress_bar")
    callbacks = [
        instantiate(node)
        for key, node in (cfg.get("callbacks") or {}).items()
        if node is not None and key not in skip
    ]
    precision = cfg.trainer.precision
    if precision == "auto":
        from poolbench.devices import auto_precision

        precision = auto_precision(cfg.trainer.accelerator)
    deterministic = cfg.trainer.deterministic
    if deterministic is None:
        # warn-only: some CUDA kernels (adaptive max pool backward) have no deterministic version
        deterministic = "warn" if cfg.seed is not None else False
    return instantiate(
        cfg.trainer,
        logger=loggers or False,
        callbacks=callbacks,
        default_root_dir=str(run_dir),
        deterministic=deterministic,
        precision=precision,
    )


def record_cost(
    loggers: list[Any], cfg: DictConfig, choices: dict[str, str], cost: dict[str, Any]
) -> None:
    from poolbench.loggers import wandb_logger

    flat = {f"params/{k}": v for k, v in cost["params"].items()}
    flat["flops/forward"] = cost["flops_per_image"]
    flat.update(cost.get("setup", {}))
    for lg in loggers:
        lg.log_hyperparams({**choices, **flat, "config": plain(cfg)})
    wb = wandb_logger(loggers)
    if wb is not None and wb.experiment is not None and hasattr(wb.experiment, "summary"):
        wb.experiment.summary.update(flat)  # flat scalars: W&B scatter/parallel panels use them


def is_torchrun_or_slurm() -> bool:
    """Processes started outside Lightning: it launches none, so nothing to pin."""
    return "TORCHELASTIC_RUN_ID" in os.environ or int(os.environ.get("SLURM_NTASKS", "1")) > 1


def is_multirun() -> bool:
    return HydraConfig.get().mode == RunMode.MULTIRUN


def discard_if_empty(run_dir: Path) -> None:
    """A run stopped by bad input leaves no folder behind (Hydra made it before we ran)."""
    import shutil

    if run_dir.is_dir() and all(p.name in (".hydra", "train.log") for p in run_dir.iterdir()):
        shutil.rmtree(run_dir, ignore_errors=True)


def train(cfg: DictConfig) -> float | None:
    from poolbench.errors import UserError
    from poolbench.results import write_results

    run_dir = Path(cfg.paths.output_dir)
    choices = job_choices()
    resume_id = None
    place_on_gpu(cfg)  # before anything can initialise CUDA in this process
    log.info("job in %s: pid %d on %s", run_dir, os.getpid(), socket.gethostname())
    try:
        validate(cfg)
        if cfg.get("resume"):
            resume_id = resolve_resume(cfg, run_dir)
        datamodule, module = setup(cfg)
    except UserError as err:
        if is_multirun():  # the sweep's report lists the job and why it failed
            write_results(run_dir, status="failed", choices=choices, error=str(err))
        else:
            discard_if_empty(run_dir)
        raise
    return fit_and_test(cfg, datamodule, module, run_dir, choices, resume_id)


def resolve_resume(cfg: DictConfig, run_dir: Path) -> str | None:
    """Point ckpt_path at the previous run's last checkpoint; return its W&B run id."""
    from omegaconf import open_dict

    from poolbench.resume import find_previous

    previous = find_previous(run_dir.parent, run_dir, list(HydraConfig.get().overrides.task))
    log.info("resuming %s from %s", previous.run_dir, previous.ckpt_path)
    with open_dict(cfg):
        cfg.ckpt_path = str(previous.ckpt_path)
    return previous.wandb_run_id


def setup(cfg: DictConfig) -> tuple[Any, Any]:
    """Data module and model: cheap, and where bad input shows up."""
    import lightning as L

    from poolbench.data.datamodule import ImageDataModule

    limit_threads()
    if cfg.seed is not None:
        L.seed_everything(cfg.seed, workers=True)
    datamodule = ImageDataModule(cfg.data, seed=cfg.seed or 0)
    module = build_module(cfg, datamodule.num_classes, datamodule.classes)
    # Download/decode now, before any logger or output exists, so missing data stops the run
    # cleanly. Under DDP only local rank 0 does it (Lightning calls it again: a cache hit).
    if os.environ.get("LOCAL_RANK", "0") == "0":
        datamodule.prepare_data()
    return datamodule, module


def fit_and_test(
    cfg: DictConfig,
    datamodule: Any,
    module: Any,
    run_dir: Path,
    choices: dict[str, str],
    resume_id: str | None = None,
) -> float | None:
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from poolbench.devices import where_it_runs
    from poolbench.loggers import build_loggers, finish_wandb
    from poolbench.results import write_results

    cost = module.cost()
    log.info("params %s, %.2f MFLOPs/image", cost["params"], cost["flops_per_image"] / 1e6)
    start, status, error = time.time(), "failed", None
    device: dict[str, Any] | None = None
    metrics: dict[str, Any] = {}
    trainer, wandb_id = None, None
    environ_before = dict(os.environ)
    try:
        tags = [f"{g}:{choices[g]}" for g in ("head", "pool", "data") if g in choices]
        loggers = build_loggers(cfg, job_name(), sweep_group(), tags, resume_id)
        trainer = build_trainer(cfg, loggers, run_dir)
        device = where_it_runs(
            type(trainer.accelerator).__name__.removesuffix("Accelerator").lower(),
            trainer.strategy.root_device,
            trainer.world_size,
        )
        setup_facts = {
            "batch/per_device": cfg.data.batch_size,
            "batch/global": cfg.data.batch_size * trainer.world_size,
            "trainer/precision": trainer.precision,  # what `auto` chose
            **{f"device/{k}": v for k, v in device.items()},
        }
        if trainer.is_global_zero:  # other DDP ranks hold dummy loggers
            record_cost(loggers, cfg, choices, {**cost, "setup": setup_facts})
        wandb_id = wandb_run_id(loggers)
        if trainer.world_size > 1 and trainer.is_global_zero and not is_torchrun_or_slurm():
            from poolbench.distributed import pin_children_to_job

            pin_children_to_job(run_dir, list(HydraConfig.get().overrides.task))
        trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.ckpt_path, weights_only=True)
        metrics.update(trainer.callback_metrics)
        best = "best" if trainer.checkpoint_callback is not None else None
        metrics.update(trainer.test(module, datamodule, ckpt_path=best, weights_only=True)[0])
        status = "ok"
    except SIGTERMException:  # a SystemExit with no code: the job would look successful
        status, error = "interrupted", "stopped by SIGTERM; rerun with resume=latest"
        raise SystemExit(143) from None
    except (KeyboardInterrupt, SystemExit):  # Lightning turns Ctrl-C into SystemExit(1)
        status, error = "interrupted", "stopped by Ctrl-C; rerun with resume=latest"
        raise
    except Exception as err:
        error = f"{type(err).__name__}: {err}"
        raise
    finally:
        if trainer is None or trainer.is_global_zero:
            ckpt = getattr(trainer, "checkpoint_callback", None)
            write_results(
                run_dir,
                status=status,
                choices=choices,
                cost=cost,
                metrics=metrics,
                epochs=trainer.current_epoch if trainer else 0,
                seconds=time.time() - start,
                error=error,
                best_checkpoint=ckpt.best_model_path if ckpt else None,
                seconds_per_epoch=_epoch_seconds(trainer),
                startup_seconds=_timer(trainer).startup_seconds if _timer(trainer) else None,
                wandb_run_id=wandb_id,
                precision=trainer.precision if trainer else None,
                device=device,
                started_at=round(start, 3),  # Unix time: a sweep's wall-clock spans its jobs
                ended_at=round(time.time(), 3),
            )
        finish_wandb({"ok": 0, "interrupted": 130}.get(status, 1), status)
        if trainer is not None and trainer.world_size > 1 and not is_torchrun_or_slurm():
            from poolbench.distributed import end_job

            end_job(environ_before)
    return metrics.get(cfg.get("optimized_metric", "val/acc_best"))


def wandb_run_id(loggers: list[Any]) -> str | None:
    """Recorded so later steps (embed.py, resume) can add to the same W&B run."""
    from poolbench.loggers import wandb_logger

    wb = wandb_logger(loggers)
    return getattr(wb.experiment, "id", None) if wb is not None else None


def _timer(trainer: Any) -> Any:
    from poolbench.callbacks import EpochTimer

    return next(
        (cb for cb in getattr(trainer, "callbacks", []) if isinstance(cb, EpochTimer)), None
    )


def _epoch_seconds(trainer: Any) -> float | None:
    timer = _timer(trainer)
    if timer is None or not timer.epoch_seconds:
        return None
    return round(sum(timer.epoch_seconds) / len(timer.epoch_seconds), 3)
