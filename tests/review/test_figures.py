"""poolbench-figures: each lecture figure checked by the data it drew (counts, shapes, pooled
pixels, bands, points, confusion), its text boxes, and the pictures the command writes."""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import FAST, run_cli
from PIL import Image
from torch.nn import functional as F

from poolbench.review.figures import cli, nets, pooling, review, scatter, sweep
from poolbench.review.figures.style import lecture_style
from poolbench.review.runs import Job

FLAT, GLOB = "head=flatten pool=max", "head=global pool=max"


def close(fig: Any) -> None:
    from poolbench.review.plotting import pyplot

    pyplot().close(fig)


def texts(fig: Any) -> list[Any]:
    """Every visible text drawn (tick labels exist once the figure is drawn)."""
    from matplotlib.text import Text

    fig.canvas.draw()
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]


def overlapping(boxes: list[Any]) -> list[tuple[int, int]]:
    return [
        (i, j) for i, a in enumerate(boxes) for j, b in enumerate(boxes) if i < j and a.overlaps(b)
    ]


# ---------------------------------------------------------------------------------------------
# the lecture's nets: fast, no training


@pytest.fixture(scope="module")
def lecture() -> dict[str, Any]:
    return nets.lecture_nets()


def test_params_per_layer_add_up_to_the_nets_totals(lecture: dict[str, Any]) -> None:
    with lecture_style():
        fig, data = nets.params_figure(lecture)
        drawn = texts(fig)
    assert data[FLAT]["total"] == 270_942 and data[GLOB]["total"] == 32_862
    for name, net in lecture.items():
        assert sum(data[name]["layers"].values()) == data[name]["total"]
        assert data[name]["total"] == sum(p.numel() for p in net.parameters())
    assert data[FLAT]["layers"]["classifier.0"] == 245_880  # 2048 x 120 + 120
    assert data[GLOB]["layers"]["classifier.0"] == 7_800  # 64 x 120 + 120
    # the bars are the counts, and each count is written on its bar
    ax = fig.axes[0]
    heights = sorted(int(p.get_height()) for p in ax.patches if p.get_height() > 0)
    assert heights == sorted(c for d in data.values() for c in d["layers"].values())
    words = {t.get_text() for t in drawn}
    assert {"245,880", "7,800", "12,832", "1,216"} <= words
    assert min(t.get_fontsize() for t in drawn) >= 14  # readable from the back of the room
    close(fig)


def test_shape_diagram_lists_every_layers_output(lecture: dict[str, Any]) -> None:
    with lecture_style():
        fig, data = nets.shapes_figure(lecture)
        drawn = texts(fig)
    maps = ["3×32×32", "16×32×32", "16×16×16", "32×16×16", "32×8×8"]  # padding 2, kernel 5
    assert [r["shape"] for r in data[FLAT]] == [*maps, "2048", "120", "84", "10"]
    assert [r["shape"] for r in data[GLOB]] == [*maps, "64", "120", "84", "10"]
    convs = [r for r in data[FLAT] if r["kind"] == "Conv2d"]
    assert [r["note"] for r in convs] == ["5×5, pad 2\nstride 1"] * 2
    # every shape is written on the figure, once per net
    words = [t.get_text() for t in drawn]
    for shape in ("16×32×32", "32×8×8", "2048", "64"):
        assert words.count(shape) == (2 if shape in maps else 1), shape
    assert min(t.get_fontsize() for t in drawn) >= 13
    close(fig)


