"""A command line made into a config, or into one line saying what is wrong with it, for every
entry point: `run_app` (train.py, eval.py) and `compose` (scripts, tests, benchmark).

Hydra reports a typo in an option (`head=globl`) or an unknown key (`optimizer.lrr=0.1`) in a
dozen lines and exits 1. Here those become one `error:` line that names the value, the nearest
valid choices and the list, exit status 2, before any run folder exists. Only Hydra and
OmegaConf are imported here: the answer is fast.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig

from poolbench.cli.explain import explain, option_message
from poolbench.cli.parse import (
    choice_values,
    command_line,
    compose_raw,
    first_job,
    parse_overrides,
)
from poolbench.config import config_groups, group_options, searchpath
from poolbench.errors import OverrideError, fail


def check_group_options(overrides: list[str]) -> None:
    """Every option named for one of poolbench's groups exists, sweep choices included: cheap
    (a folder listing), and before a sweep has made its folder or run a job."""
    for o in parse_overrides(overrides):
        key = o.key_or_group
        if o.is_delete() or o.package is not None or key not in config_groups(overrides):
            continue
        options = group_options(key, overrides)
        for value in choice_values(o):
            if value not in options:
                raise OverrideError(option_message(key, value, options))


def compose(
    config_name: str, overrides: list[str], return_hydra_config: bool = False
) -> DictConfig:
    """The config as `python train.py <overrides>` would compose it (with the `hydra` node, e.g.
    hydra.runtime.choices, if asked). An override Hydra cannot apply raises OverrideError, with
    the one-line message the entry points print."""
    from hydra.errors import ConfigCompositionException, OverrideParseException

    check_group_options(overrides)
    try:
        return compose_raw(config_name, overrides, return_hydra_config)
    except (ConfigCompositionException, OverrideParseException) as err:
        raise OverrideError(explain(err, config_name, overrides)) from None


def run_app(app: Callable[[], Any], config_name: str) -> Any:
    """Call a @hydra.main function; bad overrides end in one `error:` line and exit status 2.

    Hydra composes before the task runs and prints its own error (exit 1). Here, first: a
    cheap check of group options (sweep choices too), then a compose of the command line (of
    a sweep's first job), whose composition errors become one line, before Hydra starts.
    HYDRA_FULL_ERROR=1 keeps Hydra's own report."""
    from hydra.errors import ConfigCompositionException, OverrideParseException

    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        return app()
    parsed = command_line(sys.argv[1:])
    if parsed is not None:
        overrides, name, multirun, conf_only = parsed
        config_name = name or config_name
        try:
            if conf_only:
                # hydra.searchpath folders (a user's own pools and heads) are read here too, so
                # their options get "did you mean" as well; one not found from here leaves the
                # options to the compose below, which names them as Hydra finds them.
                if None not in searchpath(overrides):
                    check_group_options(overrides)
                job = first_job(parse_overrides(overrides)) if multirun else overrides
                try:
                    compose_raw(config_name, job)
                except (ConfigCompositionException, OverrideParseException) as err:
                    raise OverrideError(explain(err, config_name, overrides)) from None
                except Exception:
                    pass  # not a composition error: Hydra reports it as usual
        except OverrideError as err:
            fail(str(err))
    return app()
