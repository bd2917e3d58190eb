"""`python train.py …`: the Hydra entry point. Heavy imports wait until a job runs, so --help
and config errors answer fast."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from poolbench.config import CONF_DIR


def answer_user_errors(task: Callable[[DictConfig], Any], cfg: DictConfig) -> Any:
    """Bad input gets one line and exit status 2, not a traceback. In a sweep the error is
    raised on, so Hydra records the job as failed and goes on with the others."""
    from poolbench.errors import UserError

    try:
        return task(cfg)
    except UserError as err:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    from poolbench.experiment import train

    return answer_user_errors(train, cfg)


if __name__ == "__main__":
    main()
