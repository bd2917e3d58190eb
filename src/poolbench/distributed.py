"""Hydra and DDP in one job: every process of a job must agree on one run folder, and only
rank zero writes Hydra's own files. Registered as OmegaConf resolvers used by conf/hydra/.

Three ways processes start:
- Lightning's DDP launcher re-runs the script for ranks 1..N-1 with `hydra.run.dir` set to the
  job's folder (see `pin_children_to_job`);
- torchrun starts every rank itself: they share the agent process, whose start time is the stamp;
- SLURM starts every task itself: the job id (and step) is the stamp.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime
from pathlib import Path

from omegaconf import OmegaConf


def rank() -> int:
    for var in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 0


def process_start(pid: int) -> float | None:
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def run_stamp() -> str:
    """The run folder's name, the same in every process of one job. Nothing is written to the
    environment: processes this one starts later must get folders of their own."""
    if "TORCHELASTIC_RUN_ID" in os.environ and (started := process_start(os.getppid())):
        stamp = datetime.fromtimestamp(started).strftime("%Y-%m-%d_%H-%M-%S")
        stamp += f"-torchrun{os.getppid()}"
    elif int(os.environ.get("SLURM_NTASKS", "1")) > 1 and "SLURM_JOB_ID" in os.environ:
        stamp = f"slurm-{os.environ['SLURM_JOB_ID']}-{os.environ.get('SLURM_STEP_ID', '0')}"
    else:
        stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S-%f")
    return stamp


def job_name(default: str) -> str:
    """Rank zero logs to <default>.log; other ranks to <default>_rank<N>.log beside it."""
    return default if rank() == 0 else f"{default}_rank{rank()}"


def output_subdir(default: str) -> str | None:
    """Only rank zero writes .hydra/ (the composed config and overrides)."""
    return default if rank() == 0 else None


def register_resolvers() -> None:
    OmegaConf.register_new_resolver("poolbench.stamp", run_stamp, replace=True, use_cache=True)
    OmegaConf.register_new_resolver("poolbench.job_name", job_name, replace=True)
    OmegaConf.register_new_resolver("poolbench.output_subdir", output_subdir, replace=True)
    OmegaConf.register_new_resolver("poolbench.parallel_jobs", _parallel_jobs, replace=True)
    OmegaConf.register_new_resolver("poolbench.gpu_share", _gpu_share, replace=True)


def _parallel_jobs(jobs_per_gpu: int, gpus: int | None = None) -> int:
    from poolbench.placement import parallel_jobs

    return parallel_jobs(jobs_per_gpu, gpus)


def _gpu_share(share: float) -> float:
    """A Ray job's num_gpus: the share where this machine has GPUs; 0 on a CPU-only machine,
    where a job asking for a GPU would wait forever."""
    from poolbench.placement import visible_gpus

    return share if visible_gpus() else 0.0


def pin_children_to_job(run_dir: Path, overrides: list[str]) -> None:
    """Before Lightning's DDP launcher re-runs this script for the other ranks: make it run this
    job (its own overrides, no -m and no sweep lists) in this job's folder, instead of the
    command line it was started with (which, under -m, would start a new sweep per rank)."""
    from hydra.core.hydra_config import HydraConfig

    sys.argv = [sys.argv[0], *overrides]
    hc = HydraConfig.get()
    # Lightning appends hydra.run.dir=<HydraConfig run.dir>: point that at this job's folder.
    OmegaConf.set_readonly(hc, False)
    hc.run.dir = str(run_dir)
    OmegaConf.set_readonly(hc, True)


def end_job(environ_before: dict[str, str]) -> None:
    """After a DDP job launched by Lightning: close the process group and drop the variables the
    launcher set (LOCAL_RANK, WORLD_SIZE, MASTER_PORT, …), so the next job of a sweep in this
    process launches its own ranks instead of joining a finished group."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    for key in set(os.environ) - set(environ_before):
        del os.environ[key]
    os.environ.update(environ_before)
