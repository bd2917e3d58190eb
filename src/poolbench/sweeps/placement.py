"""Which GPU each job of a parallel local sweep uses.

Ray places its own jobs (fractional `num_gpus`, and it sets CUDA_VISIBLE_DEVICES per task).
Under Hydra's joblib launcher poolbench does it: each worker process claims a numbered slot in
the sweep folder, and slot i uses GPU i mod N. So `n_jobs` workers share N GPUs evenly, and a
worker keeps its GPU for every job it runs: a process cannot move to another GPU once CUDA is
initialised, and joblib reuses its worker processes.
"""

from __future__ import annotations

import glob
import logging
import os
import subprocess
from pathlib import Path

log = logging.getLogger(__name__)
SLOTS = ".placement"  # in the sweep folder: one file per worker process, holding its pid
_claimed: dict[Path, int] = {}  # this process's slot, per sweep folder
_placed: dict[Path, str] = {}  # and the GPU it was bound to


def visible_gpus() -> list[str]:
    """This machine's GPU ids, without initialising CUDA (CUDA_VISIBLE_DEVICES must be set
    before that, or it is ignored)."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g.strip() for g in env.split(",") if g.strip() and g.strip() != "-1"]
    n = len(glob.glob("/proc/driver/nvidia/gpus/*"))
    if n == 0:
        try:
            out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
            n = out.stdout.count("GPU ") if out.returncode == 0 else 0
        except (OSError, subprocess.TimeoutExpired):
            n = 0
    return [str(i) for i in range(n)]


def gpu_ids(gpus: int | None) -> list[str]:
    """`placement.gpus`: null = every visible GPU; N = the first N (all there are, where the
    machine has fewer); N logical ids on a machine without GPUs, so a CPU machine still spreads
    its jobs, as the tests check."""
    ids = visible_gpus()
    if gpus is None:
        return ids
    if not ids:
        return [str(i) for i in range(gpus)]
    if len(ids) < gpus:
        log.warning("placement.gpus=%d, but only GPUs %s are visible: using those", gpus, ids)
    return ids[:gpus]


def parallel_jobs(jobs_per_gpu: int, gpus: int | None = None) -> int:
    """n_jobs for conf/hydra/launcher/joblib_gpus.yaml: jobs_per_gpu on every GPU at once."""
    return max(1, jobs_per_gpu * max(1, len(gpu_ids(gpus))))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim_slot(folder: Path) -> int:
    """The lowest slot no live process holds; a dead worker's slot is taken over."""
    folder = folder.resolve()
    if folder in _claimed:
        return _claimed[folder]
    folder.mkdir(parents=True, exist_ok=True)
    slot = 0
    while True:
        path = folder / f"worker-{slot}"
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                owner = int(path.read_text() or 0)
            except (OSError, ValueError):
                owner = 0
            if owner and not _alive(owner):
                path.unlink(missing_ok=True)  # then try this slot again
            else:
                slot += 1
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        _claimed[folder] = slot
        return slot


def place_job(sweep_dir: Path, gpus: int | None) -> str | None:
    """For a job of a joblib sweep: bind this worker process to its GPU (CUDA_VISIBLE_DEVICES)
    and return the GPU id; None where there is no GPU to place on."""
    folder = (sweep_dir / SLOTS).resolve()
    if folder in _placed:  # a later job of this worker: the same GPU
        return _placed[folder]
    ids = gpu_ids(gpus)
    if not ids:
        return None
    gpu = ids[claim_slot(folder) % len(ids)]
    import torch

    current = os.environ.get("CUDA_VISIBLE_DEVICES")
    if torch.cuda.is_initialized() and current != gpu:
        log.warning("CUDA already runs on GPU %s in this worker; the job stays there", current)
        gpu = current or gpu
    else:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    _placed[folder] = gpu
    log.info("joblib worker slot %d: GPU %s", _claimed[folder], gpu)
    return gpu
