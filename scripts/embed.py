"""`python scripts/embed.py ckpt_path=…`: poolbench-embed (src/poolbench/review/embed.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # before `pip install`

from poolbench.review.embed import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