def test_pooling_panels_are_max_and_average_pooling_of_the_image() -> None:
    img = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(0))
    with lecture_style():
        fig, panels = pooling.pooling_figure(img, "a test image")
        drawn = texts(fig)
    for k in (2, 4):
        torch.testing.assert_close(panels[f"max {k}×{k}"], F.max_pool2d(img[None], k)[0])
        torch.testing.assert_close(panels[f"avg {k}×{k}"], F.avg_pool2d(img[None], k)[0])
    # what each panel shows is that array (drawn in this order), titled with its shapes
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == len(panels) == 5
    for ax, (name, x) in zip(shown, panels.items(), strict=True):
        np.testing.assert_allclose(ax.images[0].get_array(), x.permute(1, 2, 0).numpy())
        mode, _, kernel = name.partition(" ")
        assert (
            ax.get_title().startswith({"avg": "average"}.get(mode, mode))
            and kernel in ax.get_title()
        )
    titles = " | ".join(ax.get_title() for ax in shown)
    assert titles.count("32×32 → 16×16") == 2 and titles.count("32×32 → 8×8") == 2
    assert min(t.get_fontsize() for t in drawn) >= 14
    close(fig)


def test_a_folder_runs_pooling_image_is_its_first_test_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    root = tmp_path / "images"
    for split in ("train", "test"):
        for cls in ("ant", "bee"):
            (root / split / cls).mkdir(parents=True)
            other = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(other).save(root / split / cls / "b.png")
    Image.fromarray(pixels).save(root / "test" / "ant" / "a.png")  # sorts first
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text(f"data:\n  source: folder\n  root: {root}\n")
    (run / ".hydra" / "hydra.yaml").write_text(
        "hydra:\n  runtime:\n    choices:\n      data: folder\n"
    )
    img, what = pooling.run_image(run)
    np.testing.assert_allclose(img.permute(1, 2, 0).numpy(), pixels / 255, atol=1e-6)
    assert what == "a.png (ant)"


def fake_jobs(grid: dict[tuple[str, str], tuple[int, list[float]]]) -> list[Job]:
    """Finished runs as report.find_jobs reads them: (head, pool) -> (params, test/acc per seed)."""
    jobs = []
    for (head, pool), (params, accs) in grid.items():
        for seed, acc in enumerate(accs):
            results = {
                "status": "ok",
                "choices": {"head": head, "pool": pool},
                "params": {"total": params},
                "metrics": {"test/acc": acc},
            }
            jobs.append(Job(Path(f"/runs/{head}-{pool}-{seed}"), results, seed, {}))
    return jobs


def check_scatter(fig: Any, data: dict[str, Any]) -> None:
    """Every point visible and labelled apart, readable ticks, limits fitted to the data."""
    ax = fig.axes[0]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    points = data["points"]
    pixels = ax.transData.transform([(p["x"], p["acc_mean"]) for p in points])
    size = 13 * fig.dpi / 72  # the markers' size in pixels
    for i, a in enumerate(pixels):
        for j, b in enumerate(pixels[:i]):
            assert np.abs(a - b).max() >= size * 0.9, (points[i]["label"], points[j]["label"])
    boxes = [p["text"].get_window_extent(renderer) for p in points]
    assert overlapping(boxes) == []
    inside = ax.get_window_extent(renderer)
    assert all(inside.x0 <= b.x0 and b.x1 <= inside.x1 for b in boxes)
    assert all(inside.y0 <= b.y0 and b.y1 <= inside.y1 for b in boxes)
    # log-x ticks as round counts (30k, 100k, …), the axis no wider than the data needs
    params = [p["params"] for p in points]
    lo, hi = ax.get_xlim()
    assert min(params) / 3 < lo < min(params) and max(params) < hi < max(params) * 3
    y_lo = min(p["acc_mean"] - p["acc_std"] for p in points)
    y_hi = max(p["acc_mean"] + p["acc_std"] for p in points)
    bottom, top = ax.get_ylim()
    assert bottom < y_lo and y_hi < top and top - bottom <= 1.5 * max(y_hi - y_lo, 1.0)
    labels = [t.get_text() for t in ax.get_xticklabels() if lo <= t.get_position()[0] <= hi]
    assert labels == data["xticklabels"] and len(labels) >= 2
    assert all(s[:-1].replace(".", "").isdigit() and s[-1] in "kM" for s in labels), labels
    # two legends: heads by marker, pools by a swatch with no marker of a head's
    head_legend, pool_legend = (c for c in ax.get_children() if type(c).__name__ == "Legend")
    head_marks = [h.get_marker() for h in head_legend.legend_handles]
    assert len(set(head_marks)) == len(head_marks) == len({p["head"] for p in points})
    assert all(not hasattr(h, "get_marker") for h in pool_legend.legend_handles)


