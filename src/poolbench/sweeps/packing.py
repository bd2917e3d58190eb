"""Jobs packed into one process (hydra/launcher=packed): what they must share, and how each
keeps its own.

Shared: torch's global random generator, which draws a net's initial weights. A job seeds it
and draws its weights holding GLOBAL_RNG, so each job starts from the weights it has alone.
Lightning's sanity check saves and later restores the generator's state (isolate_rng): a job
holds the lock across that window too, or its restore could land in another job's draw.

Own: each job thread issues its GPU work on its own CUDA stream (so the jobs' kernels can
overlap instead of queueing behind each other), and its log records go to its own file.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import lightning as L

GLOBAL_RNG = threading.RLock()  # held to seed, draw initial weights, or save/restore the state
# Ctrl-C reaches only the main thread (the launcher's): it sets this, and each job stops at its
# next batch the way a job alone stops on Ctrl-C (interrupted.ckpt, results.json, W&B).
STOP = threading.Event()


class StopRequested(SystemExit):
    """Raised in a job's step once STOP is set: the job records itself as interrupted. Not a
    KeyboardInterrupt: Lightning answers that with signal.signal, which only the main thread may
    call."""


def packed_job_callbacks() -> list[L.Callback]:
    """What a job's Trainer needs to share its process with other jobs."""
    return [HoldGlobalRNG(), StopWhenAsked()]


class StopWhenAsked(L.Callback):
    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        if STOP.is_set():
            raise StopRequested(130)

    on_validation_batch_start = on_train_batch_start  # type: ignore[assignment]
    on_test_batch_start = on_train_batch_start  # type: ignore[assignment]


_JOB_LOG: ContextVar[Path | None] = ContextVar("poolbench_job_log", default=None)


class HoldGlobalRNG(L.Callback):
    """Holds GLOBAL_RNG from fit's start to the first training batch: across Lightning's
    sanity check, whose isolate_rng() restores the global generator's state when it ends."""

    def __init__(self) -> None:
        self.held = False

    def _take(self) -> None:
        if not self.held:
            GLOBAL_RNG.acquire()
            self.held = True

    def _give(self) -> None:
        if self.held:
            self.held = False
            GLOBAL_RNG.release()

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._take()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._give()  # after the sanity check and its restore

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        self._give()

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._give()


class _ThisJobOnly(logging.Filter):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def filter(self, record: logging.LogRecord) -> bool:
        return _JOB_LOG.get() == self.path


@contextmanager
def job_log(path: Path, fmt: str) -> Iterator[None]:
    """Records logged by this thread also go to `path` (the job's <name>.log, as Hydra writes
    for a job in a process of its own); other jobs' records do not."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter(fmt))
    handler.addFilter(_ThisJobOnly(path))
    root = logging.getLogger()
    root.addHandler(handler)
    token = _JOB_LOG.set(path)
    try:
        yield
    finally:
        _JOB_LOG.reset(token)
        root.removeHandler(handler)
        handler.close()


@contextmanager
def own_cuda_stream() -> Iterator[Any]:
    """This thread's GPU work goes to a stream of its own (PyTorch's current stream is per
    thread); on a machine without CUDA, nothing changes."""
    import torch

    if not torch.cuda.is_available():
        yield None
        return
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        yield stream
    stream.synchronize()
