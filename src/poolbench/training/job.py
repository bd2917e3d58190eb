"""One training job, as a story: check the config, build data and model (where bad input shows
up), then fit and test inside `recorded` (record.py), which writes results.json and finishes
W&B however the job ends. Hydra's runtime is read in runtime.py."""

from __future__ import annotations

import logging
import os
import socket
import time
import warnings
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from poolbench.sweeps.runtime import (
    hydra_config,
    is_multirun,
    is_torchrun_or_slurm,
    job_choices,
    job_name,
    limit_threads,
    model_choices,
    packed_jobs,
    place_on_gpu,
    sweep_group,
)
from poolbench.training.checks import validate
from poolbench.training.record import model_checkpoint, recorded, wandb_run

log = logging.getLogger(__name__)


def plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True)


def build_module(cfg: DictConfig, num_classes: int, classes: list[str]) -> Any:
    from poolbench.training.module import PoolNetModule

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
        tta=plain(cfg.tta),
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
    if packed_jobs():
        from poolbench.sweeps.packing import packed_job_callbacks

        callbacks += packed_job_callbacks()
    precision = cfg.trainer.precision
    if precision == "auto":
        from poolbench.training.devices import auto_precision

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
    from poolbench.training.loggers import wandb_logger

    flat = {f"params/{k}": v for k, v in cost["params"].items()}
    flat["flops/forward"] = cost["flops_per_image"]
    flat.update(cost.get("setup", {}))
    for lg in loggers:
        lg.log_hyperparams({**choices, **flat, "config": plain(cfg)})
    wb = wandb_logger(loggers)
    if wb is not None and wb.experiment is not None and hasattr(wb.experiment, "summary"):
        wb.experiment.summary.update(flat)  # flat scalars: W&B scatter/parallel panels use them


def train(cfg: DictConfig) -> float | None:
    from poolbench.errors import UserError
    from poolbench.training.results import write_results

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
        if cfg.ckpt_path:  # resume=latest's too: the file and its network, before any output
            from poolbench.training.resume import check_checkpoint_fits

            check_checkpoint_fits(cfg.ckpt_path, module, choices)
    except UserError as err:
        if is_multirun():  # the sweep's report lists the job and why it failed
            write_results(run_dir, status="failed", choices=choices, error=str(err))
        raise  # a single run's folder is removed by train.answer_user_errors
    return fit_and_test(cfg, datamodule, module, run_dir, choices, resume_id)


def resolve_resume(cfg: DictConfig, run_dir: Path) -> str | None:
    """Point ckpt_path at the previous run's last checkpoint; return its W&B run id."""
    from omegaconf import open_dict

    from poolbench.training.resume import find_previous

    previous = find_previous(run_dir.parent, run_dir, list(hydra_config().overrides.task))
    log.info("resuming %s from %s", previous.run_dir, previous.ckpt_path)
    with open_dict(cfg):
        cfg.ckpt_path = str(previous.ckpt_path)
    return previous.wandb_run_id


def setup(cfg: DictConfig) -> tuple[Any, Any]:
    """Data module and model: cheap, and where bad input shows up."""
    import lightning as L

    from poolbench.data.datamodule import ImageDataModule
    from poolbench.sweeps.packing import GLOBAL_RNG

    limit_threads()
    with GLOBAL_RNG:  # jobs packed in one process take turns at the global generator
        if cfg.seed is not None:
            L.seed_everything(cfg.seed, workers=True)
        datamodule = ImageDataModule(cfg.data, seed=cfg.seed or 0)
        module = build_module(cfg, datamodule.num_classes, datamodule.classes)
    # Download/decode and split now, before any logger or output exists, so missing data or an
    # empty split stops the run cleanly. Under DDP only local rank 0 does it (Lightning calls
    # both again: a cache hit, and setup returns at once).
    if os.environ.get("LOCAL_RANK", "0") == "0":
        datamodule.prepare_data()
        datamodule.setup()
    return datamodule, module


def fit_and_test(
    cfg: DictConfig,
    datamodule: Any,
    module: Any,
    run_dir: Path,
    choices: dict[str, str],
    resume_id: str | None = None,
) -> float | None:
    """Loggers, trainer, fit, test the best checkpoint; `recorded` writes what happened."""
    from poolbench.training import fast_path
    from poolbench.training.devices import where_it_runs
    from poolbench.training.loggers import build_loggers

    cost = module.cost()
    log.info("params %s, %.2f MFLOPs/image", cost["params"], cost["flops_per_image"] / 1e6)
    with recorded(run_dir, choices, cost) as record:
        tags = [f"{g}:{choices[g]}" for g in ("head", "pool", "data") if g in choices]
        loggers = build_loggers(cfg, job_name(), sweep_group(), tags, resume_id)
        trainer = record.trainer = build_trainer(cfg, loggers, run_dir)
        device = record.device = where_it_runs(
            type(trainer.accelerator).__name__.removesuffix("Accelerator").lower(),
            trainer.strategy.root_device,
            trainer.world_size,
        )
        fast = fast_path.apply(cfg, trainer, module, datamodule)
        fast_path.check_resume(cfg.ckpt_path, fast.stack)
        record.fast_path = {"stack": fast.stack, "cuda_graph": fast.cuda_graph}
        log.info(
            "fast path: %s",
            f"{fast.stack} steps per call, CUDA graph {'on' if fast.cuda_graph else 'off'}"
            + (f" ({fast.why_not})" if fast.why_not else "")
            if fast.on
            else f"off ({fast.why_not})",
        )
        setup_facts = {
            "batch/per_device": cfg.data.batch_size,
            "batch/global": cfg.data.batch_size * trainer.world_size,
            "trainer/precision": trainer.precision,  # what `auto` chose
            "fast/stack": fast.stack,  # what `fast.enabled=auto` chose
            "fast/cuda_graph": fast.cuda_graph,
            **{f"device/{k}": v for k, v in device.items()},
        }
        if trainer.is_global_zero:  # other DDP ranks hold dummy loggers
            record_cost(loggers, cfg, choices, {**cost, "setup": setup_facts})
        record.wandb_run = wandb_run(loggers)
        if trainer.world_size > 1 and trainer.is_global_zero and not is_torchrun_or_slurm():
            from poolbench.sweeps.distributed import pin_children_to_job

            pin_children_to_job(run_dir, list(hydra_config().overrides.task))
        fit_start = time.perf_counter()
        with warnings.catch_warnings():
            if cfg.ckpt_path is None and not any((run_dir / "checkpoints").glob("*.ckpt")):
                # With OnExceptionCheckpoint on, Lightning looks for a last checkpoint to resume
                # from and warns twice that a fresh run, in its own new folder, has none.
                warnings.filterwarnings("ignore", message=r'.*fit\(ckpt_path=(None|"last")\)')
            trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.ckpt_path, weights_only=True)
        record.fit_seconds = time.perf_counter() - fit_start
        record.fit_end = time.time()
        if module.stacked is not None:  # what ran: a capture that failed fell back to eager
            record.fast_path["cuda_graph"] = module.stacked.graph is not None
        record.metrics.update(trainer.callback_metrics)
        ckpt = model_checkpoint(trainer)  # its best file, by path: two Checkpoint callbacks
        best = (ckpt.best_model_path or "best") if ckpt is not None else None
        tested = trainer.test(module, datamodule, ckpt_path=best, weights_only=True)
        record.metrics.update(tested[0] if tested else {})  # none: limit_test_batches=0
        record.status = "ok"
    return record.metrics.get(cfg.get("optimized_metric", "val/acc_best"))
