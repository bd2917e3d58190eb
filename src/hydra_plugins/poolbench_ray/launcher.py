"""poolbench's Ray launcher: hydra-ray-launcher, waiting for every job before it reports.

The plugin's own launcher collects its jobs in order and stops at the first whose Ray worker
died (killed, out of memory): the sweep then ends and Ray stops the jobs still running. This
one collects every job, records a dead one as failed (its results.json too), and lets Hydra
fail the sweep once all are done, as the other launchers do.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

try:
    from hydra_plugins.hydra_ray_launcher.ray_launcher import RayLauncher
except ImportError:  # the optional extra poolbench[ray] is not installed
    RayLauncher = None

log = logging.getLogger(__name__)

if RayLauncher is not None:

    class PoolbenchRayLauncher(RayLauncher):
        def launch(
            self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
        ) -> Sequence[Any]:
            import ray
            from hydra.core.singleton import Singleton
            from hydra.core.utils import configure_log, filter_overrides, setup_globals
            from hydra_plugins.hydra_ray_launcher._launcher_util import (
                launch_job_on_ray,
                start_ray,
            )
            from omegaconf import open_dict

            setup_globals()
            assert self.config is not None and self.hydra_context is not None
            configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
            sweep_dir = Path(str(self.config.hydra.sweep.dir))
            sweep_dir.mkdir(parents=True, exist_ok=True)
            log.info(f"Ray launcher: {len(job_overrides)} jobs, sweep folder {sweep_dir}")
            if not self.ray_cfg.init.get("address"):
                # A local Ray: its jobs exchange only configs and results (the plugin's value).
                self.ray_cfg.init.setdefault("object_store_memory", 78643200)
            join_ray(start_ray, self.ray_cfg.init)
            jobs = []
            for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
                log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
                cfg = self.hydra_context.config_loader.load_sweep_config(
                    self.config, list(overrides)
                )
                with open_dict(cfg):
                    cfg.hydra.job.id = f"job_id_for_{idx}"
                    cfg.hydra.job.num = idx
                ref = launch_job_on_ray(
                    self.hydra_context,
                    self.ray_cfg.remote,
                    cfg,
                    functools.partial(then_close_wandb, self.task_function),
                    Singleton.get_state(),
                )
                jobs.append((ref, cfg))
            returns = []
            for ref, cfg in jobs:
                try:
                    returns.append(ray.get(ref))
                except Exception as err:  # no JobReturn came back: the worker died
                    returns.append(lost_job(cfg, err))
            return returns

    def lost_job(cfg: Any, err: Exception) -> Any:
        from hydra.core.utils import JobReturn, JobStatus

        from poolbench.training.results import record_lost_job

        job_dir = Path(str(cfg.hydra.sweep.dir)) / str(cfg.hydra.sweep.subdir)
        reason = f"its Ray worker died ({type(err).__name__}); rerun it with resume=latest"
        record_lost_job(job_dir, dict(cfg.hydra.runtime.choices), reason)
        log.error(f"job {cfg.hydra.job.num} ({job_dir}): {reason}")
        ret = JobReturn(overrides=list(cfg.hydra.overrides.task), cfg=cfg, working_dir=str(job_dir))
        ret.status = JobStatus.FAILED
        ret._return_value = RuntimeError(f"job {cfg.hydra.job.num}: {reason}")
        return ret


def join_ray(start_ray: Any, init: Any) -> None:
    """Start or join Ray; a cluster that does not let us in is one `error:` line, not Ray's
    traceback. Ray 2.5x clusters started with token auth refuse a client without the token,
    after 20 s of retries that name the cause only in Ray's own log."""
    import os

    from poolbench.errors import fail

    address = init.get("address")
    try:
        start_ray(init)
    except ConnectionError:
        if not address:
            raise
        fail(join_failed(address, os.environ.get("RAY_AUTH_MODE")))


def join_failed(address: str, auth_mode: str | None) -> str:
    where = f"hydra.launcher.ray.init.address={address}: Ray could not join that cluster"
    if auth_mode != "token":
        return (
            f"{where}; a cluster with token auth (Ray 2.5x, `ray start` with RAY_AUTH_MODE=token) "
            "refuses clients without its token: export RAY_AUTH_MODE=token, with the cluster's "
            "token in ~/.ray/auth_token (or RAY_AUTH_TOKEN_PATH=FILE); else check the address"
        )
    return (
        f"{where} with RAY_AUTH_MODE=token: check the address, and that ~/.ray/auth_token (or "
        "RAY_AUTH_TOKEN_PATH / RAY_AUTH_TOKEN) holds the token the cluster was started with"
    )


def then_close_wandb(task_function: Any, cfg: Any) -> Any:
    """Run a job on a Ray worker, then close the worker's W&B service while the worker lives:
    Ray ends its workers' processes together, and W&B's own exit hook would then write a
    traceback into the sweep's log for a service already gone."""
    import sys

    try:
        return task_function(cfg)
    finally:
        if "wandb" in sys.modules:
            sys.modules["wandb"].teardown()
