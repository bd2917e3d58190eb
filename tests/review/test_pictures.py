from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, run_cli
from PIL import Image

from poolbench.review.pictures import pool_image, pooling_figure, sample_photo


def test_lecture_pooling_shapes() -> None:
    photo = sample_photo()
    assert photo.shape == (3, 224, 224)
    assert photo.std() > 0.1  # a real photograph, not a flat or blank image
    assert pool_image(photo, "max", 4).shape == (3, 56, 56)
    assert pool_image(photo, "mean", 2).shape == (3, 112, 112)
    # Max pooling keeps each window's strongest value; mean pooling its average.
    assert pool_image(photo, "max", 4).mean() > pool_image(photo, "mean", 4).mean()


@pytest.mark.slow
def test_visualize_pooling_script(tmp_path: Path) -> None:
    out = run_cli(["scripts/visualize_pooling.py", "--out", str(tmp_path / "p.png")], cwd=ROOT)
    assert out.returncode == 0, out.stderr
    # Three photos side by side: many colours, real contrast (a blank figure has neither).
    px = np.asarray(Image.open(tmp_path / "p.png").convert("RGB")).astype(float)
    assert px.std() > 30 and len(np.unique(px.reshape(-1, 3), axis=0)) > 5_000
    # What the panels show (the script's default figure, built in-process to read its arrays):
    # each k x k window's max and mean, computed here with numpy reshapes.
    photo = sample_photo()
    fig = pooling_figure(photo, [("max", 4), ("mean", 2)])
    original, max4, mean2 = (ax.images[0].get_array() for ax in fig.axes if ax.images)
    import matplotlib.pyplot as plt  # after pooling_figure chose the Agg backend

    plt.close(fig)
    x = photo.numpy()
    windows4, windows2 = x.reshape(3, 56, 4, 56, 4), x.reshape(3, 112, 2, 112, 2)
    np.testing.assert_allclose(original, x.transpose(1, 2, 0), atol=1e-6)
    np.testing.assert_allclose(max4, windows4.max(axis=(2, 4)).transpose(1, 2, 0), atol=1e-6)
    np.testing.assert_allclose(mean2, windows2.mean(axis=(2, 4)).transpose(1, 2, 0), atol=1e-6)
    bad = run_cli(["scripts/visualize_pooling.py", "--kernel", "0"], cwd=ROOT)
    assert bad.returncode == 2 and "--kernel 0" in bad.stderr


# ---------------------------------------------------------------------------------------------
# visualize_pooling.py --image --mode: the pooled panel's pixels


@pytest.mark.slow
def test_visualize_pooling_image_and_mode(tmp_path: Path) -> None:
    # Red, with one green pixel in every 8x8 window: max pooling makes each window yellow
    # (the max of both channels), mean pooling keeps it red (green at 1/64).
    img = np.zeros((224, 224, 3), np.uint8)
    img[..., 0] = 255
    img[3::8, 5::8] = (0, 255, 0)
    Image.fromarray(img).save(tmp_path / "dots.png")

    def colours(mode: str) -> tuple[int, int]:
        out = tmp_path / f"{mode}.png"
        args = ["--image", str(tmp_path / "dots.png"), "--mode", mode, "--kernel", "8"]
        done = run_cli(["scripts/visualize_pooling.py", *args, "--out", str(out)])
        assert done.returncode == 0, done.stderr[-2000:]
        px = np.asarray(Image.open(out).convert("RGB")).astype(int)
        r, g, b = px[..., 0], px[..., 1], px[..., 2]
        yellow = int(((r > 200) & (g > 200) & (b < 60)).sum())
        red = int(((r > 200) & (g < 60) & (b < 60)).sum())
        return yellow, red

    max_yellow, max_red = colours("max")
    avg_yellow, avg_red = colours("avg")
    # Two panels of about 300x300 pixels each: the original (red) and the pooled one.
    assert max_yellow > 50_000 and avg_yellow < 100
    assert avg_red > max_red + 50_000
