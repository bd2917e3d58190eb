"""poolbench-report across seeds: mean ± std, the kNN column, results.csv and --doc's page."""

import csv
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import FAST, make_cfg, read_results, run_cli


@pytest.mark.ci
def test_report_across_seeds_with_knn_column_and_doc(seed_sweep: Path, tmp_path: Path) -> None:
    from poolbench.review.embed import embed

    jobs = [seed_sweep / str(i) for i in (0, 1)]
    data = [*FAST[:3], f"data.cache_dir={seed_sweep.parent}/cache"]
    # embed.py on the training split: every training image, a leave-one-out kNN score.
    ckpt0 = read_results(jobs[0])["best_checkpoint"]
    out = run_cli(["scripts/embed.py", f"ckpt_path={ckpt0}", *data, "split=train", "knn_k=5"])
    assert out.returncode == 0, out.stderr[-3000:]
    assert np.load(jobs[0] / "embeddings.npy").shape == (540, 64)
    labels = np.load(jobs[0] / "labels.npy")
    assert labels.shape == (540,) and sorted(set(labels.tolist())) == list(range(10))
    knn0 = read_results(jobs[0])["metrics"]["embed/knn_acc"]
    assert f"embed/knn_acc {knn0:.4f}" in out.stdout and knn0 > 0.2
    ckpt1 = read_results(jobs[1])["best_checkpoint"]
    cfg = make_cfg(
        [*data, f"ckpt_path={ckpt1}", "split=train", "knn_k=5"], tmp_path, config="embed"
    )
    assert embed(cfg)["n_queries"] == 540

    doc = tmp_path / "docs" / "sweeps.md"
    cli = Path(sys.executable).with_name("poolbench-report")
    rep = subprocess.run(
        [str(cli), str(seed_sweep), "--doc", str(doc)], capture_output=True, text=True, timeout=300
    )
    assert rep.returncode == 0, rep.stderr[-3000:]
    results = [read_results(j) for j in jobs]

    def mean_std(key: str) -> str:
        values = [100 * r["metrics"][key] for r in results]
        return f"{statistics.fmean(values):.2f} ± {np.std(values, ddof=1):.2f}"

    text = (seed_sweep / "report.md").read_text()
    assert "| kNN acc % |" in text
    row = next(line for line in text.splitlines() if line.startswith("| global | max |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2:6] == ["32,862", "9.05", mean_std("val/acc_best"), mean_std("test/acc")]
    assert cells[6] == mean_std("embed/knn_acc") and cells[-1] == "2/2"
    assert results[0]["metrics"]["test/acc"] != results[1]["metrics"]["test/acc"]  # two seeds
    assert row in rep.stdout
    with (seed_sweep / "results.csv").open() as f:
        csv_rows = sorted(csv.DictReader(f), key=lambda r: r["seed"])
    assert [r["seed"] for r in csv_rows] == ["0", "1"]
    for r, job in zip(csv_rows, results, strict=True):  # the kNN column too
        assert float(r["knn_acc"]) == pytest.approx(job["metrics"]["embed/knn_acc"])
    # --doc: one page, its plots copied beside it under names that its links use.
    page = doc.read_text()
    assert f"## Sweep: {seed_sweep.name}" in page and row in page
    for png in ("accuracy_vs_params.png", "curves.png"):
        link = f"{seed_sweep.name}_{png}"
        assert f"]({link})" in page
        assert (doc.parent / link).read_bytes() == (seed_sweep / png).read_bytes()
