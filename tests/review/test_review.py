"""The review pictures show what they claim: each class's most confident mistakes whatever the
test order, activation maps on one colour scale per layer without frames, and the confusion
counts; checked from the data each picture was drawn from and from its pixels."""

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import FAST, make_cfg, run_cli
from helpers import picture_stats, picture_stats_of
from PIL import Image

from poolbench.review.run_pictures import (
    LABEL_H,
    PAD,
    ROW_GAP,
    TOP,
    Mistakes,
    ReviewImages,
    _display,
    add_mistakes,
    confusion_figure,
    misclassified_image,
)

CLASSES = ["ant", "bee", "cat", "dog"]


def brute_force(logits: torch.Tensor, labels: torch.Tensor, per_class: int) -> dict:
    """Per true class, the probabilities of its top mistakes, highest first."""
    prob, pred = logits.softmax(1).max(1)
    out = {}
    for c in labels.unique().tolist():
        wrong = (labels == c) & (pred != c)
        if wrong.any():
            out[c] = prob[wrong].sort(descending=True).values[:per_class].tolist()
    return out


def test_streamed_selection_equals_sorting_everything() -> None:
    g = torch.Generator().manual_seed(0)
    n = 1000
    labels = torch.arange(4).repeat_interleave(n // 4)  # class-sorted, like an image folder
    logits = torch.randn(n, 4, generator=g) * 2
    images = torch.arange(n, dtype=torch.float32)[:, None, None, None].expand(n, 3, 2, 2)
    kept = None
    for start in range(0, n, 37):  # odd batch size: class boundaries fall inside batches
        s = slice(start, start + 37)
        kept = add_mistakes(kept, images[s], logits[s], labels[s], per_class=8)
    drawn = kept.wrong()
    expected = brute_force(logits, labels, 8)
    assert set(drawn.true.tolist()) == set(expected) == {0, 1, 2, 3}
    for c, probs in expected.items():
        mine = drawn.prob[drawn.true == c]
        assert mine.tolist() == pytest.approx(probs)
        # Each kept image is the one whose logits gave that probability and prediction.
        idx = drawn.images[drawn.true == c][:, 0, 0, 0].long()
        assert (logits[idx].argmax(1) != c).all()
        assert logits[idx].softmax(1).amax(1).tolist() == pytest.approx(mine.tolist())


def test_misclassified_tiles_show_the_drawn_images() -> None:
    g = torch.Generator().manual_seed(1)
    images = torch.rand(40, 3, 32, 32, generator=g)
    labels = torch.arange(4).repeat_interleave(10)
    logits = torch.randn(40, 4, generator=g)
    m = add_mistakes(None, images, logits, labels, per_class=3).wrong()
    pic = np.asarray(misclassified_image(m, CLASSES, 3).convert("RGB"))
    tile, rows = 96, m.true.unique().tolist()  # 32 px images shown 3x
    assert pic.shape[0] == TOP + len(rows) * (LABEL_H + tile + ROW_GAP) + 2 * ROW_GAP
    for r, cls in enumerate(rows):  # the first tile of each row is that class's top mistake
        first = (m.true == cls).nonzero()[0, 0]
        y0 = TOP + r * (LABEL_H + tile + ROW_GAP) + LABEL_H
        shown = pic[y0 : y0 + tile : 3, PAD : PAD + tile : 3]
        expected = (_display(m.images[first]) * 255).round()
        assert np.abs(shown - expected).max() <= 1


def test_confusion_figure_draws_the_counts() -> None:
    matrix = torch.tensor([[5, 1, 0, 0], [2, 3, 0, 1], [0, 0, 6, 0], [0, 4, 0, 2]])
    fig = confusion_figure(matrix, CLASSES)
    ax = fig.axes[0]
    rates = matrix.float() / matrix.sum(1, keepdim=True)
    assert np.allclose(ax.images[0].get_array(), rates.numpy())
    assert sorted(int(t.get_text()) for t in ax.texts) == sorted(matrix.flatten().tolist())


def test_activations_one_scale_per_layer_no_frames() -> None:
    from poolbench.config import option_node
    from poolbench.models.convnet import ConvNet
    from poolbench.review.pictures import activations_figure

    torch.manual_seed(0)
    net = ConvNet(option_node("pool", "max"), option_node("head", "flatten"), num_classes=4)
    x = torch.randn(4, 3, 32, 32)
    fig = activations_figure(net, x, [f"image {i}" for i in range(4)])
    with torch.no_grad():
        feats = net.features(x)
        embeds = net.head(feats)
    layers = fig.axes[1:-1]
    assert len(layers) == len(feats) == 2
    for ax, f in zip(layers, feats, strict=True):
        (im,) = ax.images  # one panel holds every image's maps: one colour scale
        arr = np.ma.filled(im.get_array().astype(float), np.nan)
        h, w = f.shape[-2:]
        gap_x, gap_y = max(1, w // 8), max(1, h // 4)
        shown = f[:, :8].numpy()
        assert im.norm.vmin == pytest.approx(shown.min()) and im.norm.vmax == pytest.approx(
            shown.max()
        )
        for r in range(4):
            for c in range(8):
                y, x0 = r * (h + gap_y), c * (w + gap_x)
                assert np.allclose(arr[y : y + h, x0 : x0 + w], shown[r, c], atol=1e-6)
        # Between maps: NaN, drawn as background, not a bright frame.
        assert np.isnan(arr[:h, w : w + gap_x]).all() and np.isnan(arr[h : h + gap_y]).all()
    head = fig.axes[-1].images[0].get_array()
    assert head.shape == (4, 2048) and np.allclose(head, embeds.numpy(), atol=1e-6)


def sorted_folder(root: Path, n_train: int = 24, n_test: int = 16) -> Path:
    """Four classes of noise images: a net makes mistakes in every class. ImageFolder order
    puts the test set in class order."""
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("test", n_test)):
        for c, cls in enumerate(CLASSES):
            (root / split / cls).mkdir(parents=True)
            for i in range(n):
                px = rng.integers(0, 256, (32, 32, 3)).astype(np.uint8)
                px[..., c % 3] //= 2  # a faint per-class tint: some are learnt, some not
                Image.fromarray(px).save(root / split / cls / f"{i}.png")
    return root


@pytest.mark.slow
def test_sorted_folder_mistakes_cover_every_class(tmp_path: Path) -> None:
    from poolbench.training.job import build_trainer, setup

    root = sorted_folder(tmp_path / "folder")
    overrides = [
        "data=folder",
        f"data.root={root}",
        "data.batch_size=16",
        "tta=none",
        "trainer.max_epochs=1",
        "trainer.accelerator=cpu",
        "trainer.precision=32-true",
        "model.init=default",
        *FAST[4:],
    ]
    cfg = make_cfg(overrides, tmp_path / "run", cache=tmp_path / "cache")
    dm, module = setup(cfg)
    trainer = build_trainer(cfg, [], tmp_path / "run")
    trainer.fit(module, datamodule=dm)
    trainer.test(module, datamodule=dm)
    review = next(cb for cb in trainer.callbacks if isinstance(cb, ReviewImages))
    drawn = review.drawn
    confusion = module.confusion
    with_mistakes = {c for c in range(4) if confusion[c].sum() > confusion[c, c]}
    assert len(with_mistakes) >= 2, confusion  # else the test proves little
    assert set(drawn.true.tolist()) == with_mistakes  # not only the first class in test order
    # Within a class: its most confident mistakes, highest first, as a full pass computes them.
    module.eval()
    with torch.no_grad():
        batches = [(x, y, module.eval_logits(x)) for x, y in dm.test_dataloader()]
    logits = torch.cat([b[2] for b in batches])
    labels = torch.cat([b[1] for b in batches])
    assert labels.tolist() == sorted(labels.tolist())  # the test set really came class-sorted
    for c, probs in brute_force(logits, labels, 8).items():
        assert drawn.prob[drawn.true == c].tolist() == pytest.approx(probs, abs=1e-5)
        assert (confusion[c].sum() - confusion[c, c]) >= len(probs)
    for name in ("misclassified", "activations", "confusion_matrix"):
        std, colours = picture_stats(tmp_path / "run" / f"{name}.png")
        assert std > 20 and colours > 50, (name, std, colours)  # a blank or flat picture fails


@pytest.mark.slow
def test_visualize_pooling_draws_the_same_selection(tmp_path: Path) -> None:
    from poolbench.data.datamodule import ImageDataModule
    from poolbench.training.job import build_module

    root = sorted_folder(tmp_path / "folder", n_train=8, n_test=12)
    args = ["data=folder", f"data.root={root}", f"data.cache_dir={tmp_path}/c", "tta=none"]
    cfg = make_cfg([*args, "model.init=default"], tmp_path / "cfg")
    torch.manual_seed(0)
    module = build_module(cfg, 4, CLASSES).eval()
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir(parents=True)
    torch.save({"hyper_parameters": dict(module.hparams), "state_dict": module.state_dict()}, ckpt)
    out = run_cli(["scripts/visualize_pooling.py", f"ckpt_path={ckpt}", *args])
    assert out.returncode == 0, out.stderr[-3000:]
    pictures = tmp_path / "run" / "pictures" / "last"  # beside the run's own, not over them
    assert f"wrote {pictures / 'activations.png'}" in out.stdout
    for name in ("misclassified", "activations"):
        std, colours = picture_stats(pictures / f"{name}.png")
        assert std > 20 and colours > 50, (name, std, colours)
    # The picture is the callback's selection over the whole (class-sorted) test set.
    dm = ImageDataModule(cfg.data)
    dm.prepare_data()
    dm.setup("test")
    kept = None
    with torch.no_grad():
        for x, y in dm.test_dataloader():
            kept = add_mistakes(kept, x, module.eval_logits(x), y, per_class=8)
    assert len(kept.wrong().true.unique()) >= 2
    expected = np.asarray(misclassified_image(kept, CLASSES, 8).convert("RGB"))
    shown = np.asarray(Image.open(pictures / "misclassified.png").convert("RGB"))
    assert shown.shape == expected.shape and np.abs(shown.astype(int) - expected).max() <= 1


def test_empty_selection_draws_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import ImageDraw

    # A PIL picture keeps no text to read back: record what is drawn, then draw it.
    drawn: list[str] = []
    draw_text = ImageDraw.ImageDraw.text

    def text(self: ImageDraw.ImageDraw, xy: Any, text: str, *args: Any, **kwargs: Any) -> Any:
        drawn.append(text)
        return draw_text(self, xy, text, *args, **kwargs)

    monkeypatch.setattr(ImageDraw.ImageDraw, "text", text)
    none = torch.zeros(0, dtype=torch.long)
    m = Mistakes(torch.zeros(0, 3, 8, 8), none, none, torch.zeros(0))
    _, colours = picture_stats_of(misclassified_image(m, CLASSES, 8))
    assert drawn == ["no misclassified test images"]  # the note alone, not the usual title
    assert colours > 2  # and it is on the picture, not a blank
