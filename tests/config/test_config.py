"""Composed configs, judged by what they build: the README's parameter table from every
head x pool, the trainer, loggers and data each option makes, and the sweeps' job counts."""

import itertools
from pathlib import Path

import pytest
from conftest import CONF, ROOT, docs_text, make_cfg, make_folder, run_cli
from torch import nn

from poolbench.models.pooling import APSPool, BlurPool, GeM, MixedPool
from poolbench.training.job import build_module


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (Path(CONF) / group).glob("*.yaml"))


# The README's table (10 classes, 32x32): pool=max/avg/lp, and with pool=stride.
README_PARAMS = {
    "flatten": (270_942, 276_110),
    "global": (32_862, 38_030),
    "avg": (29_022, 34_190),
    "max": (29_022, 34_190),
    "hypercolumn": (36_702, 41_870),
    "nin": (14_378, 19_546),
    "gem": (29_023, 34_191),  # global avg's 29,022 and the learned exponent
}
POOL_LAYER = {
    "max": nn.MaxPool2d,
    "avg": nn.AvgPool2d,
    "lp": nn.LPPool2d,
    "stride": nn.Conv2d,
    "none": nn.Identity,
    "gem": GeM,
    "blur": BlurPool,
    "mixed": MixedPool,
    "aps": APSPool,
}
POOL_PARAMS = {"stride": 5_168, "gem": 2, "mixed": 2}  # the pool layers' own (both blocks)


def test_the_table_covers_every_option() -> None:
    assert sorted(README_PARAMS) == options("head")
    assert sorted(POOL_LAYER) == options("pool")
    assert sorted(LOGGERS) == options("logger")


@pytest.mark.parametrize(("head", "pool"), itertools.product(README_PARAMS, POOL_LAYER))
def test_composed_head_and_pool_build_the_readme_net(head: str, pool: str, tmp_path: Path) -> None:
    cfg = make_cfg([f"head={head}", f"pool={pool}"], tmp_path)
    net = build_module(cfg, 10, None).net
    total = net.param_counts()["total"]
    own = POOL_PARAMS.get(pool, 0)
    assert net.param_counts()["downsample"] == own
    if pool == "none":
        # no downsampling: as pool=max, except that a flatten head sees 32x32 maps
        assert total == (3_957_342 if head == "flatten" else README_PARAMS[head][0])
    elif pool == "stride":
        assert total == README_PARAMS[head][1]
    else:
        assert total == README_PARAMS[head][0] + own
    layers = [block.pool for block in net.blocks]
    assert len(layers) == 2 and all(type(layer) is POOL_LAYER[pool] for layer in layers)
    if pool != "none":  # pool.kernel_size and pool.stride default to 2, 2
        sizes = [r.out_shape[1:] for r in net.plan if r.name.endswith(".pool")]
        assert sizes == [(16, 16), (8, 8)]


def test_defaults_build_the_lecture_global_net(tmp_path: Path) -> None:
    from poolbench.data.datamodule import ImageDataModule

    cfg = make_cfg([], tmp_path)
    net = build_module(cfg, 10, None).net
    assert net.param_counts()["total"] == 32_862 and net.embedding_dim == 64
    assert [type(b.pool) for b in net.blocks] == [nn.MaxPool2d, nn.MaxPool2d]
    assert [b.conv.out_channels for b in net.blocks] == [16, 32]
    assert [b.conv.kernel_size for b in net.blocks] == [(5, 5), (5, 5)]
    assert ImageDataModule(cfg.data).classes[:3] == ["airplane", "automobile", "bird"]


@pytest.mark.parametrize(
    ("experiment", "params"), [("seed_flatten", 270_942), ("seed_global", 32_862)]
)
def test_experiments_pin_the_lecture_nets(experiment: str, params: int, tmp_path: Path) -> None:
    cfg = make_cfg([f"experiment={experiment}"], tmp_path)
    assert build_module(cfg, 10, None).net.param_counts()["total"] == params


