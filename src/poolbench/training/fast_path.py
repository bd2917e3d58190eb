"""The fast training path: several optimizer steps per Lightning `training_step` (the loader
hands over a stack of batches), each one a replay of a CUDA graph captured once (forward, loss,
backward, optimizer step). The same batches, schedule and metric names as the eager path: only
Lightning's per-step Python and the per-op kernel launches are paid once per stack, not per batch.

`plan` decides per run whether it applies; `StackedSteps` runs it inside the LightningModule."""

from __future__ import annotations

import inspect
import logging
import threading
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

from poolbench.data.loader import stack_mismatch
from poolbench.errors import ConfigError
from poolbench.training.lightning_private import (
    count_optimizer_steps,
    saved_batch_progress,
    saved_loader_states,
    set_batches_that_stepped,
)
from poolbench.training.scheduler import cycles_momentum

log = logging.getLogger(__name__)

# Eager steps before the capture, on a side stream (PyTorch's recipe for CUDA graphs): lazy
# initialisation (optimizer state, cuDNN/cuBLAS workspaces) must not happen during capture.
WARMUP_STEPS = 3
# Precisions a graph and manual optimization take as they are (16-mixed needs a GradScaler).
PRECISIONS = ("32-true", "32", "bf16-mixed")
CAPTURE = threading.Lock()  # one capture at a time in a process (jobs packed as threads)


@dataclass
class FastPlan:
    stack: int = 1  # optimizer steps per training_step
    cuda_graph: bool = False
    why_not: str = ""  # why the fast path, or its graph, is off

    @property
    def on(self) -> bool:
        return self.stack > 1 or self.cuda_graph


def _conflicts(cfg: Any, trainer: Any) -> list[str]:
    """What stops manual, stacked optimization in this run."""
    out = []
    if trainer.world_size > 1:
        out.append("DDP (each rank takes Lightning's eager step; docs/scaling.md)")
    if cfg.trainer.get("gradient_clip_val"):
        out.append(f"trainer.gradient_clip_val={cfg.trainer.gradient_clip_val}")
    if cfg.trainer.get("accumulate_grad_batches", 1) != 1:
        out.append(f"trainer.accumulate_grad_batches={cfg.trainer.accumulate_grad_batches}")
    limit = cfg.trainer.get("limit_train_batches")
    if isinstance(limit, float) and limit < 1.0:
        out.append(f"trainer.limit_train_batches={limit} (a share: Lightning would cut stacks)")
    if cfg.data.get("loader", "memory") != "memory":
        out.append(f"data.loader={cfg.data.loader} (only the in-memory loader stacks batches)")
    if str(trainer.precision) not in PRECISIONS:
        out.append(f"trainer.precision={trainer.precision} (a GradScaler steps per batch)")
    return out


def _graph_conflicts(cfg: Any) -> list[str]:
    out = []
    if cycles_momentum(cfg.scheduler):
        out.append("scheduler=onecycle (it changes Adam's betas every step; a graph fixes them)")
    if cfg.model.get("compile"):
        out.append("model.compile=true")
    opt = cfg.optimizer.get("_target_", "")
    try:
        from hydra.utils import get_class

        capturable = "capturable" in inspect.signature(get_class(opt)).parameters
    except Exception:  # noqa: BLE001 - an unknown class fails later, in instantiate, clearly
        capturable = False
    if not capturable:
        out.append(f"optimizer {opt} (no capturable=True)")
    return out


def plan(cfg: Any, trainer: Any) -> FastPlan:
    """The fast path for this run: `fast.enabled=auto` turns it on when training on one CUDA
    GPU; what it cannot run with turns it off there, and is a one-line error with `true`."""
    fast = cfg.get("fast") or {}
    enabled = fast.get("enabled", "auto")
    if enabled is False:
        return FastPlan(why_not="fast.enabled=false")
    on_gpu = trainer.strategy.root_device.type == "cuda"
    if enabled == "auto" and not on_gpu:
        return FastPlan(why_not="not on a CUDA GPU (fast.enabled=true stacks steps here too)")
    conflicts = _conflicts(cfg, trainer)
    if conflicts:
        if enabled is True:
            raise ConfigError(
                f"fast.enabled=true cannot run with {conflicts[0]}; drop that, or set "
                "fast.enabled=auto"
            )
        return FastPlan(why_not=conflicts[0])
    stack = int(fast.get("stack", 16))
    if not (on_gpu and fast.get("cuda_graph", True)):
        why = "fast.cuda_graph=false" if on_gpu else "no CUDA GPU"
        return FastPlan(stack=stack, why_not=f"no CUDA graph: {why}")
    graph_conflicts = _graph_conflicts(cfg)
    if graph_conflicts:
        return FastPlan(stack=stack, why_not=f"no CUDA graph: {graph_conflicts[0]}")
    return FastPlan(stack=stack, cuda_graph=True)


