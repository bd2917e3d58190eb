"""pooling.png: max and average pooling with the same kernel, side by side, at 2×2 and 4×4, on
one of the runs' own test images (or any photo)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from poolbench.errors import UserError
from poolbench.review.figures.style import figure

KERNELS = (2, 4)
MODES = (("max", "max pooling"), ("avg", "average pooling"))


def run_data(run_dir: Path) -> Any:
    """The data node `run_dir` trained on (its .hydra/config.yaml over today's defaults, as
    eval.py reads it), resolved against today's paths."""
    from poolbench.cli.overrides import compose
    from poolbench.review.trained import use_training_data

    if not (run_dir / ".hydra" / "config.yaml").is_file():
        raise UserError(
            f"{run_dir} has no .hydra/config.yaml to read its data from; pass a run folder "
            "written by train.py, or --image PATH"
        )
    # eval's reading of a run's data needs only where a checkpoint of that run would lie
    cfg = compose("eval", [f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}"])
    use_training_data(cfg, [])
    return cfg.data


def image_size(run_dir: Path) -> int:
    """The side the run's images were trained at (a photo is shown at it); 32 where unknown."""
    try:
        return int(run_data(run_dir).image_size)
    except UserError:
        return 32


def run_image(run_dir: Path, index: int = 0) -> tuple[Tensor, str]:
    """Test image `index` of the run's data as a (3, H, W) float tensor in [0, 1], and what it
    is. data=folder: the image file from data.root, decoded as training decoded it; other
    sources: the data module's test split (its cache, which the run left behind)."""
    from poolbench.data import folder
    from poolbench.data.datamodule import ImageDataModule

    data = run_data(run_dir)
    if data.source == "folder":
        names = folder.classes(data)
        paths, labels = folder._files(Path(str(data.root)) / "test", names)
        pixels = torch.from_numpy(folder._decode((paths[index], data.image_size)).copy())
        return pixels.permute(
            2, 0, 1
        ).float() / 255, f"{Path(paths[index]).name} ({names[labels[index]]})"
    dm = ImageDataModule(data)
    dm.prepare_data()
    dm.setup("test")
    label = dm.classes[int(dm.test.y[index])]
    return dm.test.x[index].float() / 255, f"data={data.source} test image {index} ({label})"


def pooling_panels(img: Tensor) -> dict[str, Tensor]:
    """{'original': img, 'max 2×2': …, 'avg 2×2': …, 'max 4×4': …, 'avg 4×4': …}: each
    k×k window's max or mean, stride k (pictures.pool_image, as the lecture pools)."""
    from poolbench.review.pictures import pool_image

    panels = {"original": img}
    for k in KERNELS:
        for mode, _ in MODES:
            panels[f"{mode} {k}×{k}"] = pool_image(img, mode, k)
    return panels


def _shape(x: Tensor) -> str:
    return f"{x.shape[1]}×{x.shape[2]}"


def pooling_figure(img: Tensor, what: str) -> tuple[Any, dict[str, Tensor]]:
    """The original on the left; a row per kernel size, max and average side by side, each
    panel titled with the shape it maps (e.g. 32×32 → 16×16). Pixels drawn as blocks."""
    panels = pooling_panels(img)
    fig = figure()
    grid = fig.add_gridspec(
        len(KERNELS), 3, left=0.03, right=0.97, top=0.84, bottom=0.03, wspace=0.08, hspace=0.3
    )
    ax = fig.add_subplot(grid[:, 0])
    ax.imshow(img.permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
    ax.set_title(f"original\n{_shape(img)}")
    ax.axis("off")
    for r, k in enumerate(KERNELS):
        for c, (mode, name) in enumerate(MODES):
            x = panels[f"{mode} {k}×{k}"]
            ax = fig.add_subplot(grid[r, 1 + c])
            ax.imshow(x.permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
            ax.set_title(f"{name} {k}×{k}, stride {k}\n{_shape(img)} → {_shape(x)}")
            ax.axis("off")
    fig.suptitle(f"Max vs average pooling, the same kernel: {what}")
    return fig, panels
