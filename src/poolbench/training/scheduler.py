"""The learning-rate schedule: the `scheduler` config group.

conf/scheduler/<name>.yaml names a torch scheduler class (`_target_`, `_partial_: true`) and its
keywords, as conf/pool/ does for pools; poolbench offers what the class takes of the run's
length and peak rate (`T_max`, `total_steps`, `total_iters`, `max_lr`), the yaml's own keywords
winning. `interval` (step, the default, or epoch) says how often Lightning steps it; a node
without `_target_` (scheduler=none) keeps the optimizer's rate constant.
"""

from __future__ import annotations

from typing import Any

from torch.optim import Optimizer

from poolbench.models.factory import accepted


def make_scheduler(
    node: dict[str, Any], optimizer: Optimizer, steps: int, epochs: int
) -> dict[str, Any] | None:
    """Lightning's lr_scheduler dict for `node`, or None for a constant rate. `steps` is the
    run's optimizer steps, `epochs` its epochs: the run's length in the interval's units."""
    from hydra.utils import get_class, instantiate

    node = dict(node)
    interval = node.pop("interval", "step")
    if interval not in ("step", "epoch"):
        raise ValueError(f"scheduler.interval={interval} is not step or epoch; choose one")
    if not node.get("_target_"):
        return None
    total = steps if interval == "step" else epochs
    offered = {
        "T_max": total,
        "total_steps": total,
        "total_iters": total,
        "max_lr": [g["lr"] for g in optimizer.param_groups],
    }
    own = {k: v for k, v in node.items() if not k.startswith("_")}
    extra = {
        k: v for k, v in accepted(get_class(node["_target_"]), offered).items() if k not in own
    }
    scheduler = instantiate({**node, "_partial_": True})(optimizer, **extra)
    return {"scheduler": scheduler, "interval": interval}


def cycles_momentum(node: Any) -> bool:
    """Whether the schedule changes the optimizer's momentum (betas) every step, as OneCycleLR
    does by default: a captured CUDA graph would fix them (fast_path)."""
    from hydra.utils import get_class

    target = node.get("_target_")
    if not target:
        return False
    import inspect

    param = inspect.signature(get_class(target)).parameters.get("cycle_momentum")
    return param is not None and node.get("cycle_momentum", param.default) is True
