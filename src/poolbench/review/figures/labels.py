"""Point labels that overlap neither each other nor the points: each label tries places
around its point, nearest first, and keeps the first whose text box (as the renderer draws
it) is free and inside the axes; a label pushed away from its point gets a leader line.
Where no place is free, overlapping a marker or an error bar is preferred to overlapping
another label."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

# Directions to try, right of the point first (the reading direction), then around.
DIRECTIONS = [(1, 0), (1, 1), (1, -1), (-1, 0), (-1, 1), (-1, -1), (0, 1), (0, -1)] + [
    (math.cos(a), math.sin(a)) for a in np.radians(np.arange(22.5, 360, 45))
]
RADII = (12, 22, 34, 52, 75, 105, 140, 180, 230, 290)  # points from the marker's centre
LEADER_FROM = 30  # a label this far off (points) or more gets a line to its point
LABEL, OUTSIDE = 20, 1000  # the cost of overlapping a label, of leaving the axes (a marker: 1)


def _align(dx: float, dy: float) -> tuple[str, str]:
    ha = "left" if dx > 0.3 else "right" if dx < -0.3 else "center"
    va = "bottom" if dy > 0.3 else "top" if dy < -0.3 else "center"
    return ha, va


def _hits(box: Any, boxes: np.ndarray) -> int:
    """How many of boxes (rows x0, y0, x1, y1) the Bbox `box` overlaps."""
    if not len(boxes):
        return 0
    return int(
        (
            (boxes[:, 0] < box.x1)
            & (box.x0 < boxes[:, 2])
            & (boxes[:, 1] < box.y1)
            & (box.y0 < boxes[:, 3])
        ).sum()
    )


def place_labels(
    ax: Any,
    points: list[tuple[float, float]],
    texts: list[str],
    obstacles: list[Any],
    styles: list[dict[str, Any]] | None = None,
) -> list[Any]:
    """One Text per point (data coordinates), in the points' order. `obstacles`: pixel Bboxes
    the labels should keep off (markers, error bars). Call once the axes' limits and position
    are final: placement is in pixels."""
    from matplotlib.transforms import ScaledTranslation

    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    inside = ax.get_window_extent(renderer)
    marks = np.array([b.extents for b in obstacles]).reshape(-1, 4)
    labels = np.zeros((0, 4))
    placed = []

    def put(label: Any, off: tuple[float, float], dx: float, dy: float) -> Any:
        ha, va = _align(dx, dy)
        label.set_ha(ha)
        label.set_va(va)
        shift = ScaledTranslation(off[0] / 72, off[1] / 72, fig.dpi_scale_trans)
        label.set_transform(ax.transData + shift)
        return label.get_window_extent(renderer).padded(3)  # a little air around the text

    for i, ((x, y), text) in enumerate(zip(points, texts, strict=True)):
        label = ax.text(x, y, text, **((styles or [{}] * len(points))[i]))
        best: tuple[float, tuple[float, float], float, float, Any] | None = None
        for radius in RADII:
            for dx, dy in DIRECTIONS:
                norm = math.hypot(dx, dy)
                off = (radius * dx / norm, radius * dy / norm)
                box = put(label, off, dx, dy)
                out = not (inside.x0 <= box.x0 and box.x1 <= inside.x1)
                out = out or not (inside.y0 <= box.y0 and box.y1 <= inside.y1)
                score = OUTSIDE * out + LABEL * _hits(box, labels) + _hits(box, marks)
                if best is None or score < best[0]:
                    best = (score, off, dx, dy, box)
                if score == 0:
                    break
            if best is not None and best[0] == 0:
                break
        assert best is not None
        _, off, dx, dy, _ = best
        box = put(label, off, dx, dy)
        if math.hypot(*off) >= LEADER_FROM:
            ax.annotate(
                "",
                (x, y),
                xytext=off,
                textcoords="offset points",
                arrowprops={"arrowstyle": "-", "color": "0.55", "lw": 1.2, "shrinkA": 0},
            )
        labels = np.vstack([labels, box.extents])
        placed.append(label)
    return placed
