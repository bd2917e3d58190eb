"""Convolution arithmetic for a configuration, without data or training:

    python scripts/shapes.py head=flatten pool=max [data.image_size=64] [pool.kernel_size=3]

prints every layer's input and output shape, the arithmetic that gives it
(o = ⌊(i + 2p − k)/s⌋ + 1, numbers filled in), its parameters and FLOPs per image, and the
totals that results.json reports.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def shape_str(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def main(overrides: list[str]) -> int:
    from poolbench.checks import validate
    from poolbench.config import compose
    from poolbench.errors import UserError

    if any(o in ("-h", "--help") for o in overrides):
        print(__doc__)
        return 0
    try:
        cfg = compose("train", overrides)  # a typo in an option or key: one line, too
        validate(cfg)  # a vanishing map is reported here, at its layer
        from poolbench.data.datamodule import SOURCES
        from poolbench.models.convnet import build_convnet, layer_table

        num_classes = len(SOURCES[cfg.data.source].classes(cfg.data))
        net = build_convnet(cfg.model, cfg.head, cfg.pool, num_classes, cfg.data.image_size)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    rows = layer_table(net)
    cols = ("layer", "kind", "input", "output", "params", "FLOPs")
    header = "{:<16}{:<16}{:>10}  {:>10}  {:>9}  {:>11}  arithmetic".format(*cols)
    cfg_line = f"head={cfg.head.name} pool={cfg.pool.name} image={cfg.data.image_size}"
    print(f"{cfg_line} classes={num_classes}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['layer']:<16}{r['kind']:<16}{shape_str(r['in']):>10}  {shape_str(r['out']):>10}  "
            f"{r['params']:>9,}  {r['flops']:>11,}  {r['arithmetic']}"
        )
    counts = net.param_counts()
    print("-" * len(header))
    print(
        f"params/total {counts['total']:,}  (backbone {counts['backbone']:,}, downsample "
        f"{counts['downsample']:,}, head {counts['head']:,})"
    )
    print(
        f"flops/forward {net.flops_per_image():,} per image "
        f"({net.flops_per_image() / 1e6:.2f} MFLOPs; convolutions and matrix products)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
