"""A researcher's own pool and head, from a package outside src/ (tests/userpkg: a class per
layer and one yaml each), added with hydra.searchpath, with no edit to poolbench: they compose,
build, count parameters, are checked for vanishing maps, train, and show in results.json."""

import os
from pathlib import Path

import pytest
import torch
from conftest import FAST, ROOT, make_cfg, read_results, run_cli

from poolbench.training.job import build_module

TESTS = ROOT / "tests"
USER_CONF = f"hydra.searchpath=[file://{TESTS / 'userpkg' / 'conf'}]"
# userpkg must be importable where the net is built: here tests/ on PYTHONPATH, for a user
# `pip install` of their package.
ENV = {"PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))}

# AttentionHead: a 1x1 conv 32 -> 1 (33), then the MLP 32 -> 120 -> 84 -> 10 (15,974);
# PowerMean: one exponent per channel, 16 + 32; the convs: 1,216 + 12,832.
ATTENTION_MLP = 33 + 32 * 120 + 120 + 120 * 84 + 84 + 84 * 10 + 10
BACKBONE = 3 * 16 * 25 + 16 + 16 * 32 * 25 + 32


@pytest.fixture
def userpkg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(TESTS))


def test_user_pool_and_head_build_with_exact_counts(userpkg: None, tmp_path: Path) -> None:
    cfg = make_cfg([USER_CONF, "pool=powermean", "head=attention"], tmp_path)
    net = build_module(cfg, 10, None).net
    assert [type(b.pool).__name__ for b in net.blocks] == ["PowerMean", "PowerMean"]
    assert [b.pool.p.shape[0] for b in net.blocks] == [16, 32]  # `channels` came from the net
    counts = net.param_counts()
    assert counts["downsample"] == 16 + 32
    assert counts["backbone"] == BACKBONE == 14_048
    assert counts["head"] == ATTENTION_MLP == 15_007
    assert counts["total"] == 14_048 + 48 + 15_007 == 29_103
    assert net.embedding_dim == 32
    pool_rows = [r for r in net.plan if r.name.endswith(".pool")]
    assert [r.out_shape for r in pool_rows] == [(16, 16, 16), (32, 8, 8)]
    assert pool_rows[1].arithmetic == "o = ⌊(16 + 2·0 − 2)/2⌋ + 1 = 8"
    # each alone, beside the shipped options: the lecture's counts plus the layer's own
    with_global = make_cfg([USER_CONF, "pool=powermean"], tmp_path)
    assert build_module(with_global, 10, None).net.param_counts()["total"] == 32_862 + 48
    with_max = make_cfg([USER_CONF, "head=attention"], tmp_path)
    assert build_module(with_max, 10, None).net.param_counts()["total"] == 29_022 + 33
    x = torch.randn(2, 3, 32, 32)
    assert net(x).shape == (2, 10)


@pytest.mark.slow
def test_user_options_are_checked_like_shipped_ones(tmp_path: Path) -> None:
    typo = run_cli(["train.py", USER_CONF, "pool=powermaen"], env=ENV)
    assert typo.returncode == 2, typo.stderr
    assert "pool=powermaen is not an option; did you mean powermean?" in typo.stderr
    assert "powermean, stride" in typo.stderr  # listed with poolbench's own options
    shapes = run_cli(["scripts/shapes.py", USER_CONF, "pool=powermean", "head=attention"], env=ENV)
    assert shapes.returncode == 0, shapes.stderr
    assert "head=attention pool=powermean" in shapes.stdout
    assert "params/total 29,103" in shapes.stdout
    bad = run_cli(
        ["scripts/shapes.py", USER_CONF, "pool=powermean", "pool.kernel_size=16"], env=ENV
    )
    assert bad.returncode == 2
    assert "blocks.1.pool (PowerMean, kernel 16, stride 2, padding 0) turns a 32x9x9" in bad.stderr