def optimizer_kwargs(plan: FastPlan) -> dict[str, Any]:
    # A graph replays the optimizer's kernels: its step counters must live on the GPU.
    return {"capturable": True} if plan.cuda_graph else {}


def optimizer_steps(trainer: Any) -> float:
    """All optimizer steps of the fit (the cosine schedule's length): Lightning's counts stacks."""
    loader, stacks = trainer.train_dataloader, trainer.num_training_batches
    per_epoch = loader.batches() if stacks >= len(loader) else stacks * loader.stack
    total = per_epoch * trainer.max_epochs if trainer.max_epochs not in (None, -1) else float("inf")
    return min(total, trainer.max_steps) if trainer.max_steps != -1 else total


def apply(cfg: Any, trainer: Any, module: Any, datamodule: Any) -> FastPlan:
    """Decide the fast path for this run and set module and data module up for it."""
    fast = plan(cfg, trainer)
    if fast.on:
        module.use_fast_path(fast, cfg.data.batch_size)
        datamodule.train_stack = fast.stack
    return fast


def check_resume(ckpt_path: str | None, stack: int) -> None:
    """A checkpoint written inside an epoch (interrupted.ckpt) resumes only with the stack it was
    written with (loader.py): said before fit starts, not at its first batch."""
    if not ckpt_path or not Path(ckpt_path).is_file():
        return  # Lightning's own error names it
    try:
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    except Exception:
        return  # not readable here: Lightning's own error names it
    if saved_batch_progress(ckpt).get("is_last_batch", True):
        return  # written at an epoch's end: any stack goes on from there
    for state in saved_loader_states(ckpt):
        if isinstance(state, dict) and state.get("stack", stack) != stack:
            raise ConfigError(stack_mismatch(state["stack"], stack))


def align_validation_step(trainer: Any) -> None:
    # Validation inside fit logs at the step of the epoch's last batch, as on the eager path.
    if trainer.state.fn == "fit" and not trainer.sanity_checking and trainer.global_step > 0:
        set_batches_that_stepped(trainer, trainer.global_step - 1)


def align_epoch_end_step(trainer: Any) -> None:
    # Epoch metrics (and test, after fit) log at the eager path's step: a stack crossing a
    # logging step leaves Lightning's count at that step. Validation realigns it; an epoch with
    # none after its last stack (max_steps cut it short, check_val_every_n_epoch) needs this.
    set_batches_that_stepped(trainer, trainer.global_step)


def advance_step_counters(trainer: Any, steps: int, old: int) -> None:
    """Count `steps` optimizer steps in Lightning's loop, as its own optimizer wrapper would:
    `global_step` (max_steps, checkpoints, the logger's step axis) stays the optimizer's count.

    The logging step is set so that a stack crossing a multiple of log_every_n_steps logs once,
    at the eager path's step; Lightning adds the stack's own 1 after the step. (Private loop
    state, lightning_private.py: tests/training/test_fast_path.py checks both against the
    eager path.)"""
    count_optimizer_steps(trainer, steps)
    new, every = old + steps, max(trainer.log_every_n_steps, 1)
    last_multiple = new - new % every
    logged = last_multiple if last_multiple > old else new
    set_batches_that_stepped(trainer, logged - 1)


