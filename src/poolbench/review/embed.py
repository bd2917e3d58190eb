"""Embeddings: the vector the head hands to the classifier, for every image of a split.

Quality is measured as k-nearest-neighbour accuracy (cosine similarity, similarity-weighted vote,
the train split as the index), so "is avg‖max a better embedding than avg alone?" is a number.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from torch import Tensor
from torch.nn import functional as F

from poolbench.errors import UserError
from poolbench.files import write_json

SPLITS = ("train", "val", "test")


@torch.no_grad()
def embed_split(
    net: torch.nn.Module, datamodule: Any, split: Any, batch: int = 1024, precision: Any = None
) -> Tensor:
    """The head's vectors for every image of `split`, at `precision` (a Lightning precision
    plugin, devices.precision_plugin; None: float32)."""
    from lightning.fabric.plugins import Precision

    precision = precision or Precision()
    net.eval()
    out = []
    for i in range(0, len(split), batch):
        x = precision.convert_input(datamodule.normalize(split.x[i : i + batch]))
        with precision.forward_context():
            out.append(net.embed(x).float())
    return torch.cat(out)


@torch.no_grad()
def knn_accuracy(
    index: Tensor,
    index_labels: Tensor,
    queries: Tensor,
    query_labels: Tensor,
    k: int,
    num_classes: int,
    exclude_self: bool = False,
) -> float:
    """Cosine kNN with a similarity-weighted vote."""
    index, queries = F.normalize(index, dim=1), F.normalize(queries, dim=1)
    correct = 0
    for i in range(0, len(queries), 1024):
        sim = queries[i : i + 1024] @ index.T
        if exclude_self:  # querying the index with itself: a point is not its own neighbour
            sim[torch.arange(len(sim)), torch.arange(i, i + len(sim))] = -2
        top, idx = sim.topk(min(k, index.shape[0]), dim=1)
        votes = torch.zeros(len(sim), num_classes).scatter_add_(
            1, index_labels[idx], top.clamp_min(0)
        )
        correct += (votes.argmax(1) == query_labels[i : i + 1024]).sum().item()
    return correct / len(queries)


def pca_2d(x: Tensor) -> Tensor:
    x = x - x.mean(0)
    _, _, v = torch.linalg.svd(x, full_matrices=False)
    return x @ v[:2].T


def scatter_figure(points: Tensor, labels: Tensor, classes: list[str], title: str) -> Any:
    from poolbench.review.plotting import pyplot

    plt = pyplot()

    keep = torch.randperm(len(points), generator=torch.Generator().manual_seed(0))[:5000]
    fig, ax = plt.subplots(figsize=(7, 6))
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    for c, name in enumerate(classes):
        m = labels[keep] == c
        ax.scatter(
            points[keep][m, 0],
            points[keep][m, 1],
            s=4,
            alpha=0.6,
            color=cmap(c % cmap.N),
            label=name,
        )
    ax.legend(markerscale=3, fontsize=7, loc="best")
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def training_wandb(run_dir: Path, cfg: DictConfig) -> dict[str, Any]:
    """The training run's W&B project and entity (its saved config), where embed's own logger
    settings could name another project: resuming the id there would start a second run."""
    from omegaconf import OmegaConf

    saved = run_dir / ".hydra" / "config.yaml"
    logger = OmegaConf.load(saved).get("logger") if saved.exists() else None
    node = (logger or {}).get("wandb") or cfg.logger.wandb
    return {"project": node.get("project"), "entity": node.get("entity")}


def log_to_wandb(
    run_dir: Path,
    run_id: str | None,
    cfg: DictConfig,
    knn: float,
    emb: Tensor,
    labels: Tensor,
    classes: list[str],
    xy: Tensor,
) -> None:
    """Add to the training run's W&B run (same id and project), so the dashboard shows one run."""
    if run_id is None:
        return
    import wandb

    from poolbench.training.loggers import wandb_offline

    run = wandb.init(
        id=run_id,
        resume="allow",
        **training_wandb(run_dir, cfg),
        dir=str(run_dir),
        mode="offline" if wandb_offline(cfg.logger.wandb.get("offline")) else None,
    )
    keep = torch.randperm(len(emb), generator=torch.Generator().manual_seed(0))[:1000]
    table = wandb.Table(columns=["class", "label", "pc1", "pc2", "embedding"])
    for i in keep.tolist():
        table.add_data(
            classes[labels[i]], int(labels[i]), float(xy[i, 0]), float(xy[i, 1]), emb[i].tolist()
        )
    run.log({"embed/table": table})
    run.summary["embed/knn_acc"] = knn
    run.finish()


