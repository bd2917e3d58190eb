"""The textbook path, kept as the reference: a per-image PIL dataset + transforms + DataLoader."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from poolbench.data.tensors import Split


class PILImages(Dataset):
    """Like torchvision's CIFAR10: HWC uint8 arrays, one PIL image per item, then transforms."""

    def __init__(self, split: Split, transform: Callable[[Any], Tensor]) -> None:
        self.images = split.x.permute(0, 2, 3, 1).numpy()
        self.labels = split.y.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i])), self.labels[i]


def make_transform(
    size: int, augment: bool, mean: Sequence[float], std: Sequence[float], padding: int = 4
) -> Callable[[Any], Tensor]:
    from torchvision import transforms as T

    steps = [T.RandomCrop(size, padding=padding), T.RandomHorizontalFlip()] if augment else []
    return T.Compose([*steps, T.ToTensor(), T.Normalize(mean, std)])


def make_loader(
    split: Split,
    batch_size: int,
    shuffle: bool,
    augment: bool,
    num_workers: int,
    mean: Sequence[float],
    std: Sequence[float],
    padding: int = 4,
) -> DataLoader:
    transform = make_transform(split.x.shape[-1], augment, mean, std, padding)
    return DataLoader(
        PILImages(split, transform),
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
    )
