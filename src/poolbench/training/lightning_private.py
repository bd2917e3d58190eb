"""Every private Lightning name poolbench touches, each used once, here only.

The fast path (fast_path.py) steps the optimizer k times inside one Lightning step, so it keeps
Lightning's step counters as the eager path would; resuming mid-epoch needs the loader's saved
position; RunCheckpoint (callbacks.py) saves last.ckpt where Lightning 2.6 would skip it.
Lightning offers no public API for these. tests/training/test_lightning_private.py names each
attribute here, so a Lightning release that moves one fails there by name, and pyproject pins
lightning to the minor versions CI has run.
"""

from __future__ import annotations

from typing import Any

# The private names, for the test that checks them against the installed Lightning.
EPOCH_LOOP = ("_batches_that_stepped", "manual_optimization")
FIT_LOOP = ("_load_combined_loader_states",)
MODEL_CHECKPOINT = (
    "_should_save_on_train_epoch_end",
    "_should_skip_saving_checkpoint",
    "_save_last_checkpoint",
    "_monitor_candidates",
)
# Keys of a checkpoint's saved fit loop (its "loops" entry).
FIT_LOOP_KEYS = ("fit_loop", "epoch_loop.batch_progress", "state_dict", "combined_loader")


def batches_that_stepped(trainer: Any) -> int:
    """The step Lightning logs against (and tests log_every_n_steps on)."""
    return trainer.fit_loop.epoch_loop._batches_that_stepped


def set_batches_that_stepped(trainer: Any, value: int) -> None:
    trainer.fit_loop.epoch_loop._batches_that_stepped = value


def count_optimizer_steps(trainer: Any, steps: int) -> None:
    """Count `steps` optimizer steps, as Lightning's own optimizer wrapper does for each:
    `trainer.global_step` is this count."""
    progress = trainer.fit_loop.epoch_loop.manual_optimization.optim_step_progress
    for _ in range(steps):
        progress.increment_ready()
        progress.increment_completed()


def load_loader_position(trainer: Any) -> None:
    """Hand the train loader the position a mid-epoch checkpoint saved (Lightning does it only
    for a loader built after the checkpoint is read; Lightning #20550)."""
    trainer.fit_loop._load_combined_loader_states()


def saved_fit_loop(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's saved fit loop: {} for one without (weights only, another trainer)."""
    return checkpoint.get("loops", {}).get("fit_loop", {})


def saved_batch_progress(checkpoint: dict[str, Any]) -> dict[str, Any]:
    return saved_fit_loop(checkpoint).get("epoch_loop.batch_progress", {})


def saved_loader_states(checkpoint: dict[str, Any]) -> list[Any]:
    return saved_fit_loop(checkpoint).get("state_dict", {}).get("combined_loader") or []


def save_last_unless_saved(callback: Any, trainer: Any) -> None:
    """ModelCheckpoint's own last.ckpt save, skipped where it saved anything at this step (or
    never saves: the sanity check)."""
    if callback.save_last and not callback._should_skip_saving_checkpoint(trainer):
        callback._save_last_checkpoint(trainer, callback._monitor_candidates(trainer))


def saves_on_train_epoch_end(callback: Any, trainer: Any) -> bool:
    return callback._should_save_on_train_epoch_end(trainer)
