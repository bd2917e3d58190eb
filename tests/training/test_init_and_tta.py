"""model.init=whiten (the first conv starts as a whitening filter bank of the training patches)
and the tta group (val/test logits averaged over mirrored and shifted views): its defaults per
data source, the exact numbers of the views, old checkpoints, and a user's own TTA."""

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from conftest import FAST, ROOT, make_cfg
from omegaconf import OmegaConf
from torch import Tensor, nn
from torch.nn import functional as F

from poolbench.config import option_node
from poolbench.errors import ConfigError, UserError
from poolbench.models.whitening import EPS, patch_whitening, whiten_conv
from poolbench.training.checks import validate
from poolbench.training.tta import Flip, OneView, make_tta

USER_CONF = f"hydra.searchpath=[file://{ROOT / 'tests' / 'userpkg' / 'conf'}]"


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


def old_eval_logits(forward: Callable[[Tensor], Tensor], x: Tensor, tta: str) -> Tensor:
    """PoolNetModule.eval_logits as it was when data.tta was a string: the reference."""
    if tta == "none":
        return forward(x)
    views = [x, x.flip(-1)]
    if tta == "flip_translate":
        h, w = x.shape[-2:]
        padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
        shifted = [padded[..., :h, :w], padded[..., 2:, 2:]]
        views += [*shifted, *(v.flip(-1) for v in shifted)]
    logits = forward(torch.cat(views)).unflatten(0, (len(views), -1))
    if tta == "flip":
        return logits.mean(0)
    return (logits[:2].mean(0) + logits[2:].mean(0)) / 2


def tta_choice(overrides: list[str], tmp_path: Path) -> tuple[str, dict]:
    cfg = make_cfg(overrides, tmp_path)
    assert "tta" not in cfg.data  # a group of its own now, not a data key
    return cfg.hydra.runtime.choices.tta, OmegaConf.to_container(cfg.tta)


def test_tta_defaults_per_data_source(tmp_path: Path) -> None:
    flip_translate = option_node("tta", "flip_translate")
    assert flip_translate == {"_target_": "poolbench.training.tta.FlipTranslate", "shift": 1}
    assert tta_choice([], tmp_path) == ("flip_translate", flip_translate)
    assert tta_choice(["data=cifar10"], tmp_path) == ("flip_translate", flip_translate)
    assert tta_choice(["data=folder"], tmp_path) == ("flip_translate", flip_translate)  # cifar10's
    none = option_node("tta", "none")
    assert tta_choice(["data=digits"], tmp_path) == ("none", none)  # flips change digits
    assert tta_choice(["data=synthetic"], tmp_path) == ("none", none)
    # the command line wins over the data option's own choice, in either order
    assert tta_choice(["tta=flip", "data=digits"], tmp_path) == ("flip", option_node("tta", "flip"))
    assert tta_choice(["data=synthetic", "tta=flip_translate"], tmp_path)[0] == "flip_translate"
    assert tta_choice(["tta.shift=2"], tmp_path)[1]["shift"] == 2


def test_an_unknown_or_old_spelling_is_one_line(tmp_path: Path) -> None:
    from poolbench.cli.overrides import compose
    from poolbench.errors import OverrideError

    with pytest.raises(OverrideError) as err:
        compose("train", ["tta=mirror"])
    assert str(err.value) == "tta=mirror is not an option (tta options: flip, flip_translate, none)"
    with pytest.raises(OverrideError) as err:
        compose("train", [*FAST, "data.tta=none"])
    assert str(err.value) == (
        "data.tta=none: data.tta is now the config group tta; write tta=none "
        "(tta options: flip, flip_translate, none)"
    )
    cfg = make_cfg([*FAST, "tta=none"], tmp_path)
    validate(cfg)  # the old TTAS check is gone: Hydra checks the option
    with pytest.raises(UserError, match=r"^tta: .*FlipTranslate.*shift=0 must be a positive"):
        make_tta({**option_node("tta", "flip_translate"), "shift": 0})


def small_net() -> nn.Module:
    # Not mirror-symmetric (a linear layer over the whole map), so every view counts.
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(256, 5))


