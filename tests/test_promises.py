"""The README's promises that no other test held: each one a short real run (tiny data, a few
epochs) whose files are read back, or a real decision checked without the network."""

from __future__ import annotations

import csv
import os
import re
import statistics
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from conftest import FAST, ROOT, make_cfg, read_results, run_cli, run_command, wandb_summary
from PIL import Image

from poolbench.training.job import train

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


@pytest.mark.slow
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
@pytest.mark.slow
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


@pytest.mark.slow
def test_pool_none_keeps_full_size_maps(runs: Callable[[str], Path]) -> None:
    r = read_results(runs("avg-none"))
    # Without downsampling the second conv runs on 32x32 maps, not 16x16: 4x its FLOPs.
    conv1, conv2 = 2 * 16 * 32 * 32 * 3 * 25, 2 * 32 * 16 * 16 * 16 * 25
    mlp = 2 * (32 * 120 + 120 * 84 + 84 * 10)
    assert r["flops_per_image"] == conv1 + 4 * conv2 + mlp


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_logger_none_writes_results_and_checkpoints_only(runs: Callable[[str], Path]) -> None:
    run = runs("avg-none")
    assert sorted(p.name for p in run.iterdir() if p.is_dir()) == ["checkpoints"]
    r = read_results(run)
    best = load_ckpt(Path(r["best_checkpoint"]))
    assert best["hyper_parameters"]["choices"]["pool"] == "none"


@pytest.mark.slow
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


@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.slow
def test_channels_last_option_sets_the_batch_layout(tmp_path: Path, channels_last: bool) -> None:
    from poolbench.data.datamodule import ImageDataModule

    cfg = make_cfg([*FAST, f"data.channels_last={channels_last}"], tmp_path, cache=tmp_path)
    dm = ImageDataModule(cfg.data)
    dm.prepare_data()
    dm.setup("fit")
    x, _ = next(iter(dm.train_dataloader()))
    assert x.shape == (128, 3, 32, 32)
    assert x.is_contiguous(memory_format=torch.channels_last) is channels_last
    assert x.is_contiguous() is not channels_last


@pytest.mark.parametrize(
    "device",
    [
        "cpu",
        pytest.param(
            "cuda",
            marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU"),
        ),
    ],
)
@pytest.mark.slow
def test_store_on_device_false_keeps_images_in_host_memory(tmp_path: Path, device: str) -> None:
    from poolbench.data.datamodule import ImageDataModule

    for on_device, store_type in ((True, device), (False, "cpu")):
        cfg = make_cfg([*FAST, f"data.store_on_device={on_device}"], tmp_path, cache=tmp_path)
        dm = ImageDataModule(cfg.data, device=device)
        dm.prepare_data()
        dm.setup("fit")
        loader = dm.train_dataloader()
        assert loader.store.data.device.type == store_type
        x, y = next(iter(loader))
        assert x.device.type == device and y.device.type == device  # batches: training device
    # (On a CPU-only machine both stores are host memory; the meta test below tells them apart.)