class StackedSteps:
    """Runs a stack of optimizer steps for a module in manual optimization: eager ones first
    (and for a batch of another size, such as an epoch's short last one), then replays of one
    captured CUDA graph. Per-step loss, correct predictions and images are summed on the device;
    nothing is read back to the host inside a stack."""

    def __init__(self, module: Any, batch_size: int, cuda_graph: bool) -> None:
        self.module, self.batch_size, self.want_graph = module, batch_size, cuda_graph
        self.graph: torch.cuda.CUDAGraph | None = None
        self.eager_full_steps = 0
        self.stack_sums: Tensor | None = None  # loss * images, correct, images: this stack
        self.epoch_sums: Tensor | None = None  # the same, this epoch

    def run(self, x: Tensor, y: Tensor) -> tuple[Tensor, int]:
        """Steps on the (k, b, ...) stack; the stack's mean loss (a device tensor) and its
        number of images."""
        m = self.module
        trainer = m.trainer
        opt = m.optimizers().optimizer
        sched = m.lr_schedulers()
        if self.stack_sums is None:
            self.stack_sums = torch.zeros(3, device=x.device)
            self.epoch_sums = torch.zeros(3, device=x.device)
        old = trainer.global_step
        k = len(x) if trainer.max_steps < 0 else min(len(x), trainer.max_steps - old)
        for i in range(k):
            xi, yi = x[i], y[i]
            if self.graph is not None and len(yi) == self.batch_size:
                self._replay(opt, xi, yi)
            elif self.want_graph and len(yi) == self.batch_size:
                if self.eager_full_steps < WARMUP_STEPS:
                    self._warmup_step(opt, xi, yi)
                elif self._capture(opt, xi, yi):
                    self._replay(opt, xi, yi)
                else:
                    self._eager_step(opt, xi, yi)
            else:
                self._eager_step(opt, xi, yi)
            if sched is not None:
                sched.step()
        advance_step_counters(trainer, k, old)
        sums = self.stack_sums.clone()
        self.epoch_sums += sums
        self.stack_sums.zero_()
        return sums[0] / sums[2], k * x.shape[1]

    def epoch_accuracy(self) -> Tensor | None:
        if self.epoch_sums is None:  # no training batch yet (limit_train_batches=0)
            return None
        acc = self.epoch_sums[1] / self.epoch_sums[2]
        self.epoch_sums.zero_()
        return acc

    # One optimizer step, written once: run eagerly, or recorded into the graph.
    def _math(self, opt: torch.optim.Optimizer, x: Tensor, y: Tensor) -> None:
        logits = self.module(x)
        loss = F.cross_entropy(logits, y, label_smoothing=self.module.hparams.label_smoothing)
        loss.backward()
        opt.step()
        s = self.stack_sums
        s[0].add_(loss.detach() * len(y))
        s[1].add_((logits.argmax(1) == y).sum())
        s[2].add_(len(y))

    def _eager_step(self, opt: torch.optim.Optimizer, x: Tensor, y: Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        self._math(opt, x, y)
        if len(y) == self.batch_size:
            self.eager_full_steps += 1

    def _warmup_step(self, opt: torch.optim.Optimizer, x: Tensor, y: Tensor) -> None:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            self._eager_step(opt, x, y)
        torch.cuda.current_stream().wait_stream(side)

    def _capture(self, opt: torch.optim.Optimizer, x: Tensor, y: Tensor) -> bool:
        """Record the step; False (and eager steps from here on) where this net's ops cannot be
        captured: a run is never lost to the fast path. Recording runs nothing: the weights move
        only when the graph is replayed."""
        self.static_x, self.static_y = torch.empty_like(x), torch.empty_like(y)
        groups = opt.param_groups
        # The learning rate is read from a device tensor the graph keeps; the scheduler goes
        # on setting plain floats, copied in before each replay.
        self.lrs = [torch.tensor(float(g["lr"]), device=x.device) for g in groups]
        floats = [g["lr"] for g in groups]
        for g, t in zip(groups, self.lrs, strict=True):
            g["lr"] = t
        opt.zero_grad(set_to_none=True)  # the graph's backward allocates its own gradients
        graph = torch.cuda.CUDAGraph()
        # autocast's weight cache must be off while capturing (PyTorch's CUDA graph notes)
        autocast = (
            torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False)
            if torch.is_autocast_enabled("cuda")
            else nullcontext()
        )
        try:  # thread_local: jobs packed in one process go on allocating while one captures
            with CAPTURE, autocast, torch.cuda.graph(graph, capture_error_mode="thread_local"):
                self._math(opt, self.static_x, self.static_y)
        except RuntimeError as err:
            log.warning("CUDA graph capture failed, eager steps instead: %s", err)
            self.want_graph = False
            return False
        finally:
            for g, f in zip(groups, floats, strict=True):
                g["lr"] = f
        self.graph = graph
        return True

    def _replay(self, opt: torch.optim.Optimizer, x: Tensor, y: Tensor) -> None:
        self.static_x.copy_(x)
        self.static_y.copy_(y)
        for t, g in zip(self.lrs, opt.param_groups, strict=True):
            t.fill_(g["lr"])
        self.graph.replay()
