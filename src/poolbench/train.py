"""`python train.py …`: the Hydra entry point. Heavy imports wait until a job runs, so --help
and config errors answer fast."""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

CONF_DIR = str(Path(__file__).resolve().parents[2] / "conf")


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    from poolbench.experiment import train

    return train(cfg)


if __name__ == "__main__":
    main()