def test_store_on_device_chooses_the_store_device_without_a_gpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The choice itself, on any machine: "meta" is a device that is not the CPU. The real loader
    cannot run there (it seeds a Generator on the store's device), so a stand-in records what
    the data module hands it."""
    import poolbench.data.datamodule as datamodule

    def record(store: Any, labels: Any, sampler: Any, normalize: Any, **kw: Any) -> Any:
        return SimpleNamespace(store=store, device=kw["device"])

    monkeypatch.setattr(datamodule, "InMemoryLoader", record)
    for on_device, store_type in ((True, "meta"), (False, "cpu")):
        cfg = make_cfg([*FAST, f"data.store_on_device={on_device}"], tmp_path, cache=tmp_path)
        dm = datamodule.ImageDataModule(cfg.data, device="meta")
        dm.prepare_data()
        dm.setup("fit")
        loader = dm.train_dataloader()
        assert loader.store.data.device.type == store_type
        assert loader.device.type == "meta"  # batches still go to the training device


# ---------------------------------------------------------------------------------------------
# model.compile: a compiled run's checkpoint is one eval.py (an uncompiled net) can read.


@pytest.mark.slow
def test_model_compile_checkpoint_evaluates_uncompiled(
    runs: Callable[[str], Path], tmp_path: Path, cache_dir: Path
) -> None:
    from poolbench.cli.eval import evaluate

    run = runs("max-stride")  # trained with model.compile=true (the fixture checks it compiled)
    r = read_results(run)
    state = load_ckpt(Path(r["best_checkpoint"]))["state_dict"]
    assert "net.blocks.0.conv.weight" in state and not any("_orig_mod" in k for k in state)
    cfg = make_cfg(
        [*FAST, f"data.n_train={N_TRAIN}", f"ckpt_path={r['best_checkpoint']}", "logger=csv"],
        tmp_path,
        config="eval",
        cache=cache_dir,
    )
    assert evaluate(cfg)["test/acc"] == pytest.approx(r["metrics"]["test/acc"], abs=1e-6)


# ---------------------------------------------------------------------------------------------
# Resuming: resume=true (the newest earlier run of the same overrides) and ckpt_path=.


@pytest.mark.slow
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
            "logger=csv",
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


# ---------------------------------------------------------------------------------------------
# W&B goes online only with credentials; the key itself is never logged (see the runs above).


def test_wandb_online_only_with_credentials(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from poolbench.training.loggers import build_loggers, wandb_logger, wandb_offline, wandb_online

    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    assert wandb_offline(None) is True
    monkeypatch.setenv("WANDB_API_KEY", SECRET)
    assert wandb_offline(None) is False
    assert wandb_offline(True) is True  # logger.wandb.offline=true still wins
    monkeypatch.delenv("WANDB_API_KEY")
    netrc = tmp_path / ".netrc"  # what `wandb login` writes
    netrc.write_text(f"machine api.wandb.ai\n  login user\n  password {SECRET}\n")
    netrc.chmod(0o600)
    assert wandb_offline(None) is False
    netrc.unlink()
    monkeypatch.setenv("WANDB_MODE", "online")
    assert wandb_offline(None) is False  # wandb reads WANDB_MODE itself
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_API_KEY", SECRET)
    assert wandb_offline(None) is True  # WANDB_MODE says, credentials or not
    from poolbench.review import dashboard

    assert dashboard.wandb_online is wandb_online  # the dashboard asks the same question
    monkeypatch.delenv("WANDB_API_KEY")
    monkeypatch.delenv("WANDB_MODE")
    assert wandb_offline(False) is False  # logger.wandb.offline=false

    # The logger a run would build: online with a key, offline without; nothing started yet.
    cfg = make_cfg([*FAST, "logger=default"], tmp_path / "run")
    monkeypatch.setenv("WANDB_API_KEY", SECRET)
    online = wandb_logger(build_loggers(cfg, "defaults", None, []))
    assert online._offline is False and online._experiment is None
    monkeypatch.delenv("WANDB_API_KEY")
    assert wandb_logger(build_loggers(cfg, "defaults", None, []))._offline is True


# ---------------------------------------------------------------------------------------------
# Parallel jobs (joblib launcher), a report across seeds with the kNN column, embed split=train.


@pytest.fixture(scope="module")
def seed_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("joblib")
    out = run_cli(
        [
            "train.py",
            "-m",
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=2",
            "seed=0,1",
            *FAST,
            "callbacks.review_images=null",
            f"hydra.sweep.dir={tmp}/sweep",
            f"data.cache_dir={tmp}/cache",
        ]
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return tmp / "sweep"


def log_times(log: Path) -> tuple[datetime, datetime]:
    stamps = re.findall(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+)\]", log.read_text(), re.M)
    times = [datetime.strptime(s, "%Y-%m-%d %H:%M:%S,%f") for s in stamps]
    return times[0], times[-1]


@pytest.mark.ci
def test_joblib_jobs_run_at_once_and_share_the_cores(seed_sweep: Path) -> None:
    cores = os.cpu_count() or 1
    threads = max(1, cores // min(2, cores))
    logs = [seed_sweep / str(i) / "train.log" for i in (0, 1)]
    for log in logs:
        assert f"torch threads: {threads} ({min(2, cores)} jobs at once on {cores} cores)" in (
            log.read_text()
        )
    (start0, end0), (start1, end1) = (log_times(log) for log in logs)
    assert start0 < end1 and start1 < end0  # the two jobs overlapped in time
    results = [read_results(seed_sweep / str(i)) for i in (0, 1)]
    assert all(r["status"] == "ok" and r["metrics"]["test/acc"] > 0.2 for r in results)


@pytest.mark.ci
def test_report_across_seeds_with_knn_column_and_doc(seed_sweep: Path, tmp_path: Path) -> None:
    from poolbench.review.embed import embed

    jobs = [seed_sweep / str(i) for i in (0, 1)]
    data = [*FAST[:3], f"data.cache_dir={seed_sweep.parent}/cache"]
    # embed.py on the training split: every training image, a leave-one-out kNN score.
    ckpt0 = read_results(jobs[0])["best_checkpoint"]
    out = run_cli(["scripts/embed.py", f"ckpt_path={ckpt0}", *data, "split=train", "knn_k=5"])
    assert out.returncode == 0, out.stderr[-3000:]
    assert np.load(jobs[0] / "embeddings.npy").shape == (540, 64)
    labels = np.load(jobs[0] / "labels.npy")
    assert labels.shape == (540,) and sorted(set(labels.tolist())) == list(range(10))
    knn0 = read_results(jobs[0])["metrics"]["embed/knn_acc"]
    assert f"embed/knn_acc {knn0:.4f}" in out.stdout and knn0 > 0.2
    ckpt1 = read_results(jobs[1])["best_checkpoint"]
    cfg = make_cfg(
        [*data, f"ckpt_path={ckpt1}", "split=train", "knn_k=5"], tmp_path, config="embed"
    )
    assert embed(cfg)["n_queries"] == 540

    doc = tmp_path / "docs" / "sweeps.md"
    cli = Path(sys.executable).with_name("poolbench-report")
    rep = subprocess.run(
        [str(cli), str(seed_sweep), "--doc", str(doc)], capture_output=True, text=True, timeout=300
    )
    assert rep.returncode == 0, rep.stderr[-3000:]
    results = [read_results(j) for j in jobs]

    def mean_std(key: str) -> str:
        values = [100 * r["metrics"][key] for r in results]
        return f"{statistics.fmean(values):.2f} ± {np.std(values, ddof=1):.2f}"

    text = (seed_sweep / "report.md").read_text()
    assert "| kNN acc % |" in text
    row = next(line for line in text.splitlines() if line.startswith("| global | max |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2:6] == ["32,862", "9.05", mean_std("val/acc_best"), mean_std("test/acc")]
    assert cells[6] == mean_std("embed/knn_acc") and cells[-1] == "2/2"
    assert results[0]["metrics"]["test/acc"] != results[1]["metrics"]["test/acc"]  # two seeds
    assert row in rep.stdout
    with (seed_sweep / "results.csv").open() as f:
        csv_rows = sorted(csv.DictReader(f), key=lambda r: r["seed"])
    assert [r["seed"] for r in csv_rows] == ["0", "1"]
    for r, job in zip(csv_rows, results, strict=True):  # the kNN column too
        assert float(r["knn_acc"]) == pytest.approx(job["metrics"]["embed/knn_acc"])
    # --doc: one page, its plots copied beside it under names that its links use.
    page = doc.read_text()
    assert f"## Sweep: {seed_sweep.name}" in page and row in page
    for png in ("accuracy_vs_params.png", "curves.png"):
        link = f"{seed_sweep.name}_{png}"
        assert f"]({link})" in page
        assert (doc.parent / link).read_bytes() == (seed_sweep / png).read_bytes()


# ---------------------------------------------------------------------------------------------
# visualize_pooling.py --image --mode: the pooled panel's pixels


@pytest.mark.slow
def test_visualize_pooling_image_and_mode(tmp_path: Path) -> None:
    # Red, with one green pixel in every 8x8 window: max pooling makes each window yellow
    # (the max of both channels), mean pooling keeps it red (green at 1/64).
    img = np.zeros((224, 224, 3), np.uint8)
    img[..., 0] = 255
    img[3::8, 5::8] = (0, 255, 0)
    Image.fromarray(img).save(tmp_path / "dots.png")

    def colours(mode: str) -> tuple[int, int]:
        out = tmp_path / f"{mode}.png"
        args = ["--image", str(tmp_path / "dots.png"), "--mode", mode, "--kernel", "8"]
        done = run_cli(["scripts/visualize_pooling.py", *args, "--out", str(out)])
        assert done.returncode == 0, done.stderr[-2000:]
        px = np.asarray(Image.open(out).convert("RGB")).astype(int)
        r, g, b = px[..., 0], px[..., 1], px[..., 2]
        yellow = int(((r > 200) & (g > 200) & (b < 60)).sum())
        red = int(((r > 200) & (g < 60) & (b < 60)).sum())
        return yellow, red

    max_yellow, max_red = colours("max")
    avg_yellow, avg_red = colours("avg")
    # Two panels of about 300x300 pixels each: the original (red) and the pooled one.
    assert max_yellow > 50_000 and avg_yellow < 100
    assert avg_red > max_red + 50_000
