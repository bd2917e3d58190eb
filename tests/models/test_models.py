import pytest
import torch
from conftest import ROOT
from torch import nn

from poolbench.config import group_options, option_node
from poolbench.errors import ShapeError
from poolbench.models.convnet import ConvNet

HEADS, POOLS = group_options("head"), group_options("pool")  # every shipped yaml


def convnet(head: str = "global", pool: str = "max", **kwargs: object) -> ConvNet:
    """The net conf/head/<head>.yaml and conf/pool/<pool>.yaml build."""
    return ConvNet(pool=option_node("pool", pool), head=option_node("head", head), **kwargs)


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("pool", POOLS)
def test_every_head_and_pool_forwards(head: str, pool: str) -> None:
    net = convnet(head, pool, num_classes=7)
    x = torch.randn(3, 3, 32, 32)
    assert net(x).shape == (3, 7)
    assert net.embed(x).shape == (3, net.embedding_dim)
    # The arithmetic plan agrees with what the layers really produce.
    feats = net.features(x)
    planned = [r.out_shape for r in net.plan if r.name.endswith(".pool")]
    assert [tuple(f.shape[1:]) for f in feats] == planned


def test_lecture_parameter_counts() -> None:
    assert convnet("flatten", "max").param_counts()["total"] == 270_942
    assert convnet("global", "max").param_counts()["total"] == 32_862


def test_parameter_breakdown() -> None:
    counts = convnet("global", "stride").param_counts()
    # Strided convs: 16*16*2*2+16 and 32*32*2*2+32 parameters on top of the max-pool net.
    assert counts["downsample"] == 1_040 + 4_128
    assert counts["backbone"] == 3 * 16 * 25 + 16 + 16 * 32 * 25 + 32
    assert counts["head"] == 64 * 120 + 120 + 120 * 84 + 84 + 84 * 10 + 10
    assert counts["total"] == counts["backbone"] + counts["downsample"] + counts["head"]
    assert counts["trainable"] == counts["total"]


def test_head_widths() -> None:
    assert convnet("flatten").embedding_dim == 32 * 8 * 8
    assert convnet("global").embedding_dim == 64
    assert convnet("avg").embedding_dim == convnet("max").embedding_dim == 32
    assert convnet("hypercolumn").embedding_dim == 96
    assert convnet("hypercolumn").param_counts()["total"] == 14_048 + 96 * 120 + 120 + 10_164 + 850
    nin = convnet("nin")
    assert nin.param_counts()["head"] == 32 * 10 + 10  # the 1x1 conv, and no MLP


def test_flatten_width_follows_image_size() -> None:
    assert convnet("flatten", image_size=64).embedding_dim == 32 * 16 * 16


def test_vanishing_map_names_the_layer() -> None:
    with pytest.raises(ShapeError, match=r"blocks\.1\.pool .*kernel 16"):
        ConvNet(
            pool={**option_node("pool", "max"), "kernel_size": 16},
            head=option_node("head", "global"),
        )
    with pytest.raises(ShapeError, match=r"blocks\.1\.pool"):
        convnet("flatten", image_size=2)


def test_flops_count_convs_and_linears() -> None:
    net = convnet("flatten", "max")
    conv1 = 2 * 16 * 32 * 32 * 3 * 25
    conv2 = 2 * 32 * 16 * 16 * 16 * 25
    mlp = 2 * (2048 * 120 + 120 * 84 + 84 * 10)
    assert net.flops_per_image() == conv1 + conv2 + mlp


def test_gem_spans_average_to_max_and_learns_its_exponent() -> None:
    from torch.nn import functional as F

    from poolbench.models.heads import GeMHead
    from poolbench.models.pooling import GeM

    x = torch.rand(2, 3, 8, 8) + 0.5
    assert torch.allclose(GeM(2, 2, p=1.0)(x), F.avg_pool2d(x, 2), atol=1e-6)
    # the mean of 4 values is at least max/4: the p-th root brings it within 4^(1/50) = 1.028
    assert torch.allclose(GeM(2, 2, p=50.0)(x), F.max_pool2d(x, 2), rtol=0.03)
    window = x[0, 0, :2, :2]
    assert torch.isclose(GeM(2, 2, p=3.0)(x)[0, 0, 0, 0], window.pow(3).mean().pow(1 / 3))
    pool = GeM(2, 2, p=3.0)
    pool(x).sum().backward()
    assert pool.p.grad is not None and pool.p.grad != 0  # the exponent is trained
    head = GeMHead(p=1.0)
    assert torch.allclose(head([x]), x.mean((2, 3)), atol=1e-6)
    assert sum(p.numel() for p in head.parameters()) == 1


