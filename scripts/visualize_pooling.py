"""`python scripts/visualize_pooling.py [--image …] [ckpt_path=…]`: poolbench-visualize
(src/poolbench/review/visualize.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # before `pip install`

from poolbench.review.visualize import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
