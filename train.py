"""Train a ConvNet: `python train.py head=global pool=max` (see `python train.py --help`)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))  # works before `pip install -e`

from poolbench.cli.train import main  # noqa: E402

if __name__ == "__main__":
    main()
