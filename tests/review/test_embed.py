"""poolbench-embed: vectors, their 2-D picture and kNN accuracy, written back to the run."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import FAST, WANDB, make_cfg, read_results
from helpers import picture_stats

from poolbench.training.job import train


@pytest.fixture(scope="module")
def trained_global(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    cfg = make_cfg(
        [*FAST, WANDB, "trainer.max_epochs=3"], out, cache=tmp_path_factory.mktemp("cache")
    )
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
