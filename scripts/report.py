"""`python scripts/report.py outputs/<sweep dir>`: tables and plots for a finished sweep."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from poolbench.review.report import main  # noqa: E402

if __name__ == "__main__":
    main()
