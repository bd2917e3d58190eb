"""A test-time augmentation poolbench has never heard of: score the mirror image alone."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor


class FlipOnly:
    """The logits of each image's mirror image, not of the image itself."""

    def __call__(self, forward: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
        return forward(x.flip(-1))
