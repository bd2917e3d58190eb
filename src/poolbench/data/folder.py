"""Any ImageFolder tree: root/train/<class>/*.jpg, root/test/<class>/…, optional root/val/.

Images of any mode and size are converted to RGB and resized (squashed) to data.image_size.
A file that cannot be decoded stops the build with its path: a silently skipped image would
change the dataset without anyone noticing.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from poolbench.data.tensors import ImageSet, Split
from poolbench.errors import DataError

EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def _root(cfg: Any) -> Path:
    if cfg.root is None:
        raise DataError(
            "data=folder needs data.root=PATH: a folder holding train/<class>/ and "
            "test/<class>/ image folders"
        )
    root = Path(str(cfg.root))
    if not root.is_dir():
        raise DataError(
            f"data.root={cfg.root} is not a folder; point data.root at a folder "
            "holding train/ and test/ class folders"
        )
    for sub in ("train", "test"):
        if not (root / sub).is_dir():
            raise DataError(
                f"data.root={cfg.root} has no {sub}/ folder; data=folder needs "
                f"{root}/train/<class>/*.jpg and {root}/test/<class>/*.jpg"
            )
    return root


def _class_dirs(split_dir: Path) -> list[str]:
    return sorted(
        e.name for e in os.scandir(split_dir) if e.is_dir() and not e.name.startswith(".")
    )


def classes(cfg: Any) -> list[str]:
    names = _class_dirs(_root(cfg) / "train")
    if not names:
        raise DataError(f"{cfg.root}/train has no class folders; expected train/<class>/*.jpg")
    return names


def _files(split_dir: Path, names: list[str]) -> tuple[list[str], list[int]]:
    found = set(_class_dirs(split_dir))
    if missing := [c for c in names if c not in found]:
        raise DataError(
            f"{split_dir} has no folder for class(es) {', '.join(missing)} that "
            "train/ has; every split needs the same class folders"
        )
    if extra := sorted(found - set(names)):
        raise DataError(
            f"{split_dir} has class folder(s) {', '.join(extra)} that train/ lacks; "
            "every split needs the same class folders"
        )
    paths, labels = [], []
    for label, name in enumerate(names):
        files = sorted(
            e.path
            for e in os.scandir(split_dir / name)
            if e.is_file() and e.name.lower().endswith(EXTENSIONS)
        )
        if not files:
            raise DataError(
                f"class folder {split_dir / name} holds no images "
                f"({', '.join(EXTENSIONS)}); add images or remove the folder"
            )
        paths += files
        labels += [label] * len(files)
    return paths, labels


def _decode(job: tuple[str, int]) -> np.ndarray:
    from PIL import Image

    path, size = job
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if im.size != (size, size):
                im = im.resize((size, size), Image.Resampling.BILINEAR)
            return np.asarray(im, dtype=np.uint8)
    except Exception as err:
        raise DataError(f"cannot decode image {path}: {err}; fix or delete the file") from None


def decode_files(paths: list[str], size: int, workers: int | None = None) -> torch.Tensor:
    jobs = [(p, size) for p in paths]
    workers = workers or min(8, os.cpu_count() or 1)
    if workers > 1 and len(jobs) > 2000:
        with ProcessPoolExecutor(workers) as pool:
            arrays = list(pool.map(_decode, jobs, chunksize=1024))
    else:
        arrays = [_decode(j) for j in jobs]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def cache_key(cfg: Any) -> dict[str, Any]:
    # Folder mtimes change when files are added, removed or renamed: cheap enough to check
    # on every start, unlike hashing every image.
    root = _root(cfg)
    stamps = {}
    for split in ("train", "val", "test"):
        d = root / split
        if d.is_dir():
            dirs = (e for e in os.scandir(d) if e.is_dir())  # sorted: scandir's order varies
            stamps[split] = sorted((e.name, e.stat().st_mtime_ns) for e in dirs)
    return {"root": str(root.resolve()), "size": cfg.image_size, "stamps": stamps}


def load(cfg: Any) -> ImageSet:
    root, names = _root(cfg), classes(cfg)

    def split(sub: str) -> Split:
        paths, labels = _files(root / sub, names)
        return Split(decode_files(paths, cfg.image_size), torch.tensor(labels, dtype=torch.long))

    val = split("val") if (root / "val").is_dir() else None
    return ImageSet(train=split("train"), test=split("test"), val=val, classes=names)


def prepare(cfg: Any) -> None:
    classes(cfg)  # fail early on a wrong root
