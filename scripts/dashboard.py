"""`python scripts/dashboard.py outputs/<sweep dir> [--dry-run]`: the W&B dashboard of a sweep."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from poolbench.review.dashboard import main  # noqa: E402

if __name__ == "__main__":
    main()