@pytest.mark.slow
def test_user_pool_and_head_train_and_report(tmp_path: Path) -> None:
    run = tmp_path / "run"
    out = run_cli(
        [
            "train.py",
            *FAST,
            "trainer.max_epochs=1",
            "logger=csv",
            "hydra.searchpath=[pkg://userpkg.conf]",  # the package form of the search path
            "pool=powermean",
            "head=attention",
            f"hydra.run.dir={run}",
            f"data.cache_dir={tmp_path}/cache",
        ],
        env=ENV,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    r = read_results(run)
    assert r["status"] == "ok"
    assert r["choices"]["pool"] == "powermean" and r["choices"]["head"] == "attention"
    assert r["params"]["total"] == 29_103 and r["params"]["downsample"] == 48
    assert r["metrics"]["test/acc"] > 0.1  # 10 classes: above chance after one epoch
    ckpt = torch.load(r["best_checkpoint"], map_location="cpu", weights_only=True)
    hp = ckpt["hyper_parameters"]
    assert hp["pool"]["_target_"] == "userpkg.layers.PowerMean"
    assert hp["choices"] == {"model": "convnet", "head": "attention", "pool": "powermean"}
    trained_p = ckpt["state_dict"]["net.blocks.1.pool.p"]
    assert trained_p.shape == (32, 1, 1) and not torch.all(trained_p == 3.0)  # it learned


def test_a_search_path_not_found_here_is_left_to_hydra(tmp_path: Path) -> None:
    out = run_cli(
        ["train.py", f"hydra.searchpath=[file://{tmp_path}/nowhere]", "pool=powermean"], env=ENV
    )
    assert out.returncode == 2, out.stderr
    assert "path=" in out.stderr and "is not available" in out.stderr  # Hydra's warning
    line = out.stderr.strip().splitlines()[-1]  # and Hydra's composition, in one line
    assert line.startswith("error: pool=powermean is not an option (pool options: aps, avg,"), line


@pytest.mark.slow
def test_user_options_sweep_and_show_in_the_report(tmp_path: Path) -> None:
    from poolbench.review.report import report

    sweep = tmp_path / "sweep"
    out = run_cli(
        [
            "train.py",
            "-m",
            *FAST,
            "trainer.max_epochs=1",
            "logger=csv",
            USER_CONF,
            "pool=powermean,max",
            "head=attention",
            f"hydra.sweep.dir={sweep}",
            f"data.cache_dir={tmp_path}/cache",
        ],
        env=ENV,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    totals = {
        read_results(sweep / str(i))["choices"]["pool"]: read_results(sweep / str(i))["params"][
            "total"
        ]
        for i in range(2)
    }
    assert totals == {"powermean": 29_103, "max": 29_022 + 33}
    text = report(sweep).read_text().splitlines()
    rows = [line for line in text if line.startswith("| attention |")]
    assert len(rows) == 2 and any("| powermean | 29,103 |" in r for r in rows), rows
    # ... and in the lecture's comparison of pools (each against max pooling)
    assert any("29,103 vs 29,055 parameters" in line for line in text), text


def test_a_users_scheduler_is_one_yaml(tmp_path: Path, cache_dir: Path) -> None:
    """torch's StepLR from the user's conf/scheduler/step.yaml: no poolbench code names it."""
    import csv

    from poolbench.training.job import train

    cfg = make_cfg(
        [*FAST, "trainer.max_epochs=3", "logger=csv", USER_CONF, "scheduler=step"],
        tmp_path,
        cache=cache_dir,
    )
    train(cfg)
    with (tmp_path / "csv" / "metrics.csv").open() as f:
        lrs = [float(row["lr-AdamW"]) for row in csv.DictReader(f) if row["lr-AdamW"]]
    assert lrs == pytest.approx([0.002, 0.001, 0.0005])  # halved at each epoch's end
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["lr_schedulers"][0]["step_size"] == 1 and last["lr_schedulers"][0]["gamma"] == 0.5
    assert read_results(tmp_path)["choices"]["scheduler"] == "step"
