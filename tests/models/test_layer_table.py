"""layer_table (poolbench-shapes' rows) against a real forward, for every head and pool."""

import pytest
import torch

from poolbench.config import group_options, option_node
from poolbench.models.convnet import ConvNet, layer_table

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
