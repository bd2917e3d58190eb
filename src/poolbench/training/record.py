"""What one training job leaves behind, whatever happens to it: `recorded()` wraps the job and,
on the way out (success, a failure, Ctrl-C, SIGTERM), writes results.json with the status, the
error, cost, metrics, timing and device, finishes the W&B run with that status, and ends the
job's DDP processes. The job itself only fills in the record."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class RunRecord:
    run_dir: Path
    choices: dict[str, str]
    cost: dict[str, Any]
    status: str = "failed"  # until the job says otherwise: a crash is recorded as failed
    error: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    trainer: Any = None
    device: dict[str, Any] | None = None
    wandb_run: Any = None  # this job's W&B run (several live at once in a packed process)
    fast_path: dict[str, Any] | None = None  # stack and CUDA graph, as fast.enabled chose
    fit_seconds: float | None = None  # Trainer.fit alone: the run's seconds less set-up and test
    fit_end: float | None = None
    start: float = field(default_factory=time.time)

    def write(self) -> None:
        from poolbench.training.results import write_results

        trainer = self.trainer
        if trainer is not None and not trainer.is_global_zero:
            return  # rank zero writes the job's results.json
        ckpt = model_checkpoint(trainer)
        timer = _timer(trainer)
        now = time.time()
        write_results(
            self.run_dir,
            status=self.status,
            choices=self.choices,
            cost=self.cost,
            metrics=self.metrics,
            epochs=trainer.current_epoch if trainer else 0,
            seconds=now - self.start,
            error=self.error,
            best_checkpoint=ckpt.best_model_path if ckpt else None,
            seconds_per_epoch=_epoch_seconds(trainer),
            startup_seconds=timer.startup_seconds if timer else None,
            wandb_run_id=getattr(self.wandb_run, "id", None),
            precision=trainer.precision if trainer else None,
            fast_path=self.fast_path,
            fit_seconds=None if self.fit_seconds is None else round(self.fit_seconds, 3),
            # test, pictures, checkpoint loading: everything after fit, up to this file
            after_fit_seconds=self.fit_end and round(now - self.fit_end, 3),
            device=self.device,
            started_at=round(self.start, 3),  # Unix time: a sweep's wall-clock spans its jobs
            # and its process: Python, imports, Hydra before the job (the first job of a sweep)
            process_started_at=_process_start(),
            ended_at=round(now, 3),
        )


@contextmanager
def recorded(run_dir: Path, choices: dict[str, str], cost: dict[str, Any]) -> Iterator[RunRecord]:
    """The job fills in the record (trainer, device, metrics, status="ok" at its end); this
    records it however the job ends, and re-raises what stopped it."""
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from poolbench.sweeps.runtime import is_torchrun_or_slurm
    from poolbench.training.loggers import finish_wandb

    record = RunRecord(run_dir, choices, cost)
    environ_before = dict(os.environ)
    try:
        yield record
    except SIGTERMException:  # a SystemExit with no code: the job would look successful
        record.status, record.error = "interrupted", "stopped by SIGTERM; rerun with resume=latest"
        raise SystemExit(143) from None
    except (KeyboardInterrupt, SystemExit):  # Lightning turns Ctrl-C into SystemExit(1)
        record.status, record.error = "interrupted", "stopped by Ctrl-C; rerun with resume=latest"
        raise
    except Exception as err:
        record.status, record.error = "failed", f"{type(err).__name__}: {err}"
        raise
    finally:
        record.write()
        code = {"ok": 0, "interrupted": 130}.get(record.status, 1)
        finish_wandb(record.wandb_run, code, record.status)
        trainer = record.trainer
        if trainer is not None and trainer.world_size > 1 and not is_torchrun_or_slurm():
            from poolbench.sweeps.distributed import end_job

            end_job(environ_before)


def model_checkpoint(trainer: Any) -> Any:
    """The run's ModelCheckpoint (best and last), or None. Not trainer.checkpoint_callback: the
    interrupt checkpoint (OnExceptionCheckpoint) is a Checkpoint too, and would stand in for it
    when callbacks.checkpoint=null."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    callbacks = getattr(trainer, "callbacks", [])
    return next((cb for cb in callbacks if isinstance(cb, ModelCheckpoint)), None)


def wandb_run(loggers: list[Any]) -> Any:
    """The job's W&B run, if it logs to W&B: its id is recorded so later steps (embed.py,
    resume) can add to the same run, and the job finishes this run, not another job's."""
    from lightning.pytorch.utilities import rank_zero_only

    from poolbench.training.loggers import wandb_logger

    wb = wandb_logger(loggers)
    # Under DDP only rank zero has the run; the others' experiment is Lightning's stand-in.
    return wb.experiment if wb is not None and rank_zero_only.rank == 0 else None


def _timer(trainer: Any) -> Any:
    from poolbench.training.callbacks import EpochTimer

    return next(
        (cb for cb in getattr(trainer, "callbacks", []) if isinstance(cb, EpochTimer)), None
    )


def _epoch_seconds(trainer: Any) -> float | None:
    timer = _timer(trainer)
    if timer is None or not timer.epoch_seconds:
        return None
    return round(sum(timer.epoch_seconds) / len(timer.epoch_seconds), 3)


def _process_start() -> float | None:
    from poolbench.sweeps.distributed import process_start

    started = process_start(os.getpid())
    return None if started is None else round(started, 3)
