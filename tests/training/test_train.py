"""Real training runs, short: in-process through experiment.train, and through the CLI."""

import csv
from pathlib import Path

import pytest
import torch
from conftest import FAST, WANDB, make_cfg, read_results, run_cli, wandb_summary
from helpers import picture_stats

from poolbench.training.devices import cpu_has_native_bf16
from poolbench.training.job import train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    cache = tmp_path_factory.mktemp("cache")
    cfg = make_cfg([*FAST, WANDB, "trainer.max_epochs=3"], out, cache=cache)
    best = train(cfg)
    assert best is not None and best > 0.3
    return out


def test_training_beats_chance_and_writes_results(trained: Path) -> None:
    r = read_results(trained)
    assert r["status"] == "ok" and r["error"] is None
    assert r["choices"]["head"] == "global" and r["choices"]["pool"] == "max"
    assert r["choices"]["data"] == "synthetic"
    assert r["params"]["total"] == 32_862
    assert r["flops_per_image"] == 9_048_400
    assert r["epochs"] == 3
    # precision=auto resolved for this machine's CPU, and recorded
    assert r["precision"] == ("bf16-mixed" if cpu_has_native_bf16() else "32-true")
    m = r["metrics"]
    assert m["test/acc"] > 0.3  # 10 classes: chance is 0.1
    assert m["val/acc_best"] >= m["val/acc"] - 1e-9
    for key in ("train/loss", "train/acc", "val/loss", "test/loss", "time/epoch_s"):
        assert key in m


