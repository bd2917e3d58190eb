"""The lecture's pooling pictures.

poolbench-visualize                     # photo 224x224, max 4x4, mean 2x2
poolbench-visualize --image cat.jpg --mode max --kernel 8
poolbench-visualize ckpt_path=outputs/train/<run>/checkpoints/last.ckpt [out=DIR]
    # a trained net: maps after each downsampling layer and what the head pools them into, and
    # each class's most confident test mistakes (default DIR: <run>/pictures/<checkpoint name>/)

(or `python scripts/visualize_pooling.py …`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

PER_CLASS = 8  # as callbacks.review_images.per_class


def default_out() -> Path:
    # Where paths.root_dir puts a run's outputs: $POOLBENCH_ROOT, else the current folder.
    return Path(os.environ.get("POOLBENCH_ROOT", ".")) / "outputs" / "figures" / "pooling.png"


def photo_mode(argv: list[str]) -> None:
    from poolbench.errors import OneLineArgumentParser
    from poolbench.review.pictures import pooling_figure, sample_photo

    p = OneLineArgumentParser(
        prog="poolbench-visualize",
        description=__doc__,  # the checkpoint mode too, which takes Hydra overrides instead
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--image", help="a photo (default: the sample photo scikit-learn ships)")
    p.add_argument("--mode", choices=["max", "avg", "mean"], help="one pooling to show")
    p.add_argument("--kernel", type=int, help="its kernel size (= stride)")
    p.add_argument("--size", type=int, default=224, help="the photo is resized to size x size")
    p.add_argument("--out", type=Path, default=default_out(), help="the PNG to write")
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


def load_run(ckpt_path: str | Path, overrides: Sequence[str] = ()) -> Any:
    """The checkpoint's net and its run's data, as eval.py loads them (trained.load_trained),
    without augmentation. Bad input raises a UserError."""
    from poolbench.cli.overrides import compose
    from poolbench.review.trained import load_trained

    overrides = [
        f"ckpt_path={ckpt_path}",
        *(o for o in overrides if not o.startswith("ckpt_path=")),
    ]
    return load_trained(compose("eval", overrides), overrides, augment=False)


@torch.no_grad()
def checkpoint_mode(overrides: list[str]) -> None:
    from poolbench.review.pictures import activations_figure, spread_indices
    from poolbench.review.run_pictures import add_mistakes, misclassified_image, save_figure

    out = next((Path(o[4:]) for o in overrides if o.startswith("out=")), None)
    overrides = [o for o in overrides if not o.startswith("out=")]
    ckpt_path = next(o.split("=", 1)[1] for o in overrides if o.startswith("ckpt_path="))
    run = load_run(ckpt_path, overrides)
    module, dm, at_precision = run.module, run.datamodule, run.precision
    # A run's own pictures are not overwritten: these go beside them, named by checkpoint.
    ckpt_file = Path(run.cfg.ckpt_path).resolve()
    out = out or ckpt_file.parents[1] / "pictures" / ckpt_file.stem
    out.mkdir(parents=True, exist_ok=True)
    idx = spread_indices(dm.test.y)

    x, y = dm.normalize(dm.test.x[idx]), dm.test.y[idx]
    with at_precision.forward_context():  # the run's precision: its dtype and autocast
        x = at_precision.convert_input(x)
        preds = module(x).argmax(1)
        titles = [f"{dm.classes[t]} → {dm.classes[p]}" for t, p in zip(y, preds, strict=True)]
        save_figure(activations_figure(module.net, x, titles), out / "activations.png")
        # The same selection as a run's misclassified.png: each class's most confident
        # mistakes, scored with the run's test-time augmentation.
        kept = None
        for xb, yb in dm.test_dataloader():
            logits = module.eval_logits(at_precision.convert_input(xb))
            kept = add_mistakes(kept, xb, logits, yb, PER_CLASS)
    save_figure(misclassified_image(kept, dm.classes, PER_CLASS), out / "misclassified.png")
    print(f"wrote {out / 'activations.png'} and {out / 'misclassified.png'}")


def main(argv: list[str] | None = None) -> int:
    """`poolbench-visualize` and `python scripts/visualize_pooling.py`."""
    argv = sys.argv[1:] if argv is None else argv
    if any(a.startswith("ckpt_path=") for a in argv):
        from poolbench.errors import answered

        answered(checkpoint_mode, argv)  # bad input: one error: line, exit 2
    else:
        photo_mode(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
