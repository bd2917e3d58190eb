"""Hydra and DDP in one job: every process of a job must agree on one run folder, and only
rank zero writes Hydra's own files. Registered as OmegaConf resolvers used by conf/hydra/.

Three ways processes start:
- Lightning's DDP launcher re-runs the script for ranks 1..N-1 with `hydra.run.dir` set to the
  job's folder (see `pin_children_to_job`);
- torchrun starts every rank itself, on one node or many: rank zero picks the stamp and hands it
  to the others through the store the torchrun agents share (c10d or static rendezvous), so
  every node of a job writes into one folder;
- SLURM starts every task itself, on every node: the job id (and step) is the stamp.
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


STAMP_KEY = "poolbench/run_stamp"  # in the torchrun agents' store; torch's own keys are prefixed
STORE_TIMEOUT_S = 300  # how long ranks wait for rank zero's stamp (it composes its config first)


def now_stamp() -> str:
    return datetime.now().strftime("%Y-%m-%d_%H-%M-%S-%f")  # microseconds: two runs a second


def run_stamp() -> str:
    """The run folder's name, the same in every process of one job, on every node. Nothing is
    written to the environment: processes this one starts later must get folders of their own."""
    if "TORCHELASTIC_RUN_ID" in os.environ:
        return torchrun_stamp()
    if int(os.environ.get("SLURM_NTASKS", "1")) > 1 and "SLURM_JOB_ID" in os.environ:
        # SLURM's job id: shared by the job's tasks on all its nodes, new for each job
        return f"slurm-{os.environ['SLURM_JOB_ID']}-{os.environ.get('SLURM_STEP_ID', '0')}"
    return now_stamp()


def torchrun_stamp() -> str:
    """Rank zero's time, shared through the TCPStore the torchrun agents serve at
    MASTER_ADDR:MASTER_PORT (TORCHELASTIC_USE_AGENT_STORE, c10d and static rendezvous): the
    same for every node of the job, new for every launch. A rank restarted by the agent
    (--max-restarts) finds the stamp already there and keeps the job's folder."""
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True":
        from datetime import timedelta

        from torch.distributed import TCPStore

        store = TCPStore(
            os.environ["MASTER_ADDR"],
            int(os.environ["MASTER_PORT"]),
            is_master=False,
            timeout=timedelta(seconds=STORE_TIMEOUT_S),
        )
        if rank() == 0:  # set once: an empty expected value only matches a missing key
            stamp = store.compare_set(STAMP_KEY, "", f"{now_stamp()}-torchrun")
        else:
            stamp = store.get(STAMP_KEY)  # waits for rank zero
        return stamp.decode()
    # No shared store (an etcd rendezvous, TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1): the ranks of
    # one node share their agent, whose start time names the folder; other nodes differ.
    agent = os.getppid()
    started = process_start(agent) or 0.0
    return datetime.fromtimestamp(started).strftime("%Y-%m-%d_%H-%M-%S") + f"-torchrun{agent}"


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
    from poolbench.sweeps.placement import parallel_jobs

    return parallel_jobs(jobs_per_gpu, gpus)


def _gpu_share(share: float) -> float:
    """A Ray job's num_gpus: the share where this machine has GPUs; 0 on a CPU-only machine,
    where a job asking for a GPU would wait forever."""
    from poolbench.sweeps.placement import visible_gpus

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
