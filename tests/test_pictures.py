from pathlib import Path

import numpy as np
from conftest import ROOT, run_cli
from PIL import Image

from poolbench.pictures import pool_image, sample_photo


def test_lecture_pooling_shapes() -> None:
    photo = sample_photo()
    assert photo.shape == (3, 224, 224)
    assert photo.std() > 0.1  # a real photograph, not a flat or blank image
    assert pool_image(photo, "max", 4).shape == (3, 56, 56)
    assert pool_image(photo, "mean", 2).shape == (3, 112, 112)
    # Max pooling keeps each window's strongest value; mean pooling its average.
    assert pool_image(photo, "max", 4).mean() > pool_image(photo, "mean", 4).mean()


def test_visualize_pooling_script(tmp_path: Path) -> None:
    out = run_cli(["scripts/visualize_pooling.py", "--out", str(tmp_path / "p.png")], cwd=ROOT)
    assert out.returncode == 0, out.stderr
    # Three photos side by side: many colours, real contrast (a blank figure has neither).
    px = np.asarray(Image.open(tmp_path / "p.png").convert("RGB")).astype(float)
    assert px.std() > 30 and len(np.unique(px.reshape(-1, 3), axis=0)) > 5_000
    bad = run_cli(["scripts/visualize_pooling.py", "--kernel", "0"], cwd=ROOT)
    assert bad.returncode == 2 and "--kernel 0" in bad.stderr
