"""Beyond the lecture: embeddings + kNN, hypercolumns, and convolution arithmetic."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import FAST, ROOT, docs_text, make_cfg, read_results, run_cli
from helpers import picture_stats

from poolbench.config import group_options, option_node
from poolbench.models.convnet import ConvNet, layer_table
from poolbench.training.job import train

HEADS, POOLS = group_options("head"), group_options("pool")
# Every head after max pooling and every pool before the global head: pool and head rows are
# built independently, so each option once covers the table (test_models forwards all pairs).
PAIRS = sorted({(h, "max") for h in HEADS} | {("global", p) for p in POOLS})


@pytest.mark.parametrize(("head", "pool"), PAIRS)
def test_layer_table_matches_a_real_forward(head: str, pool: str) -> None:
    net = ConvNet(pool=option_node("pool", pool), head=option_node("head", head), image_size=36)
    seen = {}
    modules = dict(net.named_modules())
    rows = layer_table(net)

    def record(name: str):  # noqa: ANN202
        def hook(module, inputs, output) -> None:  # noqa: ANN001
            x = inputs[0][-1] if isinstance(inputs[0], list) else inputs[0]  # heads get a list
            seen[name] = (tuple(x.shape[1:]), tuple(output.shape[1:]))

        return hook

    for r in rows:
        modules[r["layer"]].register_forward_hook(record(r["layer"]))
    net(torch.zeros(1, 3, 36, 36))
    for r in rows:
        assert seen[r["layer"]] == (r["in"], r["out"]), r["layer"]
        params = sum(p.numel() for p in modules[r["layer"]].parameters())
        assert r["params"] == params
    assert sum(r["params"] for r in rows) == net.param_counts()["total"]
    assert sum(r["flops"] for r in rows) == net.flops_per_image()


@pytest.mark.slow
def test_shapes_script_prints_arithmetic_and_totals() -> None:
    out = run_cli(["scripts/shapes.py", "head=flatten", "pool=max"], cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "o = ⌊(32 + 2·2 − 5)/1⌋ + 1 = 32" in out.stdout
    assert "o = ⌊(16 + 2·0 − 2)/2⌋ + 1 = 8" in out.stdout
    assert "params/total 270,942" in out.stdout
    assert "flops/forward 9,524,560" in out.stdout
    bad = run_cli(["scripts/shapes.py", "pool.kernel_size=16"], cwd=ROOT)
    assert bad.returncode == 2 and "blocks.1.pool" in bad.stderr and "-3" in bad.stderr


@pytest.fixture(scope="module")
def trained_global(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    cfg = make_cfg([*FAST, "trainer.max_epochs=3"], out, cache=tmp_path_factory.mktemp("cache"))
    train(cfg)
    return out


@pytest.mark.slow
def test_embed_writes_vectors_and_knn_accuracy(trained_global: Path, tmp_path: Path) -> None:
    from poolbench.review.embed import embed

    ckpt = read_results(trained_global)["best_checkpoint"]
    cfg = make_cfg(
        [*FAST[:3], f"ckpt_path={ckpt}", "knn_k=5"],
        tmp_path,
        config="embed",
        cache=tmp_path / "cache",
    )
    # The training run's W&B project, as its saved config names it (not embed's default)
    (trained_global / ".hydra").mkdir(exist_ok=True)
    (trained_global / ".hydra/config.yaml").write_text("logger:\n  wandb:\n    project: pooling\n")
    # The run's precision, as its results.json says: one no machine's `auto` picks
    results = read_results(trained_global)
    (trained_global / "results.json").write_text(json.dumps({**results, "precision": "64-true"}))
    info = embed(cfg)
    assert info["precision"] == "64-true"
    assert info["precision_why"] == f"the run's, from {trained_global / 'results.json'}"
    emb = np.load(trained_global / "embeddings.npy")
    labels = np.load(trained_global / "labels.npy")
    assert emb.shape == (200, 64) and labels.shape == (200,)  # global head: avg ‖ max of 32 maps
    assert json.loads((trained_global / "classes.json").read_text())[0] == "class0"
    std, colours = picture_stats(trained_global / "embeddings_2d.png")
    assert std > 20 and colours > 50, (std, colours)
    # The scatter draws each class's PCA points, in its own colour.
    from poolbench.review.embed import pca_2d, scatter_figure

    xy = pca_2d(torch.from_numpy(emb))
    fig = scatter_figure(xy, torch.from_numpy(labels), [f"class{i}" for i in range(10)], "")
    for c, points in enumerate(fig.axes[0].collections):
        drawn, mine = np.asarray(points.get_offsets()), xy[labels == c].numpy()
        order = lambda a: a[np.lexsort(a.T[::-1])]  # noqa: E731 (the scatter shuffles points)
        assert drawn.shape == mine.shape and np.allclose(order(drawn), order(mine), atol=1e-5)
    assert len({tuple(p.get_facecolor()[0]) for p in fig.axes[0].collections}) == 10
    assert info["knn_acc"] > 0.2  # 10 classes: chance is 0.1
    r = read_results(trained_global)
    assert r["metrics"]["embed/knn_acc"] == info["knn_acc"]
    # The same W&B run (same id) now carries the kNN accuracy.
    run_id = r["wandb_run_id"]
    runs = sorted((trained_global / "wandb").glob(f"offline-run-*-{run_id}"))
    assert len(runs) == 2
    wandb_cli = Path(sys.executable).with_name("wandb")
    summary = json.loads(
        subprocess.run(
            [str(wandb_cli), "leet", "inspect", "--summary", "--json", str(runs[-1])],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,  # as conftest.wandb_summary (which wants one run; here there are two)
        ).stdout
    )
    assert summary["summary"]["embed/knn_acc"] == pytest.approx(info["knn_acc"])
    assert summary["run_id"] == run_id and summary["project"] == "pooling"


def test_knn_accuracy_on_separable_points() -> None:
    from poolbench.review.embed import knn_accuracy

    centers = torch.eye(3) * 10
    labels = torch.arange(3).repeat(20)
    points = centers[labels] + torch.randn(60, 3) * 0.1
    assert knn_accuracy(points, labels, points, labels, 3, 3, exclude_self=True) == 1.0
    shuffled = labels[torch.randperm(60)]
    assert knn_accuracy(points, shuffled, points, labels, 3, 3, exclude_self=True) < 0.7


@pytest.mark.slow
def test_readme_parameter_tables_are_what_shapes_py_prints() -> None:
    out = run_cli(["scripts/shapes.py", "--readme"], cwd=ROOT)
    assert out.returncode == 0, out.stderr
    readme = docs_text()  # the tables live in docs/configuration.md (Parameter counts)
    assert readme.count("<!-- scripts/shapes.py --readme -->\n") == 1  # one copy to keep true
    block = readme.split("<!-- scripts/shapes.py --readme -->\n", 1)[1]
    block = block.split("\n<!-- end of scripts/shapes.py --readme -->", 1)[0]
    assert block == out.stdout.rstrip("\n")
    # the lecture's nets, and the new pools' own parameters: one exponent / weight per layer
    for row in (
        "| `flatten` | 2,048 | 270,942 | 276,110 |",
        "| `global` | 64 | 32,862 | 38,030 |",
        "| `gem` | 32 | 29,023 | 34,191 |",
        "| `gem` | GeM | 2 | 16x16, 8x8 | 270,944 | 32,864 |",
        "| `blur` | BlurPool | 0 | 16x16, 8x8 | 270,942 | 32,862 |",
        "| `stride` | Conv2d | 5,168 | 16x16, 8x8 | 276,110 | 38,030 |",
    ):
        assert row in block
    rows = [line for line in block.splitlines() if line.startswith("| `")]
    assert len(rows) == len(HEADS) + len(POOLS)  # every shipped option has its row


def test_eval_precision_is_the_commands_else_the_runs(tmp_path: Path) -> None:
    from poolbench.review.trained import training_precision

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    ckpt = run / "checkpoints" / "last.ckpt"
    cfg = make_cfg([f"ckpt_path={ckpt}"], tmp_path / "eval", config="eval")
    assert training_precision(cfg, []) == (
        "auto",
        "this machine's default: no results.json beside the run",
    )
    (run / "results.json").write_text(json.dumps({"precision": "bf16-mixed"}))
    assert training_precision(cfg, []) == ("bf16-mixed", f"the run's, from {run / 'results.json'}")
    named = make_cfg([f"ckpt_path={ckpt}", "trainer.precision=64-true"], tmp_path / "e2", "eval")
    assert training_precision(named, ["trainer.precision=64-true"]) == (
        "64-true",
        "the command's trainer.precision=64-true",
    )
