"""One look for every lecture figure: 16:9, large type, written at 1920x1080."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from poolbench.review.plotting import pyplot

SIZE = (16.0, 9.0)  # inches: 16:9, as a projector shows it
DPI = 120  # 1920 x 1080 pixels
# Readable from the back of a lecture room: about twice matplotlib's defaults.
RC = {
    "font.size": 16,
    "axes.titlesize": 19,
    "axes.labelsize": 18,
    "xtick.labelsize": 15,
    "ytick.labelsize": 15,
    "legend.fontsize": 15,
    "figure.titlesize": 23,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
LECTURE_NETS = (("flatten", "max"), ("global", "max"))  # the lecture's two nets, in its order
TRAIN, VAL = "tab:blue", "tab:orange"


@contextmanager
def lecture_style() -> Iterator[Any]:
    """pyplot, with the lecture's type sizes for every figure made inside."""
    plt = pyplot()
    with plt.rc_context(RC):
        yield plt


def figure(**kwargs: Any) -> Any:
    """A 16:9 figure in the lecture's style (call inside `lecture_style`)."""
    return pyplot().figure(figsize=SIZE, dpi=DPI, **kwargs)  # pixels as saved


def net_label(head: str, pool: str) -> str:
    return f"head={head} pool={pool}"


def human(n: float) -> str:
    """A count as a lecture slide writes it: 850, 30k, 246k, 1.2M."""
    for size, unit in ((1e6, "M"), (1e3, "k")):
        if abs(n) >= size:
            return f"{n / size:.3g}{unit}"
    return f"{n:.3g}"


def save(fig: Any, path: Path) -> Path:
    """Written at exactly SIZE x DPI (no tight bounding box: it would change the 16:9)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    pyplot().close(fig)
    return path