def test_blurpool_is_max_then_a_fixed_binomial_blur() -> None:
    from poolbench.models.pooling import BlurPool, binomial_filter

    assert torch.equal(binomial_filter(3) * 16, torch.tensor([[1.0, 2, 1], [2, 4, 2], [1, 2, 1]]))
    pool = BlurPool(kernel_size=2, stride=2, filter_size=3)
    assert list(pool.parameters()) == [] and "blur" not in pool.state_dict()
    x = torch.zeros(1, 1, 6, 6)
    x[0, 0, 2, 2] = 16.0  # one spike: max 2x2 stride 1 makes a 2x2 block of 16 at rows 1-2
    y = pool(x)
    assert y.shape == (1, 1, 3, 3)
    # Output (1, 1) is centred on input-of-blur (2, 2): the blur weights 4,2,2,1 of the block.
    assert y[0, 0, 1, 1].item() == 9.0
    # A constant map stays constant (the blur sums to 1, reflect padding).
    assert torch.allclose(pool(torch.full((1, 2, 8, 8), 3.0)), torch.full((1, 2, 4, 4), 3.0))


def test_mixed_pool_starts_halfway_between_max_and_avg() -> None:
    from torch.nn import functional as F

    from poolbench.models.pooling import MixedPool

    x = torch.rand(2, 3, 8, 8)
    pool = MixedPool(2, 2)
    expected = (F.max_pool2d(x, 2) + F.avg_pool2d(x, 2)) / 2
    assert torch.allclose(pool(x), expected, atol=1e-6)
    pool(x).sum().backward()
    assert pool.mix.grad is not None and pool.mix.grad > 0  # max > avg: the loss pulls on a


def test_layer_arithmetic_only_where_the_layer_states_it() -> None:
    net = convnet("global", "blur")
    rows = {r.name: r for r in net.plan}
    assert rows["blocks.0.pool"].arithmetic == ""  # two windows: shapes from the dry forward
    assert rows["blocks.0.pool"].out_shape == (16, 16, 16)
    assert convnet("global", "gem").plan[2].arithmetic == "o = ⌊(32 + 2·0 − 2)/2⌋ + 1 = 16"
    with pytest.raises(ShapeError, match=r"blocks\.1\.pool \(BlurPool\) cannot take a 32x9x9"):
        ConvNet(
            pool={**option_node("pool", "blur"), "kernel_size": 16},
            head=option_node("head", "global"),
        )


def test_heads_take_what_they_name_and_a_scores_head_skips_the_mlp() -> None:
    from torch import nn

    from poolbench.errors import UserError

    nin = convnet("nin")
    assert nin.ends_in_scores and isinstance(nin.classifier, nn.Identity)
    assert nin.head.conv.in_channels == 32 and nin.head.conv.out_channels == 10

    class Scores(nn.Module):  # says it ends in class scores, but gives 32 values
        ends_in_scores = True

        def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
            return feats[-1].mean((2, 3))

    with pytest.raises(ShapeError, match="ends in class scores but gives 32 values for 10"):
        ConvNet(pool=option_node("pool", "max"), head=Scores)
    with pytest.raises(UserError, match="head has no _target_"):
        ConvNet(pool=option_node("pool", "max"), head={"mode": "avg"})
    with pytest.raises(UserError, match=r"head: GlobalPoolHead\(.*mode='median'"):
        ConvNet(
            pool=option_node("pool", "max"), head={**option_node("head", "avg"), "mode": "median"}
        )


def test_no_per_name_branching_in_the_model_code() -> None:
    """The issue's check: `grep -rn '== "nin"\\|HEADS\\|POOLS' src/` finds nothing."""
    src = ROOT / "src"
    hits = [
        f"{path}:{n}"
        for path in sorted(src.rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if '== "nin"' in line or "HEADS" in line or "POOLS" in line
    ]
    assert hits == []


def test_checkpoints_from_before_target_configs_still_build() -> None:
    """Old checkpoints hold {"name": …} nodes; they build the same nets as today's options."""
    from torch import nn

    from poolbench.training.module import PoolNetModule

    old = {
        "model": {"channels": [16, 32], "kernel_size": 5, "hidden": [120, 84]},
        "head": {"name": "flatten"},
        "pool": {"name": "lp", "kernel_size": 2, "stride": 2, "p": 3.0},
        "optimizer": {},
        "scheduler": {"name": "none"},
        "num_classes": 10,
    }
    net = PoolNetModule(**old).net
    assert net.param_counts()["total"] == 270_942
    assert type(net.blocks[0].pool) is nn.LPPool2d and net.blocks[0].pool.norm_type == 3.0
    old["head"], old["pool"] = {"name": "nin"}, {"name": "stride", "kernel_size": 2, "stride": 2}
    assert PoolNetModule(**old).net.param_counts()["total"] == 19_546


class LectureGlobalPooling(nn.Module):
    """The lecture's GlobalPooling, as the lecture writes it: adaptive avg ‖ adaptive max."""

    def __init__(self) -> None:
        super().__init__()
        self.avg = nn.AdaptiveAvgPool2d(1)
        self.max = nn.AdaptiveMaxPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.avg(x), self.max(x)], dim=1).flatten(1)


