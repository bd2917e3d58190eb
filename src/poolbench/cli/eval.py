"""`python eval.py ckpt_path=…`: test a checkpoint on the configured data, print and record it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, open_dict

from poolbench.cli.overrides import run_app
from poolbench.cli.train import answer_user_errors
from poolbench.config import CONF_DIR

log = logging.getLogger(__name__)


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    from poolbench.review.trained import checkpoint_choices, load_trained
    from poolbench.sweeps.runtime import hydra_config, job_choices

    choices = job_choices()
    run = load_trained(cfg, list(hydra_config().overrides.task))  # bad input: one line
    if run.data_choice:
        choices["data"] = run.data_choice

    from poolbench.training.job import build_trainer
    from poolbench.training.loggers import build_loggers, finish_wandb
    from poolbench.training.record import wandb_run
    from poolbench.training.results import write_results

    hp = run.checkpoint["hyper_parameters"]
    run_dir = Path(cfg.paths.output_dir)
    # nothing to checkpoint: no training, and no interrupted.ckpt beside a failed test
    eval_cfg = cfg.copy()
    with open_dict(eval_cfg):  # a callback the command deleted (~callbacks.x) may be missing
        for name in ("checkpoint", "lr_monitor", "save_on_interrupt"):
            eval_cfg.callbacks[name] = None
    record = {
        "choices": {**choices, **checkpoint_choices(hp)},
        "cost": run.module.cost(),
        "ckpt_path": str(Path(cfg.ckpt_path).resolve()),
        "precision_why": run.precision_why,  # beside `precision`, what the trainer ran at
    }
    status, loggers = "failed", []
    try:
        loggers = build_loggers(eval_cfg, f"eval:{Path(cfg.ckpt_path).name}", None, ["eval"])
        trainer = build_trainer(eval_cfg, loggers, run_dir)
        # Lightning restores the checkpoint itself, into a module of the checkpoint's precision
        module = type(run.module)(**hp)
        tested = trainer.test(
            module, datamodule=run.datamodule, ckpt_path=cfg.ckpt_path, weights_only=True
        )
        metrics = tested[0] if tested else {}  # none: limit_test_batches=0
        record["precision"] = trainer.precision
        status = "ok"
    except BaseException as err:
        write_results(run_dir, status="failed", error=f"{type(err).__name__}: {err}", **record)
        raise
    finally:
        finish_wandb(wandb_run(loggers), 0 if status == "ok" else 1, status)
    write_results(run_dir, status=status, metrics=metrics, **record)
    for key in ("test/acc", "test/loss"):
        if key in metrics:
            print(f"{key} {metrics[key]:.6f}")
    return metrics


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="eval")
def hydra_main(cfg: DictConfig) -> None:
    answer_user_errors(evaluate, cfg)


def main() -> None:
    run_app(hydra_main, "eval")


if __name__ == "__main__":
    main()
