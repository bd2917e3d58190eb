"""matplotlib for files, never a window, and the colours the sweep pictures and the W&B
dashboard share."""

from __future__ import annotations

from typing import Any


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # before pyplot is imported: no display on servers or in DDP ranks
    import matplotlib.pyplot as plt

    return plt


def pool_colors(pools: list[str]) -> dict[str, str]:
    """One colour per pool (tab10 over the sorted names, repeating past ten), as hex."""
    import matplotlib
    from matplotlib.colors import to_hex

    tab10 = matplotlib.colormaps["tab10"].colors
    return {p: to_hex(tab10[i % len(tab10)]) for i, p in enumerate(sorted(pools))}
