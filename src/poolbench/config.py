"""Where the configs live, and composing them outside a Hydra app (scripts, tests, benchmark)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

CONF_DIR = str(Path(__file__).resolve().parents[2] / "conf")


def compose(config_name: str, overrides: list[str]) -> DictConfig:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return hydra_compose(config_name, overrides=overrides)
