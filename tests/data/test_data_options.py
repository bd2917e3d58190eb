"""data.channels_last and data.store_on_device: the batches' layout and where images are stored."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from conftest import FAST, make_cfg


@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.slow
def test_channels_last_option_sets_the_batch_layout(tmp_path: Path, channels_last: bool) -> None:
    from poolbench.data.datamodule import ImageDataModule

    cfg = make_cfg([*FAST, f"data.channels_last={channels_last}"], tmp_path, cache=tmp_path)
    dm = ImageDataModule(cfg.data)
    dm.prepare_data()
    dm.setup("fit")
    x, _ = next(iter(dm.train_dataloader()))
    assert x.shape == (128, 3, 32, 32)
    assert x.is_contiguous(memory_format=torch.channels_last) is channels_last
    assert x.is_contiguous() is not channels_last


@pytest.mark.parametrize(
    "device",
    [
        "cpu",
        pytest.param(
            "cuda",
            marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU"),
        ),
    ],
)
@pytest.mark.slow
def test_store_on_device_false_keeps_images_in_host_memory(tmp_path: Path, device: str) -> None:
    from poolbench.data.datamodule import ImageDataModule

    for on_device, store_type in ((True, device), (False, "cpu")):
        cfg = make_cfg([*FAST, f"data.store_on_device={on_device}"], tmp_path, cache=tmp_path)
        dm = ImageDataModule(cfg.data, device=device)
        dm.prepare_data()
        dm.setup("fit")
        loader = dm.train_dataloader()
        assert loader.store.data.device.type == store_type
        x, y = next(iter(loader))
        assert x.device.type == device and y.device.type == device  # batches: training device
    # (On a CPU-only machine both stores are host memory; the meta test below tells them apart.)


def test_store_on_device_chooses_the_store_device_without_a_gpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The choice itself, on any machine: "meta" is a device that is not the CPU. The real loader
    cannot run there (it seeds a Generator on the store's device), so a stand-in records what
    the data module hands it."""
    import poolbench.data.datamodule as datamodule

    def record(store: Any, labels: Any, sampler: Any, normalize: Any, **kw: Any) -> Any:
        return SimpleNamespace(store=store, device=kw["device"])

    monkeypatch.setattr(datamodule, "InMemoryLoader", record)
    for on_device, store_type in ((True, "meta"), (False, "cpu")):
        cfg = make_cfg([*FAST, f"data.store_on_device={on_device}"], tmp_path, cache=tmp_path)
        dm = datamodule.ImageDataModule(cfg.data, device="meta")
        dm.prepare_data()
        dm.setup("fit")
        loader = dm.train_dataloader()
        assert loader.store.data.device.type == store_type
        assert loader.device.type == "meta"  # batches still go to the training device
