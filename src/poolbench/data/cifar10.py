"""CIFAR-10 through torchvision: downloaded once into data.root, then decoded to tensors."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import torch

from poolbench.data.resize import resize_uint8
from poolbench.data.tensors import ImageSet, Split
from poolbench.errors import DataError

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def classes(cfg: Any) -> list[str]:
    return list(CLASSES)


def _offline_message(root: str, err: BaseException) -> str:
    return (
        f"CIFAR-10 is not in data.root={root} and could not be downloaded ({type(err).__name__}: "
        f"{err}). Put cifar-10-python.tar.gz (or its extracted cifar-10-batches-py/) in {root}, "
        "or train on an image folder with `data=folder data.root=PATH` "
        "(e.g. ../shared/data/cifar10-jpg), or run offline on real digits with `data=digits`."
    )


def prepare(cfg: Any) -> None:
    """Download the archive if it is not there yet (runs once, on rank zero)."""
    from torchvision.datasets import CIFAR10

    try:
        CIFAR10(cfg.root, train=True, download=False)
        return
    except RuntimeError:
        pass  # not there yet
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(20)  # offline nodes should fail fast, not hang
    try:
        CIFAR10(cfg.root, train=True, download=True)
    except Exception as err:  # URLError, timeouts, bad checksum: all mean "not available"
        raise DataError(_offline_message(cfg.root, err)) from err
    finally:
        socket.setdefaulttimeout(previous)


def cache_key(cfg: Any) -> dict[str, Any]:
    batches = Path(cfg.root) / "cifar-10-batches-py"
    stamp = (
        [p.stat().st_mtime_ns for p in sorted(batches.glob("*_batch*"))] if batches.exists() else []
    )
    return {"root": str(Path(cfg.root).resolve()), "size": cfg.image_size, "stamp": stamp}


def load(cfg: Any) -> ImageSet:
    from torchvision.datasets import CIFAR10

    def split(train: bool) -> Split:
        try:
            ds = CIFAR10(cfg.root, train=train, download=False)
        except RuntimeError as err:
            raise DataError(_offline_message(cfg.root, err)) from err
        x = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
        return Split(resize_uint8(x, cfg.image_size), torch.tensor(ds.targets, dtype=torch.long))

    return ImageSet(train=split(True), test=split(False), classes=list(CLASSES))
