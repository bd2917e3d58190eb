"""`poolbench-figures OUT SWEEP_OR_RUN_DIR…`: the lecture's figure set from trained runs.

Writes into OUT, each 16:9 at 1920x1080 with type readable from the back of a room:
pooling.png (max vs average pooling on one of the runs' test images), params_per_layer.png and
shapes.png (the lecture's two nets, built from the configs), train_vs_val.png and
accuracy_vs_params.png (over every run given), run_review.png (one run: confusion matrix,
most confident mistakes, activations; --run, else the flatten/max net's first seed).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from poolbench.errors import OneLineArgumentParser, UserError, answered
from poolbench.review.figures.style import LECTURE_NETS, lecture_style, save

FIGURES = (
    "pooling.png",
    "params_per_layer.png",
    "shapes.png",
    "train_vs_val.png",
    "accuracy_vs_params.png",
    "run_review.png",
)


def review_run_dir(jobs: list[Any], run: Path | None) -> Path:
    """--run, else the lecture's flatten/max net's first seed, else the first finished run."""
    if run is not None:
        if not (run / "results.json").is_file() and not (run / "checkpoints").is_dir():
            raise UserError(
                f"--run {run} is not a run folder (no results.json or checkpoints/); pass one "
                "of the run folders under the sweep"
            )
        return run
    head, pool = LECTURE_NETS[0]
    ok = [j for j in jobs if j.ok] or jobs
    lecture = [j for j in ok if (j.results.get("choices") or {}).get("head") == head]
    lecture = [j for j in lecture if j.results["choices"].get("pool") == pool]
    by_seed = sorted(lecture, key=lambda j: (j.seed is None, j.seed if j.seed is not None else 0))
    return (by_seed or ok)[0].dir


def make_figures(
    out: Path, dirs: list[Path], run: Path | None = None, image: Path | None = None
) -> list[Path]:
    """Every figure into `out`; bad input raises a UserError before any figure is drawn."""
    from poolbench.review.figures import nets, pooling, review, scatter, sweep

    if out.exists() and not out.is_dir():
        raise UserError(f"{out} is a file; pass a folder for the figures (made if missing)")
    if image is not None and not image.is_file():
        raise UserError(f"--image {image} does not exist; pass a photo file")
    jobs = sweep.load_jobs(dirs)
    run_dir = review_run_dir(jobs, run)
    review.best_checkpoint(run_dir)  # a run without one is named now, not after five figures
    written = []
    with lecture_style():
        if image is None:
            img, what = pooling.run_image(run_dir)
        else:
            from poolbench.review.pictures import sample_photo

            img, what = sample_photo(image, pooling.image_size(run_dir)), image.name
        drawn = [("pooling.png", lambda: pooling.pooling_figure(img, what))]
        lecture = nets.lecture_nets()
        drawn += [
            ("params_per_layer.png", lambda: nets.params_figure(lecture)),
            ("shapes.png", lambda: nets.shapes_figure(lecture)),
            ("train_vs_val.png", lambda: sweep.train_vs_val_figure(jobs)),
            ("accuracy_vs_params.png", lambda: scatter.accuracy_vs_params_figure(jobs)),
            ("run_review.png", lambda: review.run_review_figure(review.review_run(run_dir))),
        ]
        for name, draw in drawn:
            fig, _ = draw()
            written.append(save(fig, out / name))
            print(f"wrote {out / name}", flush=True)
    return written


def main(argv: list[str] | None = None) -> int:
    """`poolbench-figures`: bad input is one error: line, exit 2."""
    parser = OneLineArgumentParser(
        prog="poolbench-figures", description=__doc__.split("\n\n")[0].strip("`")
    )
    parser.add_argument("out", type=Path, metavar="OUT", help="folder for the figures")
    parser.add_argument(
        "dirs", nargs="+", type=Path, metavar="SWEEP_OR_RUN_DIR", help="trained runs or sweeps"
    )
    parser.add_argument(
        "--run", type=Path, help="the run reviewed in run_review.png (default: flatten/max seed 0)"
    )
    parser.add_argument(
        "--image", type=Path, help="a photo for pooling.png (default: a test image of the runs)"
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    answered(make_figures, args.out, args.dirs, args.run, args.image)
    return 0


if __name__ == "__main__":
    sys.exit(main())
