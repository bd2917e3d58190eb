"""`python scripts/shapes.py head=flatten pool=max`: poolbench-shapes (poolbench/cli/shapes.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # before `pip install`

from poolbench.cli.shapes import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
