"""Embeddings of a trained model:

    python scripts/embed.py ckpt_path=outputs/train/<run>/checkpoints/last.ckpt \
        [data=…] [split=test] [knn_k=10]

writes embeddings.npy, labels.npy, classes.json and embeddings_2d.png into the run's folder,
adds embed/knn_acc to its results.json and W&B run, and prints the kNN accuracy.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main(overrides: list[str]) -> int:
    from poolbench.cli import compose

    if any(o in ("-h", "--help") for o in overrides):
        print(__doc__)
        return 0
    cfg = compose("embed", overrides)  # a typo in an option or key: one line, too
    from poolbench.embed import embed

    embed(cfg, overrides)
    return 0


if __name__ == "__main__":
    from poolbench.errors import answered

    sys.exit(answered(main, sys.argv[1:]))  # bad input: one error: line, exit 2
