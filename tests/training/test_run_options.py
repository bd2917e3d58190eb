"""Short real runs of the README's options: heads, pools, schedules, loggers, seed, resuming."""

from __future__ import annotations

import csv
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from conftest import FAST, ROOT, make_cfg, read_results, run_cli, run_command, wandb_summary

from poolbench.training.job import train

pytestmark = pytest.mark.slow

SECRET = "sk-FAKE-WANDB-KEY-7c1e"  # never a real key: nothing here reaches the network


def csv_rows(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "csv" / "metrics.csv").open() as f:
        return list(csv.DictReader(f))


def load_ckpt(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def last_lr(ckpt: dict) -> float:
    return ckpt["optimizer_states"][0]["param_groups"][0]["lr"]


# ---------------------------------------------------------------------------------------------
# Quick start, offline: `make train ARGS="data=digits"`, with the default progress bar and loggers


DIGITS_ARGS = ["data=digits", "trainer.max_epochs=3"]
DIGITS_STEPS = 21  # 1,797 digits, 360 for test, 10% of the rest for val: 1,293 in batches of 64


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    tmp = tmp_path_factory.mktemp("digits")
    # The Makefile's own target; -o keeps make from reinstalling when pyproject.toml is newer.
    args = " ".join([*DIGITS_ARGS, f"data.cache_dir={tmp}", f"hydra.run.dir={tmp}/outputs/a"])
    # run_command: make and the training it starts share a process group, killed at the end
    out = run_command(
        ["make", "-o", ".venv/.installed", "train", f"PY={sys.executable}", f"ARGS={args}"],
        cwd=ROOT,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return tmp / "outputs" / "a", out.stdout


def test_make_train_on_digits_offline_with_the_progress_bar(digits_run: tuple[Path, str]) -> None:
    run, stdout = digits_run
    r = read_results(run)
    assert r["status"] == "ok" and r["choices"]["data"] == "digits"
    assert r["params"]["total"] == 32_862
    assert r["metrics"]["test/acc"] > 0.5  # 10 digits: chance is 0.1
    # The default progress bar (Rich): every training batch of the last epoch, 6 test batches.
    assert re.search(rf"Epoch 2/2 .*━.* {DIGITS_STEPS}/{DIGITS_STEPS}", stdout), stdout[-2000:]
    assert re.search(r"Testing .*━.* 6/6", stdout)
    # Default loggers: W&B (offline, no credentials here) and CSV, one row of val/acc per epoch.
    s = wandb_summary(run)
    assert s["state"] == "finished" and s["config"]["data"] == "digits"
    assert s["summary"]["test/acc"] == pytest.approx(r["metrics"]["test/acc"])
    epochs = [int(row["epoch"]) for row in csv_rows(run) if row["val/acc"]]
    assert epochs == [0, 1, 2]


# ---------------------------------------------------------------------------------------------
# Every head and pool trains; with them, the other optimizer, schedules, loggers, data options.

CASES: dict[str, tuple[list[str], int]] = {
    # name: (overrides, the README table's parameter count)
    "nin-stride": (
        ["head=nin", "pool=stride", "optimizer=sgd", "scheduler=onecycle", "logger=tensorboard"],
        19_546,
    ),
    "hypercolumn-lp": (
        [
            "head=hypercolumn",
            "pool=lp",
            "scheduler=none",
            "logger=wandb",
            "logger.wandb.offline=true",  # credentials below, but no network in tests
            "data.channels_last=false",
            "seed=null",
        ],
        36_702,
    ),
    "avg-none": (["head=avg", "pool=none", "logger=none", "data.store_on_device=false"], 29_022),
    "max-stride": (["head=max", "pool=stride", "logger=csv", "model.compile=true"], 34_190),
}
EPOCHS = 3
N_TRAIN = 1200  # 120 for val, 1,080 in batches of 128: 9 steps an epoch
STEPS_PER_EPOCH = 9


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Callable[[str], Path]:
    import torch._dynamo

    done: dict[str, Path] = {}
    real_compile = torch.compile

    def eager_compile(fn: Callable, **kw: object) -> Callable:
        # Dynamo traces for real; the eager backend spares tests inductor's C++ build (30-60 s).
        return real_compile(fn, backend="eager", **kw)

    def run(name: str) -> Path:
        if name not in done:
            out = tmp_path_factory.mktemp(name)
            overrides = [*FAST, f"data.n_train={N_TRAIN}", f"trainer.max_epochs={EPOCHS}"]
            overrides.append("callbacks.review_images=null")  # pictures: test_train's run
            cfg = make_cfg([*overrides, *CASES[name][0]], out, cache=cache_dir)
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("WANDB_API_KEY", SECRET)  # present in the environment of every case
                mp.setattr(torch, "compile", eager_compile)
                torch._dynamo.reset()
                torch._dynamo.utils.counters.clear()
                train(cfg)
                graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
                assert (graphs > 0) is ("model.compile=true" in CASES[name][0])
            done[name] = out
        return done[name]

    return run


@pytest.mark.parametrize("name", CASES)
def test_every_head_and_pool_trains_above_chance(runs: Callable[[str], Path], name: str) -> None:
    run = runs(name)
    r = read_results(run)
    assert r["status"] == "ok" and r["epochs"] == EPOCHS
    assert r["params"]["total"] == CASES[name][1]
    assert r["metrics"]["test/acc"] > 0.2, r["metrics"]  # 10 classes: chance is 0.1
    last = load_ckpt(run / "checkpoints" / "last.ckpt")
    assert last["global_step"] == EPOCHS * STEPS_PER_EPOCH
    assert (
        sum(v.numel() for k, v in last["state_dict"].items() if k.startswith("net."))
        == (CASES[name][1])
    )
    # No run leaves the API key in any file it writes (configs, W&B, checkpoints, logs).
    leaked = [p for p in run.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
    assert leaked == []


def test_pool_none_keeps_full_size_maps(runs: Callable[[str], Path]) -> None:
    r = read_results(runs("avg-none"))
    # Without downsampling the second conv runs on 32x32 maps, not 16x16: 4x its FLOPs.
    conv1, conv2 = 2 * 16 * 32 * 32 * 3 * 25, 2 * 32 * 16 * 16 * 16 * 25
    mlp = 2 * (32 * 120 + 120 * 84 + 84 * 10)
    assert r["flops_per_image"] == conv1 + 4 * conv2 + mlp


def test_sgd_onecycle_warms_up_then_anneals_into_tensorboard(runs: Callable[[str], Path]) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = runs("nin-stride")
    last = load_ckpt(run / "checkpoints" / "last.ckpt")
    group = last["optimizer_states"][0]["param_groups"][0]
    assert group["nesterov"] is True and group["weight_decay"] == 0.0005  # torch.optim.SGD's
    assert 0.85 <= group["momentum"] <= 0.95  # one-cycle also cycles momentum (torch's default)
    assert last["lr_schedulers"][0]["total_steps"] == EPOCHS * STEPS_PER_EPOCH
    # One-cycle: from lr/25 up to lr (0.05), then annealed to almost nothing by the end.
    assert last_lr(last) < 0.05 / 100
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    assert not (run / "csv").exists() and not (run / "wandb").exists()
    lrs = [e.value for e in events.Scalars("lr-SGD")]  # logged at each epoch's start
    assert len(lrs) == EPOCHS and lrs[0] == pytest.approx(0.002)
    assert max(lrs) > 5 * lrs[0] and lrs[-1] < max(lrs)
    val = [e.value for e in events.Scalars("val/acc")]
    assert len(val) == EPOCHS
    r = read_results(run)
    assert max(val) == pytest.approx(r["metrics"]["val/acc_best"])
    assert [e.value for e in events.Scalars("test/acc")] == [
        pytest.approx(r["metrics"]["test/acc"])
    ]


def test_scheduler_none_and_wandb_only(runs: Callable[[str], Path]) -> None:
    run = runs("hypercolumn-lp")
    last = load_ckpt(run / "checkpoints" / "last.ckpt")
    assert last["lr_schedulers"] == [] and last_lr(last) == 0.002  # AdamW's rate, untouched
    assert not (run / "csv").exists() and not (run / "tensorboard").exists()
    s = wandb_summary(run)
    assert s["state"] == "finished"
    assert s["summary"]["params/total"] == 36_702
    assert s["summary"]["test/acc"] == pytest.approx(read_results(run)["metrics"]["test/acc"])
    assert s["config"]["head"] == "hypercolumn" and s["config"]["pool"] == "lp"


def test_logger_none_writes_results_and_checkpoints_only(runs: Callable[[str], Path]) -> None:
    run = runs("avg-none")
    assert sorted(p.name for p in run.iterdir() if p.is_dir()) == ["checkpoints"]
    r = read_results(run)
    best = load_ckpt(Path(r["best_checkpoint"]))
    assert best["hyper_parameters"]["choices"]["pool"] == "none"


def test_seed_null_gives_a_random_run(runs: Callable[[str], Path], tmp_path: Path) -> None:
    from poolbench.training.job import build_trainer, setup

    def start(seed: str) -> tuple[torch.Tensor, torch.Tensor, bool]:
        cfg = make_cfg([*FAST, f"seed={seed}", "model.init=default"], tmp_path, cache=tmp_path)
        dm, module = setup(cfg)
        dm.setup("fit")
        torch.use_deterministic_algorithms(False)
        build_trainer(cfg, [], tmp_path)
        deterministic = torch.are_deterministic_algorithms_enabled()
        torch.use_deterministic_algorithms(False)
        _, labels = next(iter(dm.train_dataloader()))
        return module.net.blocks[0].conv.weight.detach().clone(), labels, deterministic

    (w0, order0, det0), (w0_again, _, _) = start("0"), start("0")
    (w1, order1, det1), (w2, _, _) = start("null"), start("null")
    assert torch.equal(w0, w0_again) and det0
    assert not torch.equal(w1, w2) and not det1  # random weights, no deterministic mode
    assert torch.equal(order1, order0)  # batches: seed 0's order (README: DDP ranks share it)
    assert read_results(runs("hypercolumn-lp"))["metrics"]["test/acc"] > 0.2  # trained, seed=null


# ---------------------------------------------------------------------------------------------
# model.compile: a compiled run's checkpoint is one eval.py (an uncompiled net) can read.


def test_model_compile_checkpoint_evaluates_uncompiled(
    runs: Callable[[str], Path], tmp_path: Path, cache_dir: Path
) -> None:
    from poolbench.cli.eval import evaluate

    run = runs("max-stride")  # trained with model.compile=true (the fixture checks it compiled)
    r = read_results(run)
    state = load_ckpt(Path(r["best_checkpoint"]))["state_dict"]
    assert "net.blocks.0.conv.weight" in state and not any("_orig_mod" in k for k in state)
    cfg = make_cfg(
        [*FAST, f"data.n_train={N_TRAIN}", f"ckpt_path={r['best_checkpoint']}"],
        tmp_path,
        config="eval",
        cache=cache_dir,
    )
    assert evaluate(cfg)["test/acc"] == pytest.approx(r["metrics"]["test/acc"], abs=1e-6)


# ---------------------------------------------------------------------------------------------
# Resuming: resume=true (the newest earlier run of the same overrides) and ckpt_path=.


def test_resume_true_and_ckpt_path_continue_the_run(digits_run: tuple[Path, str]) -> None:
    first = digits_run[0]
    tmp = first.parents[1]
    # The same overrides plus resume=true, one epoch more, in a sibling folder.
    more = [*DIGITS_ARGS, f"data.cache_dir={tmp}", "trainer.max_epochs=4", "resume=true"]
    resumed = run_cli(["train.py", *more, f"hydra.run.dir={tmp}/outputs/b"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    second = tmp / "outputs" / "b"
    r1, r2 = read_results(first), read_results(second)
    assert r2["status"] == "ok" and r2["epochs"] == 4
    # It went on from epoch 3 (its CSV has no earlier epoch) in the same W&B run.
    assert [int(row["epoch"]) for row in csv_rows(second) if row["val/acc"]] == [3]
    assert r2["wandb_run_id"] == r1["wandb_run_id"]
    assert load_ckpt(second / "checkpoints" / "last.ckpt")["global_step"] == 4 * DIGITS_STEPS

    # ckpt_path= resumes from a given checkpoint: the same state, so the same numbers.
    cfg = make_cfg(
        [
            *FAST[3:],
            *DIGITS_ARGS,
            "trainer.max_epochs=4",
            f"ckpt_path={first / 'checkpoints' / 'last.ckpt'}",
        ],
        tmp / "by_path",
        cache=tmp,
    )
    train(cfg)
    r3 = read_results(tmp / "by_path")
    assert [int(row["epoch"]) for row in csv_rows(tmp / "by_path") if row["val/acc"]] == [3]
    for key in ("val/acc", "val/acc_best", "test/acc"):
        assert r3["metrics"][key] == pytest.approx(r2["metrics"][key], abs=1e-6), key
