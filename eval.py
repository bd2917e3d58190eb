"""Test a checkpoint: `python eval.py ckpt_path=outputs/train/<run>/checkpoints/last.ckpt`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))  # works before `pip install -e`

from poolbench.cli.eval import main  # noqa: E402

if __name__ == "__main__":
    main()
