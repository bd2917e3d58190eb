"""model.init=whiten (the first conv starts as a whitening filter bank of the training patches)
and data.tta (val/test logits averaged over mirrored and shifted views)."""

from pathlib import Path

import pytest
import torch
from conftest import FAST, make_cfg
from torch import nn
from torch.nn import functional as F

from poolbench.errors import ConfigError
from poolbench.models.whitening import EPS, patch_whitening, whiten_conv
from poolbench.training.checks import validate


def correlated_images(n: int = 64, seed: int = 0) -> torch.Tensor:
    # Smooth, colour-correlated images: neighbouring pixels and channels are far from independent.
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 20, 20, generator=g).repeat(1, 3, 1, 1) + 0.3 * torch.randn(
        n, 3, 20, 20, generator=g
    )
    return F.avg_pool2d(x, 3, stride=1, padding=1)


def test_filters_decorrelate_patches() -> None:
    x = correlated_images()
    w = patch_whitening(x, kernel_size=3, n_filters=8)
    assert w.shape == (8, 3, 3, 3)
    out = F.conv2d(x, w).permute(0, 2, 3, 1).reshape(-1, 8)
    cov = torch.cov(out.T)
    var = torch.cov(F.unfold(x, 3).transpose(1, 2).reshape(-1, 27).T)
    top = torch.linalg.eigvalsh(var).flip(0)[:8]
    # Unit variance (shrunk by eps for low-variance directions), no correlation between filters.
    assert torch.allclose(cov.diagonal(), top / (top + EPS), atol=1e-3)
    assert (cov - torch.diag(cov.diagonal())).abs().max() < 1e-3
    # The raw patches are strongly correlated: the test would fail for random filters.
    assert var.diagonal().min() < 0.5 * var.sum(1).min()


def test_extra_filters_keep_their_init() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 12, 3)  # 9 patch dimensions, 12 filters
    before = conv.weight.detach().clone()
    whiten_conv(conv, torch.randn(16, 1, 12, 12))
    assert not torch.allclose(conv.weight[:9], before[:9])
    assert torch.equal(conv.weight[9:], before[9:])
    assert torch.equal(conv.bias[:9], torch.zeros(9))


def test_bad_init_is_a_config_error(tmp_path: Path) -> None:
    cfg = make_cfg([*FAST, "model.init=pca"], tmp_path)
    with pytest.raises(ConfigError, match=r"model.init='pca'.*model.init=default or whiten"):
        validate(cfg)


def test_tta_defaults_and_bad_value(tmp_path: Path) -> None:
    assert make_cfg(["data=cifar10"], tmp_path).data.tta == "flip_translate"
    assert make_cfg(["data=digits"], tmp_path).data.tta == "none"  # flips change digits
    assert make_cfg(["data=synthetic"], tmp_path).data.tta == "none"
    cfg = make_cfg([*FAST, "data.tta=mirror"], tmp_path)
    with pytest.raises(ConfigError, match=r"data.tta='mirror'.*none or flip or flip_translate"):
        validate(cfg)


@pytest.mark.slow
def test_module_whitens_at_fit_and_averages_views(tmp_path: Path) -> None:
    import lightning as L

    from poolbench.data.datamodule import ImageDataModule
    from poolbench.training.job import build_module
    from poolbench.training.module import WHITEN_IMAGES

    cfg = make_cfg([*FAST, "data.tta=flip"], tmp_path, cache=tmp_path / "cache")
    dm = ImageDataModule(cfg.data)
    module = build_module(cfg, dm.num_classes, dm.classes)
    before = module.net.blocks[0].conv.weight.detach().clone()

    class FirstConvAtStart(L.Callback):  # the weights the first training step starts from
        def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            self.weight = pl_module.net.blocks[0].conv.weight.detach().clone()

    seen = FirstConvAtStart()
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[seen],
        default_root_dir=tmp_path,
    )
    trainer.fit(module, datamodule=dm)
    images = dm.normalize(dm.train.x[:WHITEN_IMAGES])
    assert not torch.allclose(seen.weight, before)
    assert torch.allclose(seen.weight, patch_whitening(images, 5, 16))
    assert trainer.global_step == 2  # and then it trained from there

    module.eval()
    x = images[:4]
    flip = (module(x) + module(x.flip(-1))) / 2
    assert torch.allclose(module.eval_logits(x), flip)
    assert not torch.allclose(module(x), flip)
    module.hparams.tta = "none"
    assert torch.equal(module.eval_logits(x), module(x))
    # flip_translate: half the flip pair, a quarter each for the pairs shifted by one pixel
    module.hparams.tta = "flip_translate"
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")
    moved_down, moved_up = padded[..., :32, :32], padded[..., 2:, 2:]
    assert torch.equal(moved_down[..., 1:, 1:], x[..., :-1, :-1])
    assert torch.equal(moved_up[..., :-1, :-1], x[..., 1:, 1:])
    pair = lambda v: (module(v) + module(v.flip(-1))) / 2  # noqa: E731
    expected = flip / 2 + pair(moved_down) / 4 + pair(moved_up) / 4
    assert torch.allclose(module.eval_logits(x), expected, atol=1e-6)