def test_points_with_equal_parameter_counts_stay_visible_and_labelled_apart() -> None:
    # head=avg and head=max have the same count; pools without weights share their head's;
    # a crowd of equal accuracies is the hard case.
    grid = {}
    for head, params in (
        ("flatten", 270_942),
        ("global", 32_862),
        ("avg", 24_670),
        ("max", 24_670),
    ):
        for pool, extra in (("max", 0), ("avg", 0), ("blur", 0), ("stride", 5_168)):
            grid[(head, pool)] = (params + extra, [0.6, 0.62])
    with lecture_style():
        fig, data = scatter.accuracy_vs_params_figure(fake_jobs(grid))
        check_scatter(fig, data)
    points = data["points"]
    assert len(points) == 16 and len({(p["x"], p["acc_mean"]) for p in points}) == 16
    named = [p["text"].get_text() for p in points if p["lecture"]]
    assert sorted(named) == [
        "flatten/max: the lecture's flatten net",
        "global/max: the lecture's global net",
    ]
    close(fig)


def test_bad_input_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    def error(*args: str) -> str:
        with pytest.raises(SystemExit) as stop:
            cli.main([str(a) for a in args])
        assert stop.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: "), err
        return err[0]

    (tmp_path / "empty").mkdir()
    assert "no results.json under" in error(tmp_path / "out", tmp_path / "empty")
    assert "is not a folder" in error(tmp_path / "out", tmp_path / "nowhere")
    assert not (tmp_path / "out").exists()  # nothing written before the input is judged
    assert "required" in error(tmp_path / "out")


