"""Lightning's private names that poolbench uses live in lightning_private.py; each is checked
here against the installed Lightning, so a release that moves one fails by name."""

import inspect

import lightning as L
import pytest
from lightning.pytorch.callbacks import ModelCheckpoint

from poolbench.training import lightning_private as private

SRC = private.__file__.rsplit("/", 1)[0]


@pytest.mark.parametrize("name", private.EPOCH_LOOP)
def test_the_epoch_loop_still_has(name: str) -> None:
    loop = L.Trainer(logger=False, enable_checkpointing=False).fit_loop.epoch_loop
    assert hasattr(loop, name), f"Lightning {L.__version__}: fit_loop.epoch_loop.{name} moved"
    if name == "manual_optimization":
        progress = loop.manual_optimization.optim_step_progress
        for method in ("increment_ready", "increment_completed"):
            assert hasattr(progress, method), f"optim_step_progress.{method} moved"


@pytest.mark.parametrize("name", private.FIT_LOOP)
def test_the_fit_loop_still_has(name: str) -> None:
    loop = L.Trainer(logger=False, enable_checkpointing=False).fit_loop
    assert callable(getattr(loop, name, None)), f"Lightning {L.__version__}: fit_loop.{name} moved"


@pytest.mark.parametrize("name", private.MODEL_CHECKPOINT)
def test_model_checkpoint_still_has(name: str) -> None:
    assert callable(getattr(ModelCheckpoint, name, None)), (
        f"Lightning {L.__version__}: ModelCheckpoint.{name} moved"
    )
    takes = list(inspect.signature(getattr(ModelCheckpoint, name)).parameters)
    assert takes[:2] == ["self", "trainer"], f"ModelCheckpoint.{name}{takes} changed"


def test_a_saved_fit_loop_has_the_keys_read() -> None:
    """A checkpoint's loop state, as Lightning writes it, holds the keys lightning_private reads."""
    trainer = L.Trainer(logger=False, enable_checkpointing=False)
    state = trainer.fit_loop.state_dict()
    assert "epoch_loop.batch_progress" in state, f"Lightning {L.__version__}: loop keys moved"
    assert {"total", "is_last_batch"} <= state["epoch_loop.batch_progress"].keys()
    assert "state_dict" in state


def test_no_other_module_names_a_private_lightning_attribute() -> None:
    import re
    from pathlib import Path

    names = (*private.EPOCH_LOOP[:1], *private.FIT_LOOP, *private.MODEL_CHECKPOINT)
    for path in Path(SRC).rglob("*.py"):
        if path.name == "lightning_private.py":
            continue
        text = path.read_text()
        used = [n for n in names if re.search(rf"\.{n}\b", text)]  # attribute access
        assert not used, f"{path} uses private Lightning names {used}: lightning_private.py"