def jobs(cfg) -> list[dict[str, str]]:  # noqa: ANN001
    """The jobs a sweep config launches: every combination of its swept values."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    parsed = parser.parse_overrides([f"{k}={v}" for k, v in cfg.hydra.sweeper.params.items()])
    axes = [[(o.key_or_group, v) for v in o.sweep_string_iterator()] for o in parsed]
    return [dict(combo) for combo in itertools.product(*axes)]


def test_named_sweeps_launch_the_readme_grids(tmp_path: Path) -> None:
    grid = jobs(make_cfg(["sweep=heads_x_pools"], tmp_path))
    assert len(grid) == 30  # 5 heads x 6 pools, one seed
    assert {(j["head"], j["pool"]) for j in grid} == set(
        itertools.product(
            ["flatten", "global", "avg", "max", "gem"],
            ["max", "avg", "stride", "gem", "blur", "mixed"],
        )
    )
    lecture = jobs(make_cfg(["sweep=lecture_grid"], tmp_path))
    assert len(lecture) == 36  # docs/results.md: 4 heads x 3 downsamplings x 3 seeds
    assert {(j["head"], j["pool"], j["seed"]) for j in lecture} == set(
        itertools.product(["flatten", "global", "avg", "max"], ["max", "avg", "stride"], "012")
    )
    # README's `sweep=heads_x_pools seed=0,1,2`: Hydra's sweeper adds the command line's axis.
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = [
        f"{k}={v}"
        for k, v in make_cfg(["sweep=heads_x_pools"], tmp_path).hydra.sweeper.params.items()
    ]
    parsed = OverridesParser.create().parse_overrides([*params, "seed=0,1,2"])
    (full,) = BasicSweeper.split_arguments(parsed, None)
    assert len(full) == 90
    assert sorted(full)[0] == ["head=avg", "pool=avg", "seed=0"]
    # The sweep lines of README and the docs say how many jobs each command launches: what
    # Hydra computes. A command written twice (README, docs/sweeps.md) must say it alike.
    said = [
        (line.split("#")[0].strip(), int(line.split()[-2]))
        for line in map(str.strip, docs_text().splitlines())  # indented in a list, too
        if line.startswith("python train.py -m sweep=") and line.endswith(" jobs")
    ]
    counted = dict(said)
    assert len(counted) == len({*said}), said
    shift = jobs(make_cfg(["sweep=shift_study"], tmp_path))
    assert {(j["pool"], j["data.augment"], j["seed"]) for j in shift} == set(
        itertools.product(["max", "avg", "blur", "stride", "aps"], ["True", "False"], "012")
    )
    shift_params = [
        f"{k}={v}"
        for k, v in make_cfg(["sweep=shift_study"], tmp_path).hydra.sweeper.params.items()
    ]
    parsed = OverridesParser.create().parse_overrides(
        [*shift_params, "seed=0,1", "data.augment=false"]
    )
    (closing,) = BasicSweeper.split_arguments(parsed, None)
    assert counted == {
        "python train.py -m sweep=lecture_grid": len(lecture),
        "python train.py -m sweep=heads_x_pools": len(grid),
        "python train.py -m sweep=heads_x_pools seed=0,1,2": len(full),
        "python train.py -m sweep=shift_study": len(shift),
        "python train.py -m sweep=shift_study seed=0,1 data.augment=false": len(closing),
    }
    assert (len(shift), len(closing)) == (30, 10)
    assert make_cfg(["sweep=shift_study"], tmp_path).model.padding_mode == "circular"
    seeds = jobs(make_cfg(["sweep=seed_nets"], tmp_path))
    assert len(seeds) == 6  # the lecture's two networks x 3 seeds
    totals = set()
    for job in seeds:
        cfg = make_cfg([f"{k}={v}" for k, v in job.items()], tmp_path)
        totals.add(build_module(cfg, 10, None).net.param_counts()["total"])
        assert cfg.seed in (0, 1, 2)
    assert totals == {270_942, 32_862}


def test_optuna_search_is_tpe_over_lr_and_weight_decay(tmp_path: Path) -> None:
    from hydra.utils import instantiate

    sweeper = make_cfg(["hparams_search=optuna"], tmp_path).hydra.sweeper
    assert type(instantiate(sweeper.sampler)).__name__ == "TPESampler"
    assert sweeper.n_trials == 20 and sweeper.direction == "maximize"
    assert set(sweeper.params) == {"optimizer.lr", "optimizer.weight_decay"}


LOGGERS = {
    "default": ["CSVLogger", "WandbLogger"],
    "csv": ["CSVLogger"],
    "wandb": ["WandbLogger"],
    "tensorboard": ["TensorBoardLogger"],
    "none": [],
}


@pytest.mark.parametrize(("logger", "kinds"), LOGGERS.items())
def test_logger_options_build_those_loggers(logger: str, kinds: list[str], tmp_path: Path) -> None:
    from poolbench.training.loggers import build_loggers

    cfg = make_cfg([f"logger={logger}"], tmp_path)
    built = build_loggers(cfg, "defaults", None, [])
    assert [type(lg).__name__ for lg in built] == kinds
    for lg in built:  # every logger writes inside the run folder
        assert Path(lg.save_dir).resolve() == tmp_path.resolve()


@pytest.mark.parametrize(
    ("trainer", "accelerator", "world_size"),
    [
        ("default", "CPUAccelerator", 1),
        ("cpu", "CPUAccelerator", 1),
        ("ddp_cpu", "CPUAccelerator", 2),
    ],
)
@pytest.mark.parametrize("cpu_bf16", [True, False])
def test_trainer_options_build_that_trainer(
    trainer: str,
    accelerator: str,
    world_size: int,
    cpu_bf16: bool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torch

    from poolbench.training import devices
    from poolbench.training.job import build_trainer

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as on this CPU machine
    # Both kinds of CPU, whatever this one is: precision=auto follows native bf16 support.
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: cpu_bf16)
    cfg = make_cfg([f"trainer={trainer}", "callbacks.progress_bar=null"], tmp_path)
    built = build_trainer(cfg, [], tmp_path)
    torch.use_deterministic_algorithms(False)  # the Trainer turned it on for seed=0
    assert type(built.accelerator).__name__ == accelerator
    assert built.world_size == world_size
    # ddp_cpu pins 32-true; the others leave precision=auto.
    expected = "bf16-mixed" if cpu_bf16 and trainer != "ddp_cpu" else "32-true"
    assert built.precision == expected
    if trainer == "ddp_cpu":
        assert type(built.strategy).__name__ == "DDPStrategy"
        assert built.strategy._process_group_backend == "gloo"


@pytest.mark.parametrize("data", ["cifar10", "digits", "synthetic", "folder"])
def test_data_options_name_their_classes(data: str, tmp_path: Path) -> None:
    from poolbench.data.datamodule import ImageDataModule

    extra = [f"data.root={make_folder(tmp_path / 'imgs')}"] if data == "folder" else []
    dm = ImageDataModule(make_cfg([f"data={data}", *extra], tmp_path / "run").data)
    expected = {
        "cifar10": ["airplane", "automobile", "bird", "cat", "deer"]
        + ["dog", "frog", "horse", "ship", "truck"],
        "digits": [str(d) for d in range(10)],
        "synthetic": [f"class{k}" for k in range(10)],
        "folder": ["cat", "dog"],
    }[data]
    assert dm.classes == expected


def test_help_lists_groups() -> None:
    # (How fast --help answers is benchmark.py's to report, not a test's to time.)
    out = run_cli(["train.py", "--help"], cwd=ROOT)
    assert out.returncode == 0, out.stderr
    for line in (
        "head: avg, flatten, gem, global, hypercolumn, max, nin",
        "pool: aps, avg, blur, gem, lp, max, mixed, none, stride",
        "data: cifar10, digits, folder, synthetic",
        "tta: flip, flip_translate, none",
    ):
        assert line in out.stdout


@pytest.mark.parametrize(
    "argv",
    [
        ["head=flatten", "pool=max"],
        ["-m", "head=flatten,global", "--config-name", "eval"],
        ["--cfg", "job", "--resolve", "-p", "model", "seed=1"],
        ["-cd", "/tmp/conf", "-cn", "other", "hydra.searchpath=[pkg://x.conf]", "-r"],
        ["--info", "searchpath"],
        ["-sc", "install=bash"],
        ["--hydra-help"],
    ],
)
def test_the_flags_parser_reads_argv_as_hydra_does(argv: list[str]) -> None:
    """cli.py tells overrides from flags with its own copy of Hydra 1.3's flags (no
    hydra._internal in src/); here, Hydra's own parser is the reference."""
    from hydra._internal.utils import get_args_parser  # the reference, in a test only

    from poolbench.cli.parse import hydra_flags_parser

    ours, _ = hydra_flags_parser().parse_known_args(argv)
    theirs, _ = get_args_parser().parse_known_args(argv)
    assert vars(ours) == {k: v for k, v in vars(theirs).items() if k != "version"}


def test_no_module_imports_hydras_internals() -> None:
    hits = [p for p in (ROOT / "src").rglob("*.py") if "hydra._internal" in p.read_text()]
    assert hits == []