def lecture_net(head: str) -> nn.Sequential:
    """The lecture's two nets as plain nn.Sequential, layer for layer."""
    pooled = [nn.Flatten(), nn.Linear(32 * 8 * 8, 120)]
    if head == "global":
        pooled = [LectureGlobalPooling(), nn.Linear(64, 120)]
    return nn.Sequential(
        nn.Conv2d(3, 16, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2, 2),
        nn.Conv2d(16, 32, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2, 2),
        *pooled,
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, 10),
    )


@pytest.mark.parametrize(("head", "total"), [("flatten", 270_942), ("global", 32_862)])
def test_the_lecture_nets_output_for_output(head: str, total: int) -> None:
    """poolbench's head=<head> pool=max with the lecture's weights gives the lecture's outputs:
    the same layers in the same order (avg before max in the global head's vector)."""
    torch.manual_seed(0)
    ref, ours = lecture_net(head), convnet(head, "max")
    theirs, mine = list(ref.parameters()), list(ours.parameters())
    assert [p.shape for p in theirs] == [p.shape for p in mine]
    assert sum(p.numel() for p in theirs) == ours.param_counts()["total"] == total
    with torch.no_grad():
        for a, b in zip(theirs, mine, strict=True):
            b.copy_(a)
    x = torch.randn(8, 3, 32, 32)
    assert torch.allclose(ours(x), ref(x), atol=1e-6)
    if head == "global":
        assert torch.equal(ours.embed(x), ref[:7](x))  # the 64-feature embedding itself


def test_global_head_mode_takes_timms_name_and_old_checkpoints_upgrade() -> None:
    from poolbench.config import upgrade_node
    from poolbench.models.heads import GlobalPoolHead

    assert option_node("head", "global")["mode"] == "catavgmax"
    with pytest.raises(ValueError, match="head.mode=avgmax was renamed head.mode=catavgmax"):
        GlobalPoolHead("avgmax")  # timm's avgmax is the average: refused, not reinterpreted
    old = {"_target_": "poolbench.models.heads.GlobalPoolHead", "mode": "avgmax"}
    assert upgrade_node("head", old) == {**old, "mode": "catavgmax"}
    assert upgrade_node("head", {"name": "global", "mode": "avgmax"})["mode"] == "catavgmax"
    net = ConvNet(pool=option_node("pool", "max"), head=upgrade_node("head", old))
    assert net.embedding_dim == 64 and net.param_counts()["total"] == 32_862


def test_schedulers_are_target_configs_and_old_name_nodes_upgrade() -> None:
    from poolbench.config import upgrade_node
    from poolbench.training.scheduler import cycles_momentum, make_scheduler

    opt = torch.optim.AdamW([nn.Parameter(torch.zeros(1))], lr=0.002)
    cosine = make_scheduler(option_node("scheduler", "cosine"), opt, 100, 4)
    assert type(cosine["scheduler"]).__name__ == "CosineAnnealingLR"
    assert cosine["scheduler"].T_max == 100 and cosine["interval"] == "step"
    one = make_scheduler(option_node("scheduler", "onecycle"), opt, 100, 4)["scheduler"]
    assert one.total_steps == 100 and one.optimizer.param_groups[0]["max_lr"] == 0.002
    assert make_scheduler(option_node("scheduler", "none"), opt, 100, 4) is None
    assert cycles_momentum(option_node("scheduler", "onecycle"))
    assert not cycles_momentum(option_node("scheduler", "cosine"))
    # a checkpoint from before: {"name": "cosine", "eta_min": …} builds today's cosine
    old = upgrade_node("scheduler", {"name": "cosine", "eta_min": 0.1})
    assert old["_target_"] == "torch.optim.lr_scheduler.CosineAnnealingLR" and old["eta_min"] == 0.1
    assert upgrade_node("scheduler", {"name": "none"}) == {}
    with pytest.raises(ValueError, match="scheduler.interval=hourly is not step or epoch"):
        make_scheduler({**option_node("scheduler", "cosine"), "interval": "hourly"}, opt, 1, 1)


def test_flops_are_counted_in_the_weights_dtype() -> None:
    """A net converted to float64 (trainer.precision=64-true, as eval loads it) still counts."""
    net = convnet("global", "max")
    assert net.double().flops_per_image() == convnet("global", "max").flops_per_image()
