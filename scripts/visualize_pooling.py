"""The lecture's pooling pictures.

python scripts/visualize_pooling.py                     # photo 224x224, max 4x4, mean 2x2
python scripts/visualize_pooling.py --image cat.jpg --mode max --kernel 8
python scripts/visualize_pooling.py ckpt_path=outputs/train/<run>/checkpoints/last.ckpt [data=…]
    # a trained net: maps after each downsampling layer, and what the head pools them into
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def photo_mode(argv: list[str]) -> None:
    from poolbench.pictures import pooling_figure, sample_photo

    p = argparse.ArgumentParser(description="Pool a photo as the lecture does.")
    p.add_argument("--image", help="a photo (default: the sample photo scikit-learn ships)")
    p.add_argument("--mode", choices=["max", "avg", "mean"], help="one pooling to show")
    p.add_argument("--kernel", type=int, help="its kernel size (= stride)")
    p.add_argument("--size", type=int, default=224, help="the photo is resized to size x size")
    p.add_argument("--out", type=Path, default=ROOT / "outputs/figures/pooling.png")
    args = p.parse_args(argv)
    if args.image and not Path(args.image).is_file():
        p.error(f"--image {args.image} does not exist")
    if args.kernel is not None and not 1 <= args.kernel <= args.size:
        p.error(f"--kernel {args.kernel} must lie between 1 and --size {args.size}")
    pools = [("max", 4), ("mean", 2)]  # the lecture's two
    if args.mode or args.kernel:
        pools = [(args.mode or "max", args.kernel or 2)]
    fig = pooling_figure(sample_photo(args.image, args.size), pools)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=100)
    print(f"wrote {args.out}")


def checkpoint_mode(overrides: list[str]) -> None:
    from omegaconf import open_dict

    from poolbench.config import compose
    from poolbench.data.datamodule import ImageDataModule
    from poolbench.eval import read_checkpoint
    from poolbench.module import PoolNetModule
    from poolbench.pictures import activations_figure, spread_indices

    cfg = compose("eval", [o for o in overrides if not o.startswith("out=")])
    out = next((Path(o[4:]) for o in overrides if o.startswith("out=")), None)
    ckpt = read_checkpoint(cfg.ckpt_path)
    module = PoolNetModule(**ckpt["hyper_parameters"])
    module.load_state_dict(ckpt["state_dict"])
    with open_dict(cfg):
        cfg.data.augment = False
    dm = ImageDataModule(cfg.data)
    dm.prepare_data()
    dm.setup("test")
    idx = spread_indices(dm.test.y)
    x, y = dm.normalize(dm.test.x[idx]), dm.test.y[idx]
    preds = module(x).argmax(1)
    titles = [f"{dm.classes[t]} → {dm.classes[p]}" for t, p in zip(y, preds, strict=True)]
    fig = activations_figure(module.net, x, titles)
    out = out or Path(cfg.ckpt_path).resolve().parents[1] / "activations.png"
    fig.savefig(out, dpi=100)
    print(f"wrote {out}")


if __name__ == "__main__":
    argv = sys.argv[1:]
    if any(a.startswith("ckpt_path=") for a in argv):
        checkpoint_mode(argv)
    else:
        photo_mode(argv)
