"""Hydra's runtime, read in one place: which options the job chose, whether it is one job of
a sweep (and which keys the sweep varies), its name, and where a sweep's parallel jobs run."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

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
        from poolbench.sweeps.placement import place_job

        place_job(Path(hc.sweep.dir), (cfg.get("placement") or {}).get("gpus"))


def is_multirun() -> bool:
    return HydraConfig.get().mode == RunMode.MULTIRUN


def is_torchrun_or_slurm() -> bool:
    """Processes started outside Lightning: it launches none, so nothing to pin."""
    return "TORCHELASTIC_RUN_ID" in os.environ or int(os.environ.get("SLURM_NTASKS", "1")) > 1