def embed(cfg: DictConfig, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """`overrides`: the command's, so that without data= the run's own data is used."""
    from poolbench.review.trained import load_trained

    if cfg.split not in SPLITS:
        raise UserError(
            f"split={cfg.split} is not a split; use split=train, split=val or split=test"
        )
    if isinstance(cfg.knn_k, bool) or not isinstance(cfg.knn_k, int) or cfg.knn_k < 1:
        raise UserError(f"knn_k={cfg.knn_k!r} must be a positive whole number, e.g. knn_k=10")
    run = load_trained(cfg, list(overrides))  # the run's data and precision unless named
    module, dm, at_precision, precision_why = (
        run.module,
        run.datamodule,
        run.precision,
        run.precision_why,
    )
    split = getattr(dm, cfg.split)
    index_emb = embed_split(module.net, dm, dm.train, precision=at_precision)
    emb = (
        index_emb
        if cfg.split == "train"
        else embed_split(module.net, dm, split, precision=at_precision)
    )
    knn = knn_accuracy(
        index_emb,
        dm.train.y,
        emb,
        split.y,
        cfg.knn_k,
        dm.num_classes,
        exclude_self=cfg.split == "train",
    )

    run_dir = Path(cfg.ckpt_path).resolve().parents[1]
    np.save(run_dir / "embeddings.npy", emb.numpy())
    np.save(run_dir / "labels.npy", split.y.numpy())
    (run_dir / "classes.json").write_text(json.dumps(dm.classes) + "\n")
    xy = pca_2d(emb)
    head = (module.hparams.get("choices") or {}).get("head", type(module.net.head).__name__)
    fig = scatter_figure(
        xy,
        split.y,
        dm.classes,
        f"{cfg.split} embeddings, head={head} ({emb.shape[1]} features), PCA; "
        f"{cfg.knn_k}-NN accuracy {knn:.3f}",
    )
    fig.savefig(run_dir / "embeddings_2d.png", dpi=110)

    info = {
        "split": cfg.split,
        "k": cfg.knn_k,
        "dim": emb.shape[1],
        "n_index": len(index_emb),
        "n_queries": len(emb),
        "knn_acc": knn,
        "precision": cfg.trainer.precision,
        "precision_why": precision_why,
    }
    results_file = run_dir / "results.json"
    run_id = None
    if results_file.exists():
        results = json.loads(results_file.read_text())
        results.setdefault("metrics", {})["embed/knn_acc"] = knn
        results["embed"] = info
        run_id = results.get("wandb_run_id")
        write_json(results_file, results)
    if cfg.get("logger") and "wandb" in cfg.logger:
        log_to_wandb(run_dir, run_id, cfg, knn, emb, split.y, dm.classes, xy)
    print(
        f"embed/knn_acc {knn:.4f} ({cfg.knn_k}-NN, cosine, {cfg.split} split, {emb.shape[1]} "
        f"features); wrote embeddings.npy, labels.npy, classes.json, embeddings_2d.png in {run_dir}"
    )
    return info


USAGE = """Embeddings of a trained model:

    poolbench-embed ckpt_path=outputs/train/<run>/checkpoints/last.ckpt \\
        [data=…] [split=test] [knn_k=10]

(or `python scripts/embed.py …`) writes embeddings.npy, labels.npy, classes.json and
embeddings_2d.png into the run's folder, adds embed/knn_acc to its results.json and W&B run,
and prints the kNN accuracy.
"""


def run(overrides: list[str]) -> int:
    from poolbench.cli.overrides import compose

    if any(o in ("-h", "--help") for o in overrides):
        print(USAGE)
        return 0
    embed(compose("embed", overrides), overrides)  # a typo in an option or key: one line, too
    return 0


def main(argv: list[str] | None = None) -> int:
    """`poolbench-embed` and `python scripts/embed.py`: bad input is one error: line, exit 2."""
    import sys

    from poolbench.errors import answered

    return answered(run, sys.argv[1:] if argv is None else argv)
