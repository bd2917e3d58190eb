"""Hydra's runtime, read in one place: which options the job chose, whether it is one job of
a sweep (and which keys the sweep varies), its name, and where a sweep's parallel jobs run."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from poolbench.config import GROUPS, MODEL_GROUPS

log = logging.getLogger(__name__)

# Jobs packed into one process (hydra/launcher=packed) run side by side in threads, while
# Hydra's HydraConfig is one per process: each job thread reads its own from here.
_THIS_JOB: ContextVar[Any] = ContextVar("poolbench_job_hydra_config", default=None)


def hydra_config() -> Any:
    """This job's `hydra` node: its packed thread's own, else Hydra's (HydraConfig.get())."""
    own = _THIS_JOB.get()
    return own if own is not None else HydraConfig.get()


def hydra_initialized() -> bool:
    return _THIS_JOB.get() is not None or HydraConfig.initialized()


@contextmanager
def bound_to_job(hydra_node: Any) -> Iterator[None]:
    """Inside, hydra_config() in this thread is `hydra_node` (the packed launcher's job)."""
    token = _THIS_JOB.set(hydra_node)
    try:
        yield
    finally:
        _THIS_JOB.reset(token)


def packed_jobs() -> int | None:
    """Jobs trained side by side in this process (hydra/launcher=packed), else None (also
    outside Hydra: a Trainer built by the benchmark)."""
    if not hydra_initialized():
        return None
    hc = hydra_config()
    if hc.mode != RunMode.MULTIRUN or "Packed" not in str(hc.launcher.get("_target_", "")):
        return None
    return int(hc.launcher.jobs)


def job_choices() -> dict[str, str]:
    choices = hydra_config().runtime.choices
    return {g: choices[g] for g in GROUPS if choices.get(g) is not None}


def model_choices() -> dict[str, str]:
    """The options that chose the network (head, pool, model), when Hydra ran the job."""
    if not hydra_initialized():
        return {}
    return {g: c for g, c in job_choices().items() if g in MODEL_GROUPS}


def swept_keys() -> set[str] | None:
    """Keys a multirun varies (command-line sweeps and hydra.sweeper.params); None outside one."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    hc = hydra_config()
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
    overrides = [o for o in hydra_config().overrides.task if not o.startswith(("hydra", "paths"))]
    swept = swept_keys()
    if swept:
        overrides = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") in swept]
    return ",".join(overrides) or "defaults"


def sweep_group() -> str | None:
    """Jobs of one sweep share a W&B group: the sweep folder, e.g. train-sweep/<date>_<time>."""
    hc = hydra_config()
    if hc.mode != RunMode.MULTIRUN:
        return None
    sweep_dir = Path(hc.sweep.dir)
    return f"{sweep_dir.parent.name}/{sweep_dir.name}"


def limit_threads() -> None:
    """Parallel local jobs (joblib launcher, or packed in one process) share the cores:
    jobs x threads <= cores."""
    import torch

    hc = hydra_config()
    n_jobs = hc.launcher.get("n_jobs") if hc.mode == RunMode.MULTIRUN else None
    n_jobs = packed_jobs() or n_jobs
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
    hc = hydra_config()
    if hc.mode == RunMode.MULTIRUN and "joblib" in str(hc.launcher.get("_target_", "")):
        from poolbench.sweeps.placement import place_job

        place_job(Path(hc.sweep.dir), (cfg.get("placement") or {}).get("gpus"))


def is_multirun() -> bool:
    return hydra_config().mode == RunMode.MULTIRUN


def is_torchrun_or_slurm() -> bool:
    """Processes started outside Lightning: it launches none, so nothing to pin."""
    return "TORCHELASTIC_RUN_ID" in os.environ or int(os.environ.get("SLURM_NTASKS", "1")) > 1
