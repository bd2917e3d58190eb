"""Layers from `_target_` configs: conf/pool/<name>.yaml and conf/head/<name>.yaml name any
callable and its keyword arguments; poolbench offers what it knows about the place the layer
goes (`channels`, `num_classes`, …) and passes the keywords the callable accepts. So
`_target_: torch.nn.MaxPool2d` works as it is, and a user's own class needs no registration."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from poolbench.errors import UserError

LayerSpec = Mapping[str, Any] | Callable[..., nn.Module]


def accepted(target: Callable[..., Any], offered: Mapping[str, Any]) -> dict[str, Any]:
    """The offered keywords the callable names among its parameters. A catch-all **kwargs
    gets none of them: nn.Module's own __init__ (a class without one) and nn.Identity take
    **kwargs and would swallow them silently."""
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):  # some builtins have no signature: offer nothing
        return {}
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {k: v for k, v in offered.items() if k in params and params[k].kind in named}


def make_layer(group: str, spec: LayerSpec, **offered: Any) -> nn.Module:
    """Build the `group` layer (`pool`, `head`) from its config node (or a callable): the
    node's own keywords win over the offered ones."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    if callable(spec):
        factory, own = spec, {}
    else:
        if "_target_" not in spec:
            raise UserError(
                f"{group} has no _target_: conf/{group}/<name>.yaml must name the class to "
                f"build, e.g. _target_: torch.nn.MaxPool2d (keys given: {', '.join(spec)})"
            )
        try:  # a partial: nested _target_ nodes are built, the call waits for our keywords
            factory = instantiate({"_convert_": "all", **spec, "_partial_": True})
        except InstantiationException as err:
            line = _first_line(err).split(", set env var HYDRA_FULL_ERROR")[0]
            if line.startswith("Error locating target"):  # a user's class from their package
                line += ": is its package importable here (pip install it, or on PYTHONPATH)?"
            raise UserError(f"{group}: {line}") from None
        own = dict(getattr(factory, "keywords", {}))
    func = getattr(factory, "func", factory)
    kwargs = {k: v for k, v in accepted(func, offered).items() if k not in own}
    try:
        layer = factory(**kwargs)
    except (TypeError, ValueError) as err:  # a keyword it lacks, a value it refuses
        name = getattr(func, "__qualname__", repr(func))
        raise UserError(f"{group}: {name}({_args(own, kwargs)}) failed: {err}") from None
    if not isinstance(layer, nn.Module):
        raise UserError(f"{group}: {spec!r} built a {type(layer).__name__}, not a torch module")
    return layer


def _args(own: Mapping[str, Any], offered: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in {**offered, **own}.items())


def _first_line(err: Exception) -> str:
    return next((s.strip() for s in str(err).splitlines() if s.strip()), type(err).__name__)
