"""Cheap checks of a composed config, run before any data is touched or any file written."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from poolbench.errors import ConfigError

PADDING_MODES = ("zeros", "circular", "reflect", "replicate")  # model.padding_mode: Conv2d's
# trainer.precision: poolbench's auto, and what lightning.Trainer takes
PRECISIONS = {"auto", "64-true", "32-true", "16-true", "bf16-true", "16-mixed", "bf16-mixed"}
PRECISIONS |= {"transformer-engine", "transformer-engine-float16", "64", "32", "16", "bf16"}


def _positive_int(key: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{key}={value!r} must be a positive whole number, e.g. {key}=1")


def _positive_number(key: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(f"{key}={value!r} must be a number above 0, e.g. {key}=0.001")


def validate(cfg: DictConfig) -> None:
    for key in ("model.channels", "model.hidden"):
        values = OmegaConf.select(cfg, key)
        if not OmegaConf.is_list(values) or (key == "model.channels" and len(values) == 0):
            raise ConfigError(
                f"{key}={values!r} must be a list of positive whole numbers, e.g. {key}=[16,32]"
            )
        for v in values:
            _positive_int(key, v)
    for key in (
        "model.kernel_size",
        "data.batch_size",
        "fast.stack",
        "data.image_size",
        "trainer.max_epochs",
        "pool.kernel_size",
        "pool.stride",
    ):
        if OmegaConf.select(cfg, key) is not None:
            _positive_int(key, OmegaConf.select(cfg, key))
    _positive_number("optimizer.lr", cfg.optimizer.lr)
    from poolbench.models.whitening import INITS

    init = OmegaConf.select(cfg, "model.init", default="default")
    if init not in INITS:
        choices = " or ".join(INITS)
        raise ConfigError(f"model.init={init!r} is unknown; choose model.init={choices}")
    padding = OmegaConf.select(cfg, "model.padding_mode", default="zeros")
    if padding not in PADDING_MODES:
        raise ConfigError(
            f"model.padding_mode={padding!r} is unknown; choose model.padding_mode="
            + " or ".join(PADDING_MODES)
        )
    interval = OmegaConf.select(cfg, "scheduler.interval", default="step")
    if interval not in ("step", "epoch"):
        raise ConfigError(
            f"scheduler.interval={interval!r} is unknown; choose scheduler.interval=step or epoch"
        )
    vf = cfg.data.val_fraction
    if isinstance(vf, bool) or not isinstance(vf, int | float) or not 0 < vf < 1:
        raise ConfigError(
            f"data.val_fraction={vf!r} must lie strictly between 0 and 1, "
            "e.g. data.val_fraction=0.1"
        )
    check_shift_invariance(cfg)
    enabled = OmegaConf.select(cfg, "fast.enabled", default="auto")
    if enabled not in ("auto", True, False):
        raise ConfigError(f"fast.enabled={enabled!r} is unknown; choose auto, true or false")
    ebs = OmegaConf.select(cfg, "data.eval_batch_size", default="auto")
    if ebs != "auto":
        _positive_int("data.eval_batch_size", ebs)
    check_trainer(cfg)
    validate_shapes(cfg)


def check_shift_invariance(cfg: DictConfig) -> None:
    """callbacks.shift_invariance's keys, before the run folder exists (the callback is built
    with the trainer)."""
    from poolbench.training.shift_invariance import MODES

    node = OmegaConf.select(cfg, "callbacks.shift_invariance")
    if not node:  # ~callbacks.shift_invariance or null: not measured
        return
    key = "callbacks.shift_invariance"
    if node.get("mode", "circular") not in MODES:
        raise ConfigError(
            f"{key}.mode={node.mode!r} is unknown; choose {key}.mode=" + " or ".join(MODES)
        )
    _positive_int(f"{key}.max_shift", node.get("max_shift", 8))
    if node.get("images", "auto") != "auto":
        _positive_int(f"{key}.images", node.images)


def check_trainer(cfg: DictConfig) -> None:
    # Lightning would say so only once the run's loggers and folder exist, in a Hydra error block
    precision = OmegaConf.select(cfg, "trainer.precision", default="auto")
    if precision is not None and str(precision) not in PRECISIONS:  # null: Lightning's own
        raise ConfigError(
            f"trainer.precision={precision!r} is not a precision; choose auto, 32-true, "
            "bf16-mixed, 16-mixed, bf16-true, 16-true or 64-true"
        )
    accelerator = OmegaConf.select(cfg, "trainer.accelerator", default="auto")
    if accelerator in ("gpu", "cuda"):
        # Lightning's own tests: CUDA through NVML (no driver set-up, so forking stays safe);
        # "gpu" is Apple's MPS too
        from lightning.pytorch.accelerators import CUDAAccelerator, MPSAccelerator

        there = CUDAAccelerator.is_available() or (
            accelerator == "gpu" and MPSAccelerator.is_available()
        )
        if not there:
            raise ConfigError(
                f"trainer.accelerator={accelerator} (trainer=gpu, ddp) needs a GPU, and "
                "torch sees none here; use trainer=cpu, or trainer=default to take what there is"
            )


def validate_shapes(cfg: DictConfig) -> None:
    """Build the network once on a zero image, before any data is read: a pool or head that
    cannot be built, or a map that vanishes, fails here, naming the layer (models/shapes.py)."""
    import torch

    from poolbench.models.convnet import build_convnet
    from poolbench.sweeps.packing import GLOBAL_RNG

    node = OmegaConf.to_container  # resolved plain dicts, as the module gets them
    # Its random init draws from the global generator: put back after, and, with jobs packed
    # in one process, not while another job draws its weights.
    with GLOBAL_RNG, torch.random.fork_rng():
        build_convnet(
            node(cfg.model, resolve=True),
            node(cfg.head, resolve=True),
            node(cfg.pool, resolve=True),
            num_classes=10,  # widths before the classifier do not depend on the class count
            image_size=cfg.data.image_size,
        )
