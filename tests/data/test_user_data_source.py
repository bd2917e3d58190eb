"""A user's own data source: one class (tests/userpkg/stripes.py) and one yaml, found on
hydra.searchpath, with no edit to poolbench: it trains, tests, and names itself in results."""

from pathlib import Path

import pytest
from conftest import FAST, ROOT, make_cfg, read_results

USER_CONF = f"hydra.searchpath=[file://{ROOT / 'tests' / 'userpkg' / 'conf'}]"


def test_a_users_data_source_is_one_class_and_one_yaml(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from poolbench.training.job import train

    monkeypatch.syspath_prepend(str(ROOT / "tests"))  # userpkg importable, as once pip-installed
    fast = [o for o in FAST if not o.startswith("data")]
    cfg = make_cfg([*fast, USER_CONF, "data=stripes", "logger=csv"], tmp_path, cache=cache_dir)
    train(cfg)
    r = read_results(tmp_path)
    assert r["status"] == "ok" and r["choices"]["data"] == "stripes"
    assert r["metrics"]["test/acc"] > 0.9  # stripes across vs down: easy for a ConvNet
    assert sorted(k for k in r["metrics"] if k.startswith("test/acc_class/")) == [
        "test/acc_class/across",
        "test/acc_class/down",
    ]
    assert list(cache_dir.glob("stripes-*.pt"))  # decoded once, cached under its own name


def test_a_reader_whose_package_is_missing_is_one_line(tmp_path: Path) -> None:
    from poolbench.data.datamodule import ImageDataModule
    from poolbench.errors import DataError

    cfg = make_cfg(["data=synthetic", "data.reader._target_=theirpkg.Images"], tmp_path)
    with pytest.raises(
        DataError, match=r"^data.reader: .*theirpkg.Images.*is its package importable"
    ):
        ImageDataModule(cfg.data)
