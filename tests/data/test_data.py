import os
import stat
from pathlib import Path

import pytest
import torch
from conftest import make_cfg, make_folder, write_image
from omegaconf import OmegaConf

from poolbench.data import cifar10, digits, folder
from poolbench.data.loader import EpochSampler, ImageStore, InMemoryLoader, Normalizer
from poolbench.data.tensors import ImageSet, Split, cache_path, load_or_build
from poolbench.errors import DataError


def test_sampler_reshuffles_each_epoch_and_covers_everything() -> None:
    s = EpochSampler(1000, 128, shuffle=True, seed=3)
    first = torch.cat(list(s))
    s.set_epoch(1)
    second = torch.cat(list(s))
    assert sorted(first.tolist()) == sorted(second.tolist()) == list(range(1000))
    assert not torch.equal(first, second)
    assert len(s) == 8
    s.set_epoch(0)
    assert torch.equal(torch.cat(list(s)), first)  # seeded: the same order again


def test_sampler_shards_across_ranks() -> None:
    train = [torch.cat(list(EpochSampler(1001, 64, True, 0, r, 2))) for r in range(2)]
    assert len(train[0]) == len(train[1]) == 500  # equal shards: no rank waits on another
    assert not set(train[0].tolist()) & set(train[1].tolist())
    evals = [torch.cat(list(EpochSampler(1001, 64, False, 0, r, 2))) for r in range(2)]
    assert sorted(torch.cat(evals).tolist()) == list(range(1001))  # each sample exactly once


