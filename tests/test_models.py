import pytest
import torch

from poolbench.models.convnet import ConvNet, ShapeError
from poolbench.models.heads import HEADS
from poolbench.models.pooling import POOLS


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("pool", POOLS)
def test_every_head_and_pool_forwards(head: str, pool: str) -> None:
    net = ConvNet(num_classes=7, head=head, pool=pool)
    x = torch.randn(3, 3, 32, 32)
    assert net(x).shape == (3, 7)
    assert net.embed(x).shape == (3, net.embedding_dim)
    # The arithmetic plan agrees with what the layers really produce.
    feats = net.features(x)
    planned = [r.out_shape for r in net.plan if r.name.endswith(".pool")]
    assert [tuple(f.shape[1:]) for f in feats] == planned


def test_lecture_parameter_counts() -> None:
    assert ConvNet(head="flatten", pool="max").param_counts()["total"] == 270_942
    assert ConvNet(head="global", pool="max").param_counts()["total"] == 32_862


def test_parameter_breakdown() -> None:
    counts = ConvNet(head="global", pool="stride").param_counts()
    # Strided convs: 16*16*2*2+16 and 32*32*2*2+32 parameters on top of the max-pool net.
    assert counts["downsample"] == 1_040 + 4_128
    assert counts["backbone"] == 3 * 16 * 25 + 16 + 16 * 32 * 25 + 32
    assert counts["head"] == 64 * 120 + 120 + 120 * 84 + 84 + 84 * 10 + 10
    assert counts["total"] == counts["backbone"] + counts["downsample"] + counts["head"]
    assert counts["trainable"] == counts["total"]


def test_head_widths() -> None:
    assert ConvNet(head="flatten").embedding_dim == 32 * 8 * 8
    assert ConvNet(head="global").embedding_dim == 64
    assert ConvNet(head="avg").embedding_dim == ConvNet(head="max").embedding_dim == 32
    assert ConvNet(head="hypercolumn").embedding_dim == 96
    assert (
        ConvNet(head="hypercolumn").param_counts()["total"]
        == 14_048 + 96 * 120 + 120 + 10_164 + 850
    )
    nin = ConvNet(head="nin")
    assert nin.param_counts()["head"] == 32 * 10 + 10  # the 1x1 conv, and no MLP


def test_flatten_width_follows_image_size() -> None:
    assert ConvNet(head="flatten", image_size=64).embedding_dim == 32 * 16 * 16


def test_vanishing_map_names_the_layer() -> None:
    with pytest.raises(ShapeError, match=r"blocks\.1\.pool .*kernel 16"):
        ConvNet(pool="max", pool_kernel=16)
    with pytest.raises(ShapeError, match=r"blocks\.1\.pool"):
        ConvNet(head="flatten", image_size=2)


def test_flops_count_convs_and_linears() -> None:
    net = ConvNet(head="flatten", pool="max")
    conv1 = 2 * 16 * 32 * 32 * 3 * 25
    conv2 = 2 * 32 * 16 * 16 * 16 * 25
    mlp = 2 * (2048 * 120 + 120 * 84 + 84 * 10)
    assert net.flops_per_image() == conv1 + conv2 + mlp
