"""The LightningModule: loss, metrics, optimizer and schedule around a ConvNet."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from torch import Tensor
from torch.nn import functional as F
from torchmetrics import ConfusionMatrix, MaxMetric, MeanMetric
from torchmetrics.classification import MulticlassAccuracy
from torchmetrics.wrappers import ClasswiseWrapper

from poolbench.config import upgrade_node
from poolbench.errors import NonFiniteLossError, UserError
from poolbench.models.convnet import build_convnet
from poolbench.models.whitening import whiten_conv
from poolbench.training.fast_path import (
    FastPlan,
    StackedSteps,
    align_epoch_end_step,
    align_validation_step,
    optimizer_kwargs,
    optimizer_steps,
)
from poolbench.training.lightning_private import (
    batches_that_stepped,
    load_loader_position,
    saved_batch_progress,
    set_batches_that_stepped,
)
from poolbench.training.scheduler import make_scheduler
from poolbench.training.tta import make_tta

WHITEN_IMAGES = 512  # 400k patches: plenty for a 75x75 covariance, and well under a second
# On a GPU each host read of a device value stalls its queue of kernels: the loss is checked
# every this many steps there.
FINITE_CHECK_EVERY = 25
# self.log options for a value that is already the same on every DDP rank (computed by a
# torchmetrics metric, which syncs its states across ranks first): the max of equal values is
# that value exactly (a mean of N copies may round), and a synced value draws no warning.
ALREADY_GLOBAL = {"sync_dist": True, "reduce_fx": "max"}


def finite_check_due(device_type: str, batch_idx: int, last_batch: bool) -> bool:
    # Every step where reading the loss is free (CPU); else some steps, and always the epoch's
    # last, before validation and checkpoints see the weights. That suffices: a diverged net
    # stays diverged (its weights turn NaN).
    return device_type == "cpu" or batch_idx % FINITE_CHECK_EVERY == 0 or last_batch


class PoolNetModule(L.LightningModule):
    def __init__(
        self,
        model: dict[str, Any],
        head: dict[str, Any],
        pool: dict[str, Any],
        optimizer: dict[str, Any],
        scheduler: dict[str, Any],
        num_classes: int,
        image_size: int = 32,
        classes: list[str] | None = None,
        label_smoothing: float = 0.0,
        tta: dict[str, Any] | str = "none",
        choices: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        # `choices` names the options (head=global, pool=max) for eval, embed and reports; the
        # `head`, `pool` and `tta` nodes say what to build (`_target_`, keywords).
        # Plain dicts, so checkpoints load with weights_only=True. Not sent to loggers: the run
        # logs flat option names (head=global) and the resolved config itself.
        self.save_hyperparameters(logger=False)
        self.net = build_convnet(
            model, upgrade_node("head", head), upgrade_node("pool", pool), num_classes, image_size
        )
        # Checkpoints from before the tta group hold the option's name ("flip_translate").
        self.tta = make_tta(upgrade_node("tta", tta))
        self.classes = classes or [str(i) for i in range(num_classes)]
        # validate_args=False: the checks read label values back to the host each step (a GPU
        # sync); poolbench's loaders only ever hold labels in range(num_classes).
        acc = {"num_classes": num_classes, "validate_args": False}
        self.train_acc = MulticlassAccuracy(**acc, average="micro")
        self.val_acc = MulticlassAccuracy(**acc, average="micro")
        self.test_acc = MulticlassAccuracy(**acc, average="micro")
        self.test_class_acc = ClasswiseWrapper(
            MulticlassAccuracy(**acc, average=None), self.classes, prefix="test/acc_class/"
        )
        self.test_confusion = ConfusionMatrix("multiclass", **acc)
        self.val_loss, self.test_loss = MeanMetric(), MeanMetric()
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)  # kept in checkpoints, so a resumed run remembers it
        self.fast_plan = FastPlan()
        self.stacked: StackedSteps | None = None

    @property
    def example_input_array(self) -> Tensor:
        # Lets Lightning's model summary show every layer's input and output size; in the
        # weights' dtype, which trainer.precision=64-true makes float64 (the summary's forward
        # does not convert its input).
        return torch.zeros(1, *self.net.input_shape, dtype=self.net.blocks[0].conv.weight.dtype)

    @example_input_array.setter
    def example_input_array(self, value: Any) -> None:  # LightningModule.__init__ sets None
        pass

    def use_fast_path(self, plan: FastPlan, batch_size: int) -> None:
        """Train with stacked steps (and a CUDA graph): manual optimization (fast_path.py)."""
        self.fast_plan = plan
        if plan.on:
            self.automatic_optimization = False
            self.stacked = StackedSteps(self, batch_size, plan.cuda_graph)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def eval_logits(self, x: Tensor) -> Tensor:
        # Test-time augmentation (the `tta` group, training/tta.py): logits averaged over views.
        return self.tta(self, x)

    def setup(self, stage: str) -> None:
        # Before a checkpoint is restored (Lightning's order), so a resumed run keeps its weights.
        if stage == "fit" and self.hparams.model.get("init", "default") == "whiten":
            self._whiten_first_conv()

    def _whiten_first_conv(self) -> None:
        dm = self.trainer.datamodule
        if not hasattr(dm, "normalize"):
            raise UserError(
                "model.init=whiten needs poolbench's ImageDataModule (it reads the training "
                "images); use model.init=default with other data modules"
            )
        # The first images of the seeded train split: the same filters for every rank and seed.
        whiten_conv(self.net.blocks[0].conv, dm.normalize(dm.train.x[:WHITEN_IMAGES]))

    def configure_model(self) -> None:
        # In place (nn.Module.compile), not a wrapper: the state_dict keys stay the plain net's,
        # so eval.py, embed.py and the pictures load a compiled run's checkpoints.
        if self.hparams.model.get("compile") and self.net._compiled_call_impl is None:
            self.net.compile()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Saved inside a step (an exception there: Ctrl-C), that step had not trained.
        total = saved_batch_progress(checkpoint).get("total", {})
        self._saved_inside_a_step = total.get("started", 0) > total.get("processed", 0)

    def on_train_start(self) -> None:
        # A run resumed mid-epoch hands the train loader its saved position (state_dict in
        # loader.py). Lightning does that only for a loader built after the checkpoint is read;
        # configure_optimizers builds it before (estimated_stepping_batches; Lightning #20550).
        load_loader_position(self.trainer)
        if getattr(self, "_saved_inside_a_step", False):
            # Lightning counts the logging step on as if the checkpoint were written after that
            # step's end: the resumed run would log every step-level metric one step late.
            set_batches_that_stepped(self.trainer, batches_that_stepped(self.trainer) - 1)
            self._saved_inside_a_step = False

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        # The loader's place in the epoch, which checkpoints save, moves on once a step trained.
        loader = self.trainer.train_dataloader
        if hasattr(loader, "trained"):
            loader.trained(outputs["images"])

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> dict[str, Any]:
        if self.stacked is not None:
            return self._stacked_training_step(*batch)
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y, label_smoothing=self.hparams.label_smoothing)
        if finite_check_due(loss.device.type, batch_idx, self.trainer.is_last_batch):
            self._check_finite(loss)
        self.train_acc.update(logits, y)  # logged at epoch end: each self.log has a Python cost
        # sync_dist: under DDP the mean over every rank's batch, as one process would log it
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, sync_dist=True)
        return {"loss": loss, "images": len(y)}  # what trained: the loader's place, EpochTimer

    def _stacked_training_step(self, x: Tensor, y: Tensor) -> dict[str, int]:
        loss, images = self.stacked.run(x, y)
        self._check_finite(loss)  # once per stack: the stack's only read back to the host
        self.log(
            "train/loss",
            loss,
            on_step=True,
            on_epoch=True,
            prog_bar=True,
            batch_size=images,
            sync_dist=True,
        )
        return {"images": images}  # fewer than the stack's where max_steps cut it (EpochTimer)

    def _check_finite(self, loss: Tensor) -> None:
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"loss is {loss.item()} at epoch {self.current_epoch}, step {self.global_step}: "
                f"training diverged; lower optimizer.lr (now {self.hparams.optimizer.get('lr')})"
            )

    def on_train_epoch_end(self) -> None:
        if self.stacked is not None:
            align_epoch_end_step(self.trainer)
        if self.stacked is None:
            self.log("train/acc", self.train_acc, prog_bar=True)  # a Metric: synced by torchmetrics
        elif (acc := self.stacked.epoch_accuracy()) is not None:
            self.log("train/acc", acc, prog_bar=True, sync_dist=True)

    def on_validation_epoch_start(self) -> None:
        if self.stacked is not None:
            align_validation_step(self.trainer)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self.eval_logits(x)
        # per image, so a short last batch weighs what its images do
        self.val_loss(F.cross_entropy(logits, y, reduction="none"))
        self.val_acc(logits, y)
        self.log("val/loss", self.val_loss, on_epoch=True, prog_bar=True)
        self.log("val/acc", self.val_acc, on_epoch=True, prog_bar=True)

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:  # the sanity check's few batches are no result
            return
        self.val_acc_best(self.val_acc.compute())
        self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True, **ALREADY_GLOBAL)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> dict[str, Tensor]:
        x, y = batch
        logits = self.eval_logits(x)
        self.test_loss(F.cross_entropy(logits, y, reduction="none"))
        for metric in (self.test_acc, self.test_class_acc, self.test_confusion):
            metric.update(logits, y)  # computed once, at the epoch's end
        self.log("test/loss", self.test_loss, on_epoch=True)
        self.log("test/acc", self.test_acc, on_epoch=True)
        return {"logits": logits}  # ReviewImages keeps each class's most confident mistakes

    def on_test_epoch_end(self) -> None:
        self.log_dict(self.test_class_acc.compute(), **ALREADY_GLOBAL)
        self.confusion = self.test_confusion.compute().cpu()
        self.test_class_acc.reset()
        self.test_confusion.reset()

    def configure_optimizers(self) -> Any:
        opt = instantiate(self.hparams.optimizer)(
            self.parameters(), **optimizer_kwargs(self.fast_plan)
        )
        total = self.trainer.estimated_stepping_batches
        if self.stacked is not None:
            total = optimizer_steps(self.trainer)
        sched = make_scheduler(
            upgrade_node("scheduler", self.hparams.scheduler), opt, total, self.trainer.max_epochs
        )
        return opt if sched is None else {"optimizer": opt, "lr_scheduler": sched}

    def cost(self) -> dict[str, Any]:
        """Parameter counts and forward FLOPs per image, the numbers every run reports."""
        return {"params": self.net.param_counts(), "flops_per_image": self.net.flops_per_image()}
