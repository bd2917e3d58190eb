"""`python scripts/benchmark.py [--quick] [--speed-options [NAMES]] [--data-root PATH]`:
poolbench vs. plain PyTorch, measured side by side in one run (see benchmarks/benchmark.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from benchmark import main  # noqa: E402

if __name__ == "__main__":
    main()