# ---------------------------------------------------------------------------------------------
# a tiny sweep: flatten and global x pool=max x 2 seeds, 2 epochs, CSV metrics


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("figsweep")
    out = run_cli(
        [
            "train.py",
            "-m",
            *FAST,
            "head=flatten,global",
            "pool=max",
            "seed=0,1",
            "logger=csv",
            f"hydra.sweep.dir={base}/sweep",
            f"data.cache_dir={base}/cache",
        ]
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return base / "sweep"


def results_of(sweep_dir: Path) -> dict[str, list[tuple[Path, dict]]]:
    """{net: [(job folder, results.json)]}, seeds in order."""
    out: dict[str, list[tuple[Path, dict]]] = {}
    for job in sorted(p for p in sweep_dir.iterdir() if (p / "results.json").is_file()):
        r = json.loads((job / "results.json").read_text())
        out.setdefault(f"head={r['choices']['head']} pool={r['choices']['pool']}", []).append(
            (job, r)
        )
    return out


@pytest.mark.slow
def test_train_vs_val_bands_are_mean_and_std_over_seeds(swept: Path) -> None:
    with lecture_style():
        fig, data = sweep.train_vs_val_figure(sweep.load_jobs([swept]))
    assert list(data) == [FLAT, GLOB]
    for net, runs in results_of(swept).items():
        assert data[net]["seeds"] == len(runs) == 2
        for name, key in (("train", "train/acc"), ("val", "val/acc")):
            per_seed = []
            for job, _ in runs:  # by hand: the CSV logger's rows that carry the metric
                with (job / "csv" / "metrics.csv").open() as f:
                    rows = [r for r in csv.DictReader(f) if r[key]]
                per_seed.append({int(r["epoch"]): 100 * float(r[key]) for r in rows})
            assert data[net][name]["epochs"] == [1, 2]
            for i, epoch in enumerate((0, 1)):
                values = [s[epoch] for s in per_seed]
                assert data[net][name]["mean"][i] == pytest.approx(statistics.mean(values))
                assert data[net][name]["std"][i] == pytest.approx(statistics.stdev(values))
    # the lines drawn are the means (train solid, validation dashed), one panel per net
    for ax, net in zip(fig.axes, (FLAT, GLOB), strict=True):
        solid, dashed = (line for line in ax.lines if line.get_label() in ("train", "val"))
        np.testing.assert_allclose(solid.get_ydata(), data[net]["train"]["mean"])
        np.testing.assert_allclose(dashed.get_ydata(), data[net]["val"]["mean"])
        assert net in ax.get_title()
    close(fig)


@pytest.mark.slow
def test_accuracy_vs_params_points_are_the_runs_test_accuracies(swept: Path) -> None:
    with lecture_style():
        fig, data = scatter.accuracy_vs_params_figure(sweep.load_jobs([swept]))
        check_scatter(fig, data)
    by_net = {f"head={p['head']} pool={p['pool']}": p for p in data["points"]}
    for net, runs in results_of(swept).items():
        accs = [100 * r["metrics"]["test/acc"] for _, r in runs]
        p = by_net[net]
        assert p["params"] == runs[0][1]["params"]["total"] and p["seeds"] == 2
        assert p["acc_mean"] == pytest.approx(statistics.mean(accs))
        assert p["acc_std"] == pytest.approx(statistics.stdev(accs))
        assert p["lecture"] and "the lecture's" in p["text"].get_text()
    assert data["xticklabels"] == ["30k", "100k", "300k"]
    close(fig)


@pytest.mark.slow
def test_run_review_is_the_runs_best_checkpoint_on_its_test_set(swept: Path) -> None:
    runs = results_of(swept)[FLAT]
    job, results = runs[0]  # seed 0: the default review run
    assert cli.review_run_dir(sweep.load_jobs([swept]), None) == job
    with lecture_style():
        fig, data = review.run_review_figure(review.review_run(job))
    assert data["checkpoint"] == Path(results["best_checkpoint"])
    confusion, metrics = data["confusion"], results["metrics"]
    assert int(confusion.sum()) == 200  # data.n_test
    # the run's own test of its best checkpoint: accuracy, and per class (rows are true)
    assert data["accuracy"] == pytest.approx(metrics["test/acc"], abs=1e-6)
    for k, name in enumerate(data["classes"]):
        rate = float(confusion[k, k]) / max(1, int(confusion[k].sum()))
        assert rate == pytest.approx(metrics[f"test/acc_class/{name}"], abs=1e-6), name
    probs = [m["prob"] for m in data["mistakes"]]
    assert probs == sorted(probs, reverse=True) and len(probs) == review.MISTAKES
    assert all(m["true"] != m["pred"] for m in data["mistakes"])
    assert data["feature_shapes"] == [(16, 16, 16), (32, 8, 8)]
    close(fig)


@pytest.mark.ci
def test_the_command_writes_six_16_by_9_pictures(swept: Path, tmp_path: Path) -> None:
    out = run_cli(["-m", "poolbench.review.figures.cli", str(tmp_path / "figs"), str(swept)])
    assert out.returncode == 0, out.stderr[-3000:]
    for name in cli.FIGURES:
        assert f"wrote {tmp_path / 'figs' / name}" in out.stdout
        px = np.asarray(Image.open(tmp_path / "figs" / name).convert("RGB"))
        assert px.shape == (1080, 1920, 3), name  # 16:9, as a projector shows it
        colours = len(np.unique(px.reshape(-1, 3), axis=0))
        assert colours > 50 and px.std() > 20, (name, colours)  # not blank, not flat
    # --run names a missing folder: one line, exit 2, before any figure
    bad = run_cli(
        [
            "-m",
            "poolbench.review.figures.cli",
            str(tmp_path / "b"),
            str(swept),
            "--run",
            str(tmp_path / "nope"),
        ]
    )
    assert bad.returncode == 2 and bad.stderr.startswith("error: --run ")
    assert len(bad.stderr.strip().splitlines()) == 1 and not (tmp_path / "b").exists()