def test_crop_flip_gives_shifted_mirrored_windows() -> None:
    x = torch.randint(1, 255, (32, 3, 8, 7), dtype=torch.uint8)
    store = ImageStore(x, pad=2, mirror=True)

    def augment(seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return store.gather(store.starts(torch.arange(32), g)).permute(0, 3, 1, 2)

    out = augment(0)
    assert out.shape == x.shape and out.dtype == torch.uint8
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    flipped, shifts = 0, set()
    for i in range(len(x)):
        windows = {
            (dy, dx): padded[i, :, dy : dy + 8, dx : dx + 7] for dy in range(5) for dx in range(5)
        }
        plain = [k for k, w in windows.items() if torch.equal(out[i], w)]
        mirrored = [k for k, w in windows.items() if torch.equal(out[i], w.flip(2))]
        assert plain or mirrored, i
        flipped += bool(mirrored) and not plain
        shifts.update(plain or mirrored)
    assert 4 < flipped < 28  # about half are mirrored
    assert len(shifts) > 10  # and shifts vary
    # The same generator seed gives the same augmentation (exact resume relies on it).
    assert torch.equal(out, augment(0)) and not torch.equal(out, augment(1))
    plain_store = ImageStore(x)  # no padding, no mirror: the images themselves
    assert torch.equal(
        plain_store.gather(plain_store.starts(torch.tensor([5, 0]))).permute(0, 3, 1, 2), x[[5, 0]]
    )


def test_loader_normalizes_to_channels_last_like_the_reference() -> None:
    x = torch.randint(0, 256, (10, 3, 6, 6), dtype=torch.uint8)
    y = torch.arange(10)
    mean, std = [0.4, 0.5, 0.6], [0.2, 0.25, 0.3]
    loader = InMemoryLoader(
        ImageStore(x), y, EpochSampler(10, 4, shuffle=False), Normalizer(mean, std, (6, 6))
    )
    batches = list(loader)
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    xb, yb = batches[1]
    assert xb.is_contiguous(memory_format=torch.channels_last) and xb.dtype == torch.float32
    expected = (x[4:8].float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(
        std
    ).view(1, 3, 1, 1)
    torch.testing.assert_close(xb, expected)
    assert yb.tolist() == [4, 5, 6, 7]


def test_cache_is_keyed_and_atomic(tmp_path: Path) -> None:
    calls = []

    def build() -> ImageSet:
        calls.append(1)
        s = Split(torch.zeros(4, 3, 8, 8, dtype=torch.uint8), torch.arange(4))
        return ImageSet(train=s, test=s, classes=["a", "b", "c", "d"])

    p = cache_path(tmp_path, "x", {"size": 8})
    assert load_or_build(p, build).classes == ["a", "b", "c", "d"]
    assert load_or_build(p, build).stats is not None
    assert len(calls) == 1
    assert cache_path(tmp_path, "x", {"size": 16}) != p
    assert [f.name for f in tmp_path.iterdir()] == [p.name]  # no temp files left behind
    # readable as any file written under the umask (022: rw-r--r--), not mkstemp's rw-------
    old_mask = os.umask(0o022)
    try:
        p.unlink()
        load_or_build(p, build)
    finally:
        os.umask(old_mask)
    assert stat.S_IMODE(p.stat().st_mode) == 0o644


def folder_cfg(root: Path, size: int = 32):  # noqa: ANN201
    return OmegaConf.create({"root": str(root), "image_size": size})


def test_folder_reads_any_mode_and_size(tmp_path: Path) -> None:
    images = folder.load(folder_cfg(make_folder(tmp_path / "imgs"), 24))
    assert images.classes == ["cat", "dog"]
    assert images.train.x.shape == (8, 3, 24, 24) and images.train.x.dtype == torch.uint8
    assert images.train.y.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert images.val is None
    # make_folder paints every cat 40 and every dog 190, per class in modes RGB, L, RGBA, P
    # (files 0-3, read in that order): each decodes to that grey. JPEG may move a flat image a
    # level or two; P is dithered to the web palette, so only its channel means stay put.
    for split in (images.train, images.test):
        for i, (x, y) in enumerate(zip(split.x, split.y, strict=True)):
            expected = 40 + 150 * int(y)
            means = x.float().mean(dim=(1, 2))
            assert (means - expected).abs().max() <= 2, (i, means)
            if i % 4 != 3:  # not the palette image
                assert (x.int() - expected).abs().max() <= 3, (i, x.min(), x.max())


def test_digits_are_real_and_offline() -> None:
    images = digits.load(OmegaConf.create({"image_size": 32}))
    assert len(images.train) + len(images.test) == 1797
    assert images.train.x.shape[1:] == (3, 32, 32)
    assert sorted(images.train.y.unique().tolist()) == list(range(10))


def test_cifar10_offline_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from torchvision.datasets import CIFAR10

    # An address that refuses at once: the same path as a machine without internet.
    monkeypatch.setattr(CIFAR10, "url", "http://127.0.0.1:9/cifar-10-python.tar.gz")
    with pytest.raises(DataError) as err:
        cifar10.prepare(OmegaConf.create({"root": str(tmp_path), "image_size": 32}))
    msg = str(err.value)
    for hint in ("cifar-10-python.tar.gz", "data=folder data.root=", "data=digits"):
        assert hint in msg


def test_folder_cache_follows_added_removed_and_renamed_images(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from poolbench.data.datamodule import ImageDataModule

    root = make_folder(tmp_path / "imgs")  # 8 train images (cat, dog), 8 test
    cfg = make_cfg(["data=folder", f"data.root={root}"], tmp_path / "run", cache=tmp_path / "c")

    def load() -> tuple[int, Path]:
        dm = ImageDataModule(cfg.data)
        dm.prepare_data()
        dm.setup("fit")
        return len(dm.train) + len(dm.val), dm._cache()

    count, first = load()
    assert count == 8 and first.is_file()
    with monkeypatch.context() as m:  # unchanged folders: a cache hit, nothing decoded
        m.setattr(folder, "load", lambda cfg: pytest.fail("decoded again"))
        assert load() == (8, first)
    write_image(root / "train" / "cat" / "new.png", "RGB", (32, 32), 90)
    count, added = load()
    assert count == 9 and added != first
    (root / "train" / "dog" / "0.jpg").unlink()
    count, removed = load()
    assert count == 8 and removed not in (first, added)
    (root / "train" / "cat" / "1.jpg").rename(root / "train" / "cat" / "renamed.jpg")
    count, renamed = load()
    assert count == 8 and renamed not in (first, added, removed)
    # An image rewritten in place leaves its folder's timestamp alone: the docs say to delete
    # the cache file then (docs/configuration.md, Data sources).
    write_image(root / "train" / "cat" / "renamed.jpg", "RGB", (32, 32), 200)
    assert load()[1] == renamed
    assert len(list((tmp_path / "c").glob("folder-*.pt"))) == 4
