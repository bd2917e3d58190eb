"""Test-time augmentation (TTA): the views of each validation and test image whose logits are
averaged. The `tta` config group picks one: conf/tta/<name>.yaml names the class with
`_target_` and its keywords, so a user's own TTA is one class like these and one yaml, found on
hydra.searchpath as a pool or head is. A TTA is a callable (forward, x) -> logits, where
`forward` is the net and x a batch of normalized images (N, C, H, W)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

from poolbench.errors import UserError

Forward = Callable[[Tensor], Tensor]
TTA = Callable[[Forward, Tensor], Tensor]


def views_logits(forward: Forward, views: Sequence[Tensor]) -> Tensor:
    """The logits of every view, stacked: (views, N, classes)."""
    # One forward for all views: on a GPU these small nets are bound by kernel launches.
    return forward(torch.cat(list(views))).unflatten(0, (len(views), -1))


class OneView:
    """No TTA: the image as it is (the lecture's way)."""

    def __call__(self, forward: Forward, x: Tensor) -> Tensor:
        return forward(x)


class Flip:
    """The mean logits of the image and its mirror image."""

    def __call__(self, forward: Forward, x: Tensor) -> Tensor:
        return views_logits(forward, [x, x.flip(-1)]).mean(0)


class FlipTranslate:
    """Six views (airbench): the mirror pair, and the pairs moved `shift` px down-right and up-
    left (reflect padding). The net was trained on mirrored and shifted images, so averaging
    its logits over such views beats any single view (docs/performance.md)."""

    def __init__(self, shift: int = 1) -> None:
        if isinstance(shift, bool) or not isinstance(shift, int) or shift < 1:
            raise ValueError(f"shift={shift!r} must be a positive whole number of pixels")
        self.shift = shift

    def __call__(self, forward: Forward, x: Tensor) -> Tensor:
        s, (h, w) = self.shift, x.shape[-2:]
        padded = F.pad(x, (s, s, s, s), mode="reflect")
        shifted = [padded[..., :h, :w], padded[..., 2 * s :, 2 * s :]]  # down-right, up-left
        logits = views_logits(forward, [x, x.flip(-1), *shifted, *(v.flip(-1) for v in shifted)])
        return (logits[:2].mean(0) + logits[2:].mean(0)) / 2  # the unshifted pair weighs half


def make_tta(node: dict[str, Any]) -> TTA:
    """The TTA a `tta` config node names, or one UserError line saying why it cannot be built
    (a class not importable here, a keyword it refuses)."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    if "_target_" not in node:
        raise UserError(
            "tta has no _target_: conf/tta/<name>.yaml must name the class to build, e.g. "
            f"_target_: poolbench.training.tta.Flip (keys given: {', '.join(node)})"
        )
    try:
        tta = instantiate(node)
    except InstantiationException as err:
        # Hydra's first line, without its HYDRA_FULL_ERROR advice; and what the class said
        line = str(err).strip().splitlines()[0].split(", set env var HYDRA_FULL_ERROR")[0]
        if line.startswith("Error locating target"):  # a user's class from their package
            line += ": is its package importable here (pip install it, or on PYTHONPATH)?"
        elif err.__cause__ is not None:
            line += f" {err.__cause__}"
        raise UserError(f"tta: {line}") from None
    if not callable(tta):
        raise UserError(f"tta: {node['_target_']} built a {type(tta).__name__}, not a callable")
    return tta
