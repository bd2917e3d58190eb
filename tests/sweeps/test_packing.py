"""What jobs packed in one process share (sweeps/packing.py): torch's global generator is held
by whoever seeds it, draws initial weights from it or saves and restores it."""

import threading
from pathlib import Path

import lightning as L
import pytest
import torch
from conftest import FAST, make_cfg
from lightning.pytorch.demos.boring_classes import BoringModel

from poolbench.sweeps.packing import GLOBAL_RNG, HoldGlobalRNG, StopWhenAsked


def others_can_take_it() -> bool:
    """Whether another thread could take GLOBAL_RNG now (it gives it straight back)."""
    got: list[bool] = []

    def try_take() -> None:
        ok = GLOBAL_RNG.acquire(blocking=False)
        if ok:
            GLOBAL_RNG.release()
        got.append(ok)

    t = threading.Thread(target=try_take)
    t.start()
    t.join()
    return got[0]


def test_validate_builds_its_net_holding_the_lock_and_draws_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import poolbench.models.convnet as convnet
    from poolbench.training.checks import validate

    cfg = make_cfg(FAST, tmp_path)
    held, build = [], convnet.build_convnet
    monkeypatch.setattr(
        convnet,
        "build_convnet",
        lambda *a, **k: held.append(not others_can_take_it()) or build(*a, **k),
    )
    torch.manual_seed(0)
    before = torch.get_rng_state()
    validate(cfg)
    assert held == [True]
    assert torch.equal(torch.get_rng_state(), before)  # the shape check drew nothing for good
    assert others_can_take_it()


def test_setup_seeds_and_builds_holding_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import poolbench.training.job as job

    cfg = make_cfg([*FAST, f"data.cache_dir={tmp_path}/cache"], tmp_path)
    held: dict[str, bool] = {}
    seed, build = L.seed_everything, job.build_module

    def seeding(*a, **k):
        held["seed"] = not others_can_take_it()
        return seed(*a, **k)

    def building(*a, **k):
        held["build"] = not others_can_take_it()
        return build(*a, **k)

    monkeypatch.setattr(L, "seed_everything", seeding)
    monkeypatch.setattr(job, "build_module", building)
    job.setup(cfg)
    assert held == {"seed": True, "build": True}
    assert others_can_take_it()


class Probe(L.Callback):
    def __init__(self) -> None:
        self.seen: dict[str, bool] = {}

    def on_sanity_check_start(self, trainer, pl_module) -> None:
        self.seen["sanity check"] = others_can_take_it()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.seen.setdefault("first step", others_can_take_it())


def fit(module: L.LightningModule, probe: Probe, tmp_path: Path) -> None:
    trainer = L.Trainer(
        max_steps=2,
        limit_val_batches=1,
        num_sanity_val_steps=1,
        callbacks=[HoldGlobalRNG(), probe],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(module)


def test_the_sanity_check_holds_the_lock_and_training_does_not(tmp_path: Path) -> None:
    probe = Probe()
    fit(BoringModel(), probe, tmp_path)
    # held across the sanity check (isolate_rng restores the generator's state when it ends)
    assert probe.seen == {"sanity check": False, "first step": True}
    assert others_can_take_it()


def test_a_fit_that_fails_in_its_sanity_check_gives_the_lock_back(tmp_path: Path) -> None:
    class Broken(BoringModel):
        def validation_step(self, batch, batch_idx):
            raise RuntimeError("broken validation")

    probe = Probe()
    with pytest.raises(RuntimeError, match="broken validation"):
        fit(Broken(), probe, tmp_path)
    assert probe.seen == {"sanity check": False}
    assert others_can_take_it()


def test_a_packed_jobs_trainer_holds_the_lock_over_its_sanity_check(tmp_path: Path) -> None:
    from hydra.types import RunMode
    from omegaconf import read_write

    from poolbench.sweeps.runtime import bound_to_job
    from poolbench.training.job import build_trainer

    def holders(cfg) -> int:
        trainer = build_trainer(cfg, [], tmp_path)
        stoppers = sum(isinstance(c, StopWhenAsked) for c in trainer.callbacks)
        held = sum(isinstance(c, HoldGlobalRNG) for c in trainer.callbacks)
        assert stoppers == held  # and each packed job stops when Ctrl-C reaches the launcher
        return held

    assert holders(make_cfg(FAST, tmp_path)) == 0  # a job alone in its process
    cfg = make_cfg([*FAST, "hydra/launcher=packed"], tmp_path)
    with read_write(cfg.hydra):
        cfg.hydra.mode = RunMode.MULTIRUN
    with bound_to_job(cfg.hydra):  # as the packed launcher hands each job thread its own
        assert holders(cfg) == 1
