"""Convolution arithmetic for a configuration, without data or training:

    poolbench-shapes head=flatten pool=max [data.image_size=64] [pool.kernel_size=3]
    poolbench-shapes pool=mypool hydra.searchpath=[file://my/conf]   # your own pool
    poolbench-shapes --readme     # docs/configuration.md's parameter tables, every option

(or `python scripts/shapes.py …`) prints every layer's input and output shape, the arithmetic
that gives it (o = ⌊(i + 2p − k)/s⌋ + 1, numbers filled in, for layers that state kernel,
stride and padding), its parameters and FLOPs per image, and the totals that results.json
reports.
"""

from __future__ import annotations

import sys
from typing import Any

from omegaconf import DictConfig

from poolbench.models.shapes import shape_str


def build_net(overrides: list[str]) -> tuple[Any, DictConfig, int]:
    """The net `train.py <overrides>` would build (checked as train.py checks it), its config
    (with the hydra node: hydra.runtime.choices) and its number of classes. A bad override or
    a vanishing map raises a UserError with the one line to print."""
    from poolbench.cli.overrides import compose
    from poolbench.data.datamodule import make_source
    from poolbench.models.convnet import build_convnet
    from poolbench.training.checks import validate

    cfg = compose("train", overrides, return_hydra_config=True)  # a typo: one line, too
    validate(cfg)  # a vanishing map is reported here, at its layer
    num_classes = len(make_source(cfg.data).classes(cfg.data))
    net = build_convnet(cfg.model, cfg.head, cfg.pool, num_classes, cfg.data.image_size)
    return net, cfg, num_classes


def readme_tables() -> str:
    """docs/configuration.md's two parameter tables (10 classes, 32x32, the default model): every
    shipped head with pool=max and pool=stride, and every shipped pool under the lecture's
    two heads. Rows by parameter count, so no option needs to be named here."""
    from omegaconf import OmegaConf

    from poolbench.cli.overrides import compose
    from poolbench.config import group_options, option_node
    from poolbench.models.convnet import build_convnet

    model = OmegaConf.to_container(compose("train", []).model, resolve=True)

    def net(head: str, pool: str) -> Any:
        return build_convnet(model, option_node("head", head), option_node("pool", pool), 10, 32)

    heads = []
    for h in group_options("head"):
        n = net(h, "max")
        heads.append((n.param_counts()["total"], h, n, net(h, "stride")))
    lines = [
        "| head | features into the MLP | parameters | with `pool=stride` |",
        "|---|---|---|---|",
    ]
    for total, h, n, strided in sorted(heads, key=lambda r: (-r[0], r[1])):
        width = f"{n.embedding_dim:,}" + (" (class scores; no MLP)" if n.ends_in_scores else "")
        lines.append(f"| `{h}` | {width} | {total:,} | {strided.param_counts()['total']:,} |")
    lines += [
        "",
        "| pool | layer | its parameters (both blocks) | maps after the blocks "
        "| `head=flatten` | `head=global` |",
        "|---|---|---|---|---|---|",
    ]
    pools = []
    for p in group_options("pool"):
        flat, glob = net("flatten", p), net("global", p)
        pools.append((glob.param_counts()["downsample"], p, flat, glob))
    for own, p, flat, glob in sorted(pools, key=lambda r: (r[0], r[1])):
        maps = ", ".join(shape_str(r.out_shape[1:]) for r in glob.plan if r.name.endswith(".pool"))
        lines.append(
            f"| `{p}` | {type(glob.blocks[0].pool).__name__} | {own:,} | {maps} "
            f"| {flat.param_counts()['total']:,} | {glob.param_counts()['total']:,} |"
        )
    return "\n".join(lines)


def print_shapes(overrides: list[str]) -> int:
    """The work of the command: the configured net's layer table, or the docs' parameter tables."""
    if any(o in ("-h", "--help") for o in overrides):
        print(__doc__)
        return 0
    if overrides == ["--readme"]:
        print(readme_tables())
        return 0
    from poolbench.models.convnet import layer_table

    net, cfg, num_classes = build_net(overrides)
    rows = layer_table(net)
    cols = ("layer", "kind", "input", "output", "params", "FLOPs")
    header = "{:<16}{:<16}{:>10}  {:>10}  {:>9}  {:>11}  arithmetic".format(*cols)
    chosen = cfg.hydra.runtime.choices
    print(
        f"head={chosen.head} pool={chosen.pool} image={cfg.data.image_size} classes={num_classes}"
    )
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


def main(argv: list[str] | None = None) -> int:
    """`poolbench-shapes` and `python scripts/shapes.py`: bad input is one error: line, exit 2."""
    from poolbench.errors import answered

    return answered(print_shapes, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