def test_metrics_csv_has_a_row_per_epoch(trained: Path) -> None:
    r = read_results(trained)
    with (trained / "csv" / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    for col in ("epoch", "step", "train/loss_epoch", "train/acc", "val/loss", "val/acc"):
        assert col in rows[0]
    for col in ("val/acc_best", "test/acc", "test/loss", "time/epoch_s", "lr-AdamW"):
        assert col in rows[0]
    val = [(int(row["epoch"]), float(row["val/acc"])) for row in rows if row["val/acc"]]
    assert [e for e, _ in val] == [0, 1, 2]
    assert max(a for _, a in val) == pytest.approx(r["metrics"]["val/acc_best"])
    assert [int(row["epoch"]) for row in rows if row["train/acc"]] == [0, 1, 2]
    tests = [float(row["test/acc"]) for row in rows if row["test/acc"]]
    assert tests == [pytest.approx(r["metrics"]["test/acc"])]
    # The learning rate at each epoch's start: AdamW's 0.002, then cosine decay.
    lrs = [float(row["lr-AdamW"]) for row in rows if row["lr-AdamW"]]
    assert len(lrs) == 3 and lrs[0] == pytest.approx(0.002) and lrs[0] > lrs[1] > lrs[2] > 0


def test_checkpoints_load_with_weights_only(trained: Path) -> None:
    import torch

    from poolbench.training.module import PoolNetModule

    r = read_results(trained)
    last = torch.load(trained / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["epoch"] == 2 and last["global_step"] == 3 * 5  # 540 images, batches of 128
    net = {k: v for k, v in last["state_dict"].items() if k.startswith("net.")}
    assert sum(v.numel() for v in net.values()) == 32_862
    assert last["hyper_parameters"]["choices"]["head"] == "global"
    head = last["hyper_parameters"]["head"]  # what to build, as plain data (weights_only)
    assert head == {"_target_": "poolbench.models.heads.GlobalPoolHead", "mode": "catavgmax"}
    assert last["optimizer_states"][0]["param_groups"][0]["lr"] < 1e-6  # cosine: down to 0
    best_path = Path(r["best_checkpoint"])
    best = torch.load(best_path, map_location="cpu", weights_only=True)
    with (trained / "csv" / "metrics.csv").open() as f:
        val = [float(row["val/acc"]) for row in csv.DictReader(f) if row["val/acc"]]
    best_epoch = val.index(max(val))
    assert best["epoch"] == best_epoch
    assert best_path.name == f"epoch{best_epoch:03d}-acc{max(val):.4f}.ckpt"
    saver = next(v for k, v in best["callbacks"].items() if k.startswith("ModelCheckpoint"))
    assert float(saver["best_model_score"]) == pytest.approx(r["metrics"]["val/acc_best"])
    module = PoolNetModule(**best["hyper_parameters"])
    module.load_state_dict(best["state_dict"])  # strict: every key and shape fits


def test_wandb_offline_run_holds_accuracy_and_params(trained: Path) -> None:
    s = wandb_summary(trained)
    assert s["state"] == "finished"
    assert s["summary"]["params/total"] == 32_862
    assert s["summary"]["trainer/precision"] == read_results(trained)["precision"]
    assert s["summary"]["test/acc"] == pytest.approx(read_results(trained)["metrics"]["test/acc"])
    assert s["config"]["head"] == "global" and s["config"]["pool"] == "max"
    assert s["config"]["data"] == "synthetic"
    assert "head:global" in s["tags"]
    for media in ("test/confusion_matrix", "test/misclassified", "test/activations"):
        assert media in s["summary"]
        std, colours = picture_stats(trained / f"{media.split('/')[1]}.png")
        assert std > 20 and colours > 50, (media, std, colours)  # drawn, not blank or flat


def test_eval_reproduces_test_accuracy(trained: Path, tmp_path: Path) -> None:
    from poolbench.cli.eval import evaluate

    r = read_results(trained)
    overrides = [*FAST, f"ckpt_path={r['best_checkpoint']}"]
    cfg = make_cfg(overrides, tmp_path, config="eval", cache=tmp_path / "cache")
    metrics = evaluate(cfg)
    assert metrics["test/acc"] == pytest.approx(r["metrics"]["test/acc"], abs=1e-6)
    assert read_results(tmp_path)["status"] == "ok"


def test_eval_loss_and_class_accuracy_from_a_full_pass(trained: Path, tmp_path: Path) -> None:
    import lightning as L
    import torch
    from torch.nn import functional as F

    from poolbench.data.datamodule import ImageDataModule
    from poolbench.training.module import PoolNetModule

    module = PoolNetModule.load_from_checkpoint(read_results(trained)["best_checkpoint"])
    dm = ImageDataModule(make_cfg(FAST, tmp_path, cache=tmp_path / "cache").data)
    trainer = L.Trainer(
        accelerator="cpu", precision="32-true", logger=False, enable_progress_bar=False
    )
    metrics = trainer.test(module, datamodule=dm, verbose=False)[0]
    logged = metrics["test/loss"]
    dm.setup()
    with torch.no_grad():
        logits = module.eval_logits(dm.normalize(dm.test.x))
    losses = F.cross_entropy(logits, dm.test.y, reduction="none")
    # and each class's accuracy, under its name
    right = logits.argmax(1) == dm.test.y
    for k in range(10):
        expected = right[dm.test.y == k].float().mean().item()
        assert metrics[f"test/acc_class/class{k}"] == pytest.approx(expected), k
    assert len([k for k in metrics if k.startswith("test/acc_class/")]) == 10
    assert len(losses) == 200  # batches of 128 and 72
    assert logged == pytest.approx(losses.mean().item(), rel=1e-5)
    per_batch = (losses[:128].mean() + losses[128:].mean()).item() / 2
    assert abs(per_batch - logged) > 1e-4  # what averaging the batch means would have given


def test_cli_flatten_net(tmp_path: Path) -> None:
    out = run_cli(
        [
            "train.py",
            "head=flatten",
            "pool=max",
            *FAST,
            WANDB,
            "trainer.max_epochs=1",
            f"hydra.run.dir={tmp_path}/run",
            f"data.cache_dir={tmp_path}/cache",
        ]
    )
    assert out.returncode == 0, out.stderr[-3000:]
    r = read_results(tmp_path / "run")
    assert r["status"] == "ok" and r["params"]["total"] == 270_942
    assert r["choices"]["head"] == "flatten"
    assert wandb_summary(tmp_path / "run")["summary"]["params/total"] == 270_942


def test_activation_pictures_from_a_checkpoint(trained: Path, tmp_path: Path) -> None:
    ckpt = read_results(trained)["best_checkpoint"]
    out = run_cli(
        [
            "scripts/visualize_pooling.py",
            f"ckpt_path={ckpt}",
            *FAST[:3],
            f"data.cache_dir={tmp_path}/cache",
            f"out={tmp_path}/pictures",
        ]
    )
    assert out.returncode == 0, out.stderr[-3000:]
    for name in ("activations", "misclassified"):
        std, colours = picture_stats(tmp_path / "pictures" / f"{name}.png")
        assert std > 20 and colours > 50, (name, std, colours)


@pytest.mark.ci
def test_torchvision_reference_loader_trains(tmp_path: Path) -> None:
    cfg = make_cfg(
        [
            *FAST,
            "data.loader=torchvision",
            "data.augment=true",
            "data.n_train=2000",  # flipped gratings look like other classes: 600 was too few
            "trainer.max_epochs=3",
        ],
        tmp_path,
        cache=tmp_path / "cache",
    )
    assert train(cfg) > 0.4  # chance is 0.1; seeds 0-2 gave 0.63-0.93
    assert read_results(tmp_path)["status"] == "ok"


def test_the_test_metrics_come_from_the_best_checkpoint_not_the_last(
    tmp_path: Path, cache_dir: Path
) -> None:
    wreck = "+callbacks.wreck._target_=helpers.WreckLastEpoch"
    cfg = make_cfg([*FAST, "trainer.max_epochs=3", wreck], tmp_path, cache=cache_dir)
    train(cfg)
    r = read_results(tmp_path)
    with (tmp_path / "csv" / "metrics.csv").open() as f:
        val = [float(row["val/acc"]) for row in csv.DictReader(f) if row["val/acc"]]
    assert len(val) == 3 and val[-1] < 0.1 < max(val[:2])  # the last epoch is the worst
    best = torch.load(r["best_checkpoint"], map_location="cpu", weights_only=True)
    assert best["epoch"] < 2
    # test/acc is the best checkpoint's: well above chance, where the last one is below it
    assert r["metrics"]["test/acc"] > 0.3
    assert r["metrics"]["val/acc_best"] == pytest.approx(max(val))
