"""`python train.py …`: the Hydra entry point. Heavy imports wait until a job runs, so --help
and config errors answer fast."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from poolbench.cli.overrides import run_app
from poolbench.config import CONF_DIR
from poolbench.sweeps.runtime import hydra_config, is_multirun


def discard_hydra_only_folder(task_name: str | None) -> None:
    """Bad input stopped a single run: remove the folder Hydra made for it, if it holds nothing
    but Hydra's own files (.hydra/ and the job's log), and outputs/<task_name>/ if left empty."""
    import shutil

    hc = hydra_config()
    run_dir = Path(hc.runtime.output_dir)
    hydra_files = {str(hc.output_subdir), f"{hc.job.name}.log"}
    if run_dir.is_dir() and all(p.name in hydra_files for p in run_dir.iterdir()):
        shutil.rmtree(run_dir, ignore_errors=True)
        for parent in (run_dir.parent, run_dir.parent.parent):  # outputs/<task_name>/
            if parent.name not in (task_name, "outputs"):
                break
            with suppress(OSError):  # only if empty
                parent.rmdir()


def answer_user_errors(task: Callable[[DictConfig], Any], cfg: DictConfig) -> Any:
    """Bad input gets one line and exit status 2, not a traceback, and leaves no run folder. In
    a sweep the error is raised on, so Hydra records the job as failed and goes on."""
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError

    from poolbench.errors import UserError, fail

    try:
        return task(cfg)
    except UserError as err:
        if is_multirun():
            raise
        discard_hydra_only_folder(cfg.get("task_name"))
        fail(str(err))
    except (ConfigAttributeError, ConfigKeyError) as err:
        key = deleted_key(getattr(err, "full_key", None) or "")
        if key is None or is_multirun():
            raise
        discard_hydra_only_folder(cfg.get("task_name"))
        fail(f"~{key}: poolbench reads {key}; give it a value ({key}=…) instead of deleting it")


def deleted_key(missing: str) -> str | None:
    """The `~key` override that removed the key a task went on to read, if one did."""
    for override in hydra_config().overrides.task:
        key = override.removeprefix("~").split("=", 1)[0]
        if override.startswith("~") and (missing == key or missing.startswith(key + ".")):
            return key
    return None


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def hydra_main(cfg: DictConfig) -> float | None:
    from poolbench.training.job import train

    return answer_user_errors(train, cfg)


def main() -> None:
    run_app(hydra_main, "train")


if __name__ == "__main__":
    main()
