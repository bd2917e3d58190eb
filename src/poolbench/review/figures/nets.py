"""The lecture's two nets, built from the configs as `train.py head=… pool=…` builds them: where
their parameters are (params_per_layer.png) and what shape each layer hands on (shapes.png)."""

from __future__ import annotations

from typing import Any

import numpy as np

from poolbench.review.figures.style import LECTURE_NETS, figure, human, net_label

TIMES = "×"


def lecture_nets() -> dict[str, Any]:
    """{'head=flatten pool=max': ConvNet, …}: the default model, data and image size."""
    from poolbench.cli.shapes import build_net

    return {net_label(h, p): build_net([f"head={h}", f"pool={p}"])[0] for h, p in LECTURE_NETS}


def shape_text(shape: tuple[int, ...]) -> str:
    return TIMES.join(map(str, shape))


def layer_params(net: Any) -> dict[str, int]:
    """Parameters of every layer that has any, in forward order (layer_table's rows)."""
    from poolbench.models.convnet import layer_table

    return {r["layer"]: r["params"] for r in layer_table(net) if r["params"]}


def _layer_name(row: dict[str, Any]) -> str:
    if row["kind"] == "Conv2d":
        return f"{row['layer']}\nconv {row['in'][0]}→{row['out'][0]}"
    if row["kind"] == "Linear":
        return f"{row['layer']}\nlinear →{row['out'][0]}"
    return f"{row['layer']}\n{row['kind']}"


def params_figure(nets: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Grouped bars, one group per layer with parameters, one bar per net, the count on each
    bar; a log axis, so that the small layers stay visible beside the flatten net's first
    linear layer. Data: {net: {"layers": {layer: params}, "total": total}}."""
    from matplotlib.ticker import FuncFormatter

    from poolbench.models.convnet import layer_table

    data = {
        name: {"layers": layer_params(net), "total": net.param_counts()["total"]}
        for name, net in nets.items()
    }
    names: dict[str, str] = {}  # layer -> tick label, in forward order over all nets
    for net in nets.values():
        for row in layer_table(net):
            if row["params"]:
                names.setdefault(row["layer"], _layer_name(row))
    fig = figure()
    ax = fig.add_axes((0.08, 0.17, 0.9, 0.68))
    width = 0.8 / max(1, len(nets))
    colours = ["tab:red", "tab:green", "tab:purple", "tab:brown"]
    for i, (name, d) in enumerate(data.items()):
        xs = np.arange(len(names)) + (i - (len(nets) - 1) / 2) * width
        counts = [d["layers"].get(layer, 0) for layer in names]
        bars = ax.bar(
            xs,
            counts,
            width * 0.95,
            color=colours[i % len(colours)],
            label=f"{name}: {d['total']:,} parameters",
        )
        ax.bar_label(bars, labels=[f"{c:,}" if c else "" for c in counts], padding=3, fontsize=15)
    ax.set_yscale("log")
    top = max(c for d in data.values() for c in d["layers"].values())
    ax.set_ylim(1, top * 8)  # room above the tallest bar for its number and the legend
    ax.set_xticks(range(len(names)), list(names.values()))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: human(v)))
    ax.set_ylabel("parameters (log scale)")
    ax.legend(loc="upper left", frameon=False)
    ax.grid(axis="y", alpha=0.3)
    fig.suptitle("Where the parameters are: per layer (pooling layers and the heads have none)")
    return fig, data


def shape_rows(net: Any) -> list[dict[str, str]]:
    """The shape diagram's boxes: the input, then every layer but the activations, each with
    its output shape (from the dry forward that built the net) and its window."""
    from poolbench.models.convnet import layer_table
    from poolbench.models.shapes import window

    modules = dict(net.named_modules())
    rows = [{"layer": "input", "kind": "image", "shape": shape_text(net.input_shape), "note": ""}]
    for r in layer_table(net):
        if r["kind"] in ("ReLU", "GELU", "SiLU"):
            continue  # the same shape as the layer before: no box of its own
        note = ""
        w = window(modules[r["layer"]]) if r["layer"] in modules else None
        if w:
            k, s, p = w
            note = f"{k}{TIMES}{k}, pad {p}\nstride {s}"
        rows.append(
            {"layer": r["layer"], "kind": r["kind"], "shape": shape_text(r["out"]), "note": note}
        )
    return rows


def shapes_figure(nets: dict[str, Any]) -> tuple[Any, dict[str, list[dict[str, str]]]]:
    """One row of boxes per net, input to class scores, each box the layer's output C×H×W;
    a box's height grows with its map's side, so the pooling's halving shows."""
    from matplotlib.patches import FancyBboxPatch

    data = {name: shape_rows(net) for name, net in nets.items()}
    fig = figure()
    fig.suptitle("The architecture as shapes: each layer's output (C×H×W), input to scores")
    n_rows = len(data)
    longest = max(len(rows) for rows in data.values())
    for i, (name, rows) in enumerate(data.items()):
        top = 0.88 - i * 0.85 / n_rows
        ax = fig.add_axes((0.01, top - 0.85 / n_rows + 0.02, 0.98, 0.85 / n_rows - 0.04))
        ax.set_xlim(-0.1, longest)
        ax.set_ylim(-1.25, 1.15)
        ax.axis("off")
        total = nets[name].param_counts()["total"]
        ax.text(0, 1.12, f"{name}  ({total:,} parameters)", fontsize=19, weight="bold", va="top")
        side = max(int(r["shape"].split(TIMES)[-1]) for r in rows if TIMES in r["shape"])
        for j, r in enumerate(rows):
            is_map = TIMES in r["shape"]
            h = 0.25 + 0.55 * int(r["shape"].split(TIMES)[-1]) / side if is_map else 0.22
            colour = {"Conv2d": "#cfe2f3", "image": "#eeeeee", "Linear": "#fce5cd"}.get(
                r["kind"], "#d9ead3"
            )
            ax.add_patch(
                FancyBboxPatch(
                    (j + 0.06, -h / 2 - 0.05),
                    0.78,
                    h,
                    boxstyle="round,pad=0.02",
                    facecolor=colour,
                    edgecolor="0.3",
                )
            )
            ax.text(j + 0.45, -0.05, r["shape"], ha="center", va="center", fontsize=17)
            label = f"{r['layer']}\n{r['kind']}" + (f"\n{r['note']}" if r["note"] else "")
            ax.text(j + 0.45, -0.55, label, ha="center", va="top", fontsize=13.5)
            if j:
                ax.annotate(
                    "",
                    xy=(j + 0.06, -0.05),
                    xytext=(j - 0.18, -0.05),
                    arrowprops={"arrowstyle": "->", "color": "0.3"},
                )
    return fig, data