@pytest.mark.parametrize("name", ["none", "flip", "flip_translate"])
def test_views_give_the_old_if_chains_numbers_in_one_forward(name: str) -> None:
    net = small_net()
    calls: list[int] = []

    def forward(x: Tensor) -> Tensor:
        calls.append(len(x))
        return net(x)

    x = torch.randn(7, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    tta = make_tta(option_node("tta", name))
    with torch.no_grad():
        got, expected = tta(forward, x), old_eval_logits(net, x, name)
    assert torch.equal(got, expected)  # exactly: the same views, order, and weights
    assert calls == [7 * {"none": 1, "flip": 2, "flip_translate": 6}[name]]  # one forward
    if name != "none":  # views that change the answer, or the test would prove little
        assert not torch.allclose(got, net(x))
    if name == "flip_translate":  # not six views weighed alike: the mirror pair weighs half
        views = [x, x.flip(-1)]
        padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
        views += [padded[..., :8, :8], padded[..., 2:, 2:]]
        views += [v.flip(-1) for v in views[2:]]
        assert not torch.allclose(got, torch.stack([net(v) for v in views]).mean(0))


def test_an_old_checkpoint_with_a_tta_name_evaluates_identically(tmp_path: Path) -> None:
    from poolbench.review.trained import read_checkpoint
    from poolbench.training.job import build_module
    from poolbench.training.module import PoolNetModule

    cfg = make_cfg([*FAST, "tta=flip_translate", "model.init=default"], tmp_path)
    module = build_module(cfg, 10, None).eval()
    hp = dict(module.hparams)
    assert hp["tta"] == option_node("tta", "flip_translate")  # a plain dict node
    for tta in ("flip_translate", option_node("tta", "flip_translate")):  # then and now
        path = tmp_path / "old.ckpt"
        torch.save(
            {"state_dict": module.state_dict(), "hyper_parameters": {**hp, "tta": tta}}, path
        )
        ckpt = read_checkpoint(str(path))  # weights_only=True: plain containers only
        loaded = PoolNetModule(**ckpt["hyper_parameters"]).eval()
        loaded.load_state_dict(ckpt["state_dict"])
        x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(2))
        with torch.no_grad():
            assert torch.equal(loaded.eval_logits(x), module.eval_logits(x))
            assert torch.equal(loaded.eval_logits(x), old_eval_logits(loaded, x, "flip_translate"))
    # every old name is its shipped option; checkpoints from before tta existed get one view
    assert type(PoolNetModule(**{**hp, "tta": "flip"}).tta) is Flip
    assert type(PoolNetModule(**{**hp, "tta": "none"}).tta) is OneView
    assert type(PoolNetModule(**{k: v for k, v in hp.items() if k != "tta"}).tta) is OneView


def test_a_users_own_tta_is_one_class_and_one_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from poolbench.training.job import build_module

    monkeypatch.syspath_prepend(str(ROOT / "tests"))  # userpkg importable, as once pip-installed
    cfg = make_cfg([*FAST, USER_CONF, "tta=flip_only"], tmp_path)
    assert cfg.hydra.runtime.choices.tta == "flip_only"
    assert OmegaConf.to_container(cfg.tta) == {"_target_": "userpkg.views.FlipOnly"}
    module = build_module(cfg, 10, None).eval()
    assert type(module.tta).__name__ == "FlipOnly"
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.equal(module.eval_logits(x), module(x.flip(-1)))
        assert not torch.allclose(module.eval_logits(x), module(x))
    # the user's data source chooses its own default the way poolbench's do
    assert tta_choice([USER_CONF, "data=stripes"], tmp_path)[0] == "none"
    assert tta_choice([USER_CONF, "data=stripes", "tta=flip_only"], tmp_path)[0] == "flip_only"


@pytest.mark.slow
def test_module_whitens_at_fit_and_averages_views(tmp_path: Path) -> None:
    import lightning as L

    from poolbench.data.datamodule import ImageDataModule
    from poolbench.training.job import build_module
    from poolbench.training.module import WHITEN_IMAGES

    cfg = make_cfg([*FAST, "tta=flip"], tmp_path, cache=tmp_path / "cache")
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
    trainer.save_checkpoint(tmp_path / "now.ckpt")  # the tta node in it loads as plain data
    saved = torch.load(tmp_path / "now.ckpt", map_location="cpu", weights_only=True)
    assert saved["hyper_parameters"]["tta"] == {"_target_": "poolbench.training.tta.Flip"}

    module.eval()
    x = images[:4]
    flip = (module(x) + module(x.flip(-1))) / 2
    assert torch.allclose(module.eval_logits(x), flip)
    assert not torch.allclose(module(x), flip)
    module.tta = make_tta(option_node("tta", "none"))
    assert torch.equal(module.eval_logits(x), module(x))
    # flip_translate: half the flip pair, a quarter each for the pairs shifted by one pixel
    module.tta = make_tta(option_node("tta", "flip_translate"))
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")
    moved_down, moved_up = padded[..., :32, :32], padded[..., 2:, 2:]
    assert torch.equal(moved_down[..., 1:, 1:], x[..., :-1, :-1])
    assert torch.equal(moved_up[..., :-1, :-1], x[..., 1:, 1:])
    pair = lambda v: (module(v) + module(v.flip(-1))) / 2  # noqa: E731
    expected = flip / 2 + pair(moved_down) / 4 + pair(moved_up) / 4
    assert torch.allclose(module.eval_logits(x), expected, atol=1e-6)
