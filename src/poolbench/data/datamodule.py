"""One LightningDataModule for every source: decode once, cache, then serve from memory."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import lightning as L
import torch
from torch import Tensor

from poolbench.data.loader import EpochSampler, ImageStore, InMemoryLoader, Normalizer
from poolbench.data.tensors import ImageSet, Split, cache_path, load_or_build
from poolbench.errors import DataError


class ImageSource(Protocol):
    """What `data.reader` (a `_target_` in conf/data/<name>.yaml) builds: the four calls the data
    module makes of a source. Each takes the data config node."""

    def classes(self, cfg: Any) -> list[str]: ...  # cheap: the model needs the count first
    def prepare(self, cfg: Any) -> None: ...  # download or check files; raise DataError
    def cache_key(self, cfg: Any) -> dict[str, Any]: ...  # what the decoded cache depends on
    def load(self, cfg: Any) -> ImageSet: ...  # decode everything once, as uint8 tensors


class ModuleSource:
    """A source whose four calls are a module's functions: poolbench's own (data/cifar10.py,
    folder.py, digits.py, synthetic.py), named in conf/data/<name>.yaml as
    `reader: {_target_: poolbench.data.datamodule.ModuleSource, module: poolbench.data.<name>}`.
    A source of your own may be any class with the four calls instead."""

    def __init__(self, module: str) -> None:
        import importlib

        self.module = importlib.import_module(module)

    def classes(self, cfg: Any) -> list[str]:
        return self.module.classes(cfg)

    def prepare(self, cfg: Any) -> None:
        self.module.prepare(cfg)

    def cache_key(self, cfg: Any) -> dict[str, Any]:
        return self.module.cache_key(cfg)

    def load(self, cfg: Any) -> ImageSet:
        return self.module.load(cfg)


def make_source(cfg: Any) -> ImageSource:
    """The source data.reader names (a class of poolbench's or of the user's own package). The
    node's other keys go to the class where its __init__ names them, as a pool's do: a data
    option built on cifar10's keys (`defaults: [cifar10]`) inherits its `module`, which only
    ModuleSource takes."""
    from hydra.utils import get_class

    from poolbench.models.factory import accepted

    node = cfg.get("reader")
    if not node or not node.get("_target_"):
        raise DataError(f"data={cfg.source} names no reader; give data.reader._target_=CLASS")
    try:
        cls = get_class(node["_target_"])
    except Exception as err:  # noqa: BLE001 - Hydra's locate error, in one line
        first = str(err).strip().splitlines()[0]
        raise DataError(
            f"data.reader: {first}; is its package importable here (pip install it, or on "
            "PYTHONPATH)?"
        ) from None
    return cls(**accepted(cls, {k: v for k, v in node.items() if not k.startswith("_")}))


LOADERS = ("memory", "torchvision")


class ImageDataModule(L.LightningDataModule):
    def __init__(self, cfg: Any, seed: int = 0, device: str | None = None) -> None:
        super().__init__()
        self.device = torch.device(device or "cpu")  # batches' device when no Trainer is attached
        if cfg.loader not in LOADERS:
            raise DataError(f"unknown data.loader={cfg.loader}; choose one of {', '.join(LOADERS)}")
        self.cfg, self.seed = cfg, seed
        self.source = make_source(cfg)
        self.classes: list[str] = self.source.classes(cfg)  # cheap: the model needs it first
        if len(self.classes) < 2:  # caught here, not by a metric after a whole training run
            folder = cfg.source == "folder"
            where = f"data.root={cfg.root}" if folder else f"data={cfg.source}"
            fix = "one folder per class under train/" if folder else "data.num_classes=2 or more"
            found = f" ({', '.join(self.classes)})" if self.classes else ""
            raise DataError(
                f"{where} has {len(self.classes)} class{found}; a classifier needs at least 2: "
                + fix
            )
        self.ready = False
        self.train_stack = 1  # batches per training item; the fast path (fast_path.py) raises it

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def _cache(self) -> Path:
        return cache_path(self.cfg.cache_dir, self.cfg.source, self.source.cache_key(self.cfg))

    def _load(self) -> ImageSet:
        return load_or_build(self._cache(), lambda: self.source.load(self.cfg))

    def prepare_data(self) -> None:
        # Lightning runs this on one process per node: download and decode happen once.
        self.source.prepare(self.cfg)
        if not self._cache().exists():
            self._load()

    def setup(self, stage: str | None = None) -> None:
        if self.ready:
            return
        images = self._load()
        self.mean, self.std = images.stats or images.channel_stats()
        self.test = images.test
        if images.val is not None:
            self.train, self.val = images.train, images.val
        else:  # a seeded split, the same for every run seed, so runs compare on one val set
            g = torch.Generator().manual_seed(self.cfg.split_seed)
            perm = torch.randperm(len(images.train), generator=g)
            n_val = round(len(perm) * self.cfg.val_fraction)
            self.train = images.train.subset(perm[n_val:])
            self.val = images.train.subset(perm[:n_val])
            if not 0 < n_val < len(perm):
                raise DataError(
                    f"data.val_fraction={self.cfg.val_fraction} of {len(perm)} training images "
                    f"leaves {len(perm) - n_val} to train and {n_val} to validate; each needs at "
                    "least one: more images or another data.val_fraction"
                )
        for name, split in (("train", self.train), ("val", self.val), ("test", self.test)):
            if len(split) == 0:
                raise DataError(f"the {name} split of data={self.cfg.source} holds no images")
        self.ready = True  # the full train tensor is not kept: train and val hold their copies

    def _rank(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def _device(self) -> torch.device:
        trainer = self.trainer
        return trainer.strategy.root_device if trainer is not None else self.device

    def _loader(self, split: Split, train: bool) -> Any:
        bs = self.cfg.batch_size if train else self._eval_batch_size()
        augment = train and self.cfg.augment
        if self.cfg.loader == "torchvision":
            from poolbench.data.torchvision_loader import make_loader

            return make_loader(
                split,
                bs,
                train,
                augment,
                self.cfg.num_workers,
                self.mean,
                self.std,
                self.cfg.crop_padding,
            )
        device = self._device()
        store_device = device if self.cfg.store_on_device else torch.device("cpu")
        pad = self.cfg.crop_padding if augment else 0
        store = ImageStore(split.x, pad, mirror=augment, device=store_device)
        rank, world = self._rank()
        return InMemoryLoader(
            store,
            split.y,
            EpochSampler(len(split), bs, train, self.seed, rank, world),
            Normalizer(self.mean, self.std, split.x.shape[-2:], device),
            seed=self.seed,
            channels_last=self.cfg.channels_last,
            device=device,
            stack=self.train_stack if train else 1,
            max_batches=self._train_batch_limit() if train and self.train_stack > 1 else None,
        )

    def _eval_batch_size(self) -> int:
        # Evaluation has no gradient to keep: on a GPU larger batches mean fewer kernel launches.
        size = self.cfg.get("eval_batch_size", "auto")
        if size != "auto":
            return int(size)
        on_gpu = self._device().type == "cuda"
        return max(self.cfg.batch_size, 1024) if on_gpu else self.cfg.batch_size

    def _train_batch_limit(self) -> int | None:
        # Lightning counts items, here stacks: an int limit_train_batches applies to batches.
        limit = self.trainer.limit_train_batches if self.trainer is not None else None
        return limit if isinstance(limit, int) else None

    def train_dataloader(self) -> Any:
        return self._loader(self.train, train=True)

    def val_dataloader(self) -> Any:
        return self._loader(self.val, train=False)

    def test_dataloader(self) -> Any:
        return self._loader(self.test, train=False)

    def normalize(self, x: Tensor) -> Tensor:
        """uint8 NCHW images (a picture's or an embedding's batch) as the model's input."""
        return Normalizer(self.mean, self.std, x.shape[-2:], x.device)(x.permute(0, 2, 3, 1))
