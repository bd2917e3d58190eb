"""poolbench's packed launcher: a sweep's jobs trained side by side in one process.

Separate processes on one GPU take turns on it (time-slicing); threads of one process, each
job issuing its kernels on its own CUDA stream, can run their kernels at the same time. These
nets are far too small to fill a GPU alone, so a sweep gains from packing them.

Each job keeps what it has with any other launcher: its folder, .hydra/ files, log file,
results.json, checkpoints and finished W&B run, its seed's weights and batches, and its own
failure (recorded, the other jobs go on; Hydra fails the sweep once all are done).

Hydra keeps one HydraConfig per process: a job takes the launcher's lock while Hydra sets it
up (run_job), copies its own into poolbench's runtime (sweeps/runtime.py), and lets go.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import (
    JobReturn,
    configure_log,
    filter_overrides,
    run_job,
    setup_globals,
)
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

log = logging.getLogger(__name__)

LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"  # Hydra's job log format


class PackedLauncher(Launcher):
    def __init__(self, jobs: int = 4) -> None:
        self.jobs = jobs  # trained at once in this process
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_turn = threading.Lock()  # held while Hydra's singletons are one job's

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        from poolbench.errors import fail

        setup_globals()
        assert self.config is not None and self.hydra_context is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        if self.jobs < 1:
            fail(f"hydra.launcher.jobs={self.jobs}: jobs packed in one process must be 1 or more")
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        configs = []
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
            with open_dict(cfg):
                cfg.hydra.job.id, cfg.hydra.job.num = idx, idx
            problem = why_not_packed(cfg)
            if problem:  # before any job starts: nothing half-done to clean up
                fail(f"job #{idx} ({' '.join(filter_overrides(overrides))}): {problem}")
            configs.append(cfg)
        log.info(f"Packed launcher: {len(configs)} jobs, {self.jobs} at once in this process")
        for cfg in configs:
            log.info(
                f"\t#{cfg.hydra.job.num} : {' '.join(filter_overrides(cfg.hydra.overrides.task))}"
            )
        # SIGTERM (a cluster's notice) stops the jobs as Ctrl-C does, not the process at once
        sigterm = signal.signal(signal.SIGTERM, signal.default_int_handler)
        with ThreadPoolExecutor(self.jobs, thread_name_prefix="packed-job") as pool:
            futures = [pool.submit(self._run, cfg) for cfg in configs]
            try:
                return [f.result() for f in futures]
            except KeyboardInterrupt:  # only this thread hears signals: the jobs are told
                from poolbench.sweeps.packing import STOP

                log.warning("Stopping: each running job stops at its next batch and records it")
                STOP.set()
                for f in futures:
                    f.cancel()  # the jobs not started yet
                wait(futures)
            finally:
                signal.signal(signal.SIGTERM, sigterm)
        print(
            "interrupted: each running job saved checkpoints/interrupted.ckpt and says so in its "
            "results.json; continue one with train.py ckpt_path=<that file> and its overrides",
            file=sys.stderr,
        )
        raise SystemExit(130)

    def _run(self, cfg: DictConfig) -> JobReturn:
        """One job in this thread: Hydra's run_job (folder, .hydra/ files, callbacks, the
        job's return or exception) around the task, with the job's own runtime, log and stream."""
        turn = _Turn(self.hydra_turn)
        turn.take()
        try:
            return run_job(
                hydra_context=self.hydra_context,
                task_function=self._own_job(turn),
                config=cfg,
                job_dir_key="hydra.sweep.dir",
                job_subdir_key="hydra.sweep.subdir",
                configure_logging=False,  # global: each job's log file is added below instead
            )
        finally:
            turn.give()

    def _own_job(self, turn: _Turn) -> Callable[[DictConfig], Any]:
        from poolbench.sweeps.packing import job_log, own_cuda_stream
        from poolbench.sweeps.runtime import bound_to_job

        fmt = OmegaConf.select(
            self.config, "hydra.job_logging.formatters.simple.format", default=LOG_FORMAT
        )

        def task(cfg: DictConfig) -> Any:
            # Still this job's turn: Hydra's HydraConfig (and `${hydra:…}` in cfg) are its own.
            hc = HydraConfig.get()
            OmegaConf.resolve(cfg)
            turn.give()
            try:
                log_file = Path(hc.runtime.output_dir) / f"{hc.job.name}.log"
                with bound_to_job(hc), job_log(log_file, fmt), own_cuda_stream():
                    return self.task_function(cfg)
            except SystemExit as exit_:  # would end only this thread, unreported
                raise RuntimeError(f"the job exited with status {exit_.code}") from None
            finally:
                turn.take()  # for run_job's end, which resets Hydra's singletons

        return task


class _Turn:
    """The launcher's lock, taken and given back by one job, which knows whether it holds it."""

    def __init__(self, lock: threading.Lock) -> None:
        self.lock, self.held = lock, False

    def take(self) -> None:
        if not self.held:
            self.lock.acquire()
            self.held = True

    def give(self) -> None:
        if self.held:
            self.held = False
            self.lock.release()


def why_not_packed(cfg: DictConfig) -> str | None:
    """What keeps this job from sharing a process with others, as the fix to make."""
    if cfg.hydra.job.get("chdir"):
        return (
            "hydra.job.chdir=true changes the one working directory all packed jobs share; drop it"
        )
    trainer = cfg.get("trainer") or {}
    devices, nodes = trainer.get("devices", 1), trainer.get("num_nodes", 1)
    if devices not in (1, "1") or nodes != 1 or "ddp" in str(trainer.get("strategy")):
        return (
            f"trainer.devices={devices} trainer.num_nodes={nodes}: a packed job trains on one "
            "device; use trainer=default, or hydra/launcher=joblib_gpus for multi-device jobs"
        )
    return None
