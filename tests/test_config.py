import time
from pathlib import Path

import pytest
from conftest import CONF, ROOT, make_cfg, run_cli

# Every config group in conf/ (Hydra's own folder aside): each option must compose.
GROUPS = sorted(p.name for p in Path(CONF).iterdir() if p.is_dir() and p.name != "hydra")


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (Path(CONF) / group).glob("*.yaml"))


@pytest.mark.parametrize("override", [f"{g}={o}" for g in GROUPS for o in options(g)])
def test_every_group_option_composes(override: str, tmp_path: Path) -> None:
    extra = ["data.root=/some/images"] if override == "data=folder" else []
    cfg = make_cfg([override, *extra], tmp_path)
    group, option = override.split("=")
    assert cfg.hydra.runtime.choices[group] == option


def test_defaults_are_the_lecture_net(tmp_path: Path) -> None:
    cfg = make_cfg([], tmp_path)
    assert (cfg.head.name, cfg.pool.name, cfg.data.source) == ("global", "max", "cifar10")
    assert list(cfg.model.channels) == [16, 32] and list(cfg.model.hidden) == [120, 84]
    assert (cfg.pool.kernel_size, cfg.pool.stride) == (2, 2)


def test_help_lists_groups_fast() -> None:
    start = time.perf_counter()
    out = run_cli(["train.py", "--help"], cwd=ROOT)
    seconds = time.perf_counter() - start
    assert out.returncode == 0, out.stderr
    for line in (
        "head: avg, flatten, global, hypercolumn, max, nin",
        "pool: avg, lp, max, none, stride",
        "data: cifar10, digits, folder, synthetic",
    ):
        assert line in out.stdout
    assert seconds < 10  # generous on a loaded CI machine; benchmark.py reports the real figure
