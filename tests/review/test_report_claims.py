"""The report's lecture claims and comparisons carry Welch 95% CIs over seeds (fake sweeps)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, run_command
from scipy import stats

from poolbench.errors import ConfigError
from poolbench.review import claims as lecture_claims
from poolbench.review.claims import claims
from poolbench.review.comparisons import comparison_line, comparisons
from poolbench.review.report import report
from poolbench.review.runs import find_jobs
from poolbench.review.stats import Row, summarize

RESULTS_DOC = ROOT / "scripts" / "results_doc.sh"

PARAMS = {  # what the nets really count (README): max/avg share a count, stride adds 5,168
    ("flatten", "max"): 270_942,
    ("flatten", "avg"): 270_942,
    ("flatten", "stride"): 276_110,
    ("global", "max"): 32_862,
    ("global", "avg"): 32_862,
}


def write_job(job: Path, head: str, pool: str, seed: int, acc: float | None) -> None:
    job.mkdir(parents=True)
    metrics = {} if acc is None else {"test/acc": acc, "val/acc_best": acc + 0.01}
    results = {
        "status": "ok" if acc is not None else "failed",
        "choices": {"head": head, "pool": pool},
        "params": {"total": PARAMS[head, pool]},
        "flops_per_image": 9_048_400,
        "metrics": metrics,
        "epochs": 3,
    }
    (job / "results.json").write_text(json.dumps(results))
    (job / ".hydra").mkdir()
    overrides = [f"head={head}", f"pool={pool}", f"seed={seed}"]
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"seed": seed}))


def fake_sweep(root: Path, arms: dict[tuple[str, str], list[float | None]]) -> Path:
    """One job folder per (head, pool, seed), numbered as Hydra numbers a sweep's jobs."""
    n = 0
    for (head, pool), accs in arms.items():
        for seed, acc in enumerate(accs):
            write_job(root / str(n), head, pool, seed, acc)
            n += 1
    return root


def rows_of(tmp_path: Path, arms: dict[tuple[str, str], list[float | None]]) -> list[Row]:
    return summarize(find_jobs(fake_sweep(tmp_path / "sweep", arms)))


def welch_by_hand(a: list[float], b: list[float]) -> tuple[float, float]:
    """The textbook formulas, written out apart from the report's code."""
    mean_a, mean_b = sum(a) / len(a), sum(b) / len(b)
    var_a = sum((x - mean_a) ** 2 for x in a) / (len(a) - 1)
    var_b = sum((x - mean_b) ** 2 for x in b) / (len(b) - 1)
    se2_a, se2_b = var_a / len(a), var_b / len(b)
    df = (se2_a + se2_b) ** 2 / (se2_a**2 / (len(a) - 1) + se2_b**2 / (len(b) - 1))
    half = stats.t.ppf(0.975, df) * math.sqrt(se2_a + se2_b)
    diff = mean_a - mean_b
    return 100 * (diff - half), 100 * (diff + half)


MAX, AVG = [0.70, 0.71, 0.72], [0.68, 0.69, 0.73]


def test_comparison_carries_the_welch_interval(tmp_path: Path) -> None:
    rows = rows_of(tmp_path, {("flatten", "max"): MAX, ("flatten", "avg"): AVG})
    (c,) = comparisons(rows)  # avg against the reference, max: a - b = avg - max
    assert (c["a"], c["b"]) == ("avg", "max")
    lo, hi = welch_by_hand(AVG, MAX)
    # By hand: diff -1.00 points, SE sqrt((1 + 7) / 3) = 1.633 points, df 64 / 25 = 2.56,
    # t(0.975, 2.56) = 3.5154 -> -1 -/+ 5.7407.
    assert c["delta_points"] == pytest.approx(-1.0)
    assert (lo, hi) == pytest.approx((-6.7407, 4.7407), abs=1e-4)
    assert c["ci_points"] == pytest.approx((lo, hi), rel=1e-12, abs=1e-12)
    line = comparison_line(c)
    assert f"(-1.00 points, 95% CI {lo:+.2f} to {hi:+.2f}; means over 3 and 3 seeds)" in line
    assert line.startswith(
        "pool=avg vs pool=max (head=flatten): 270,942 vs 270,942 parameters (x1.00), "
        "test/acc 70.00% vs 71.00% (-1.00 points, 95% CI -6.74 to +4.74; "
    )


def test_comparison_of_single_seeds_keeps_the_old_wording(tmp_path: Path) -> None:
    rows = rows_of(tmp_path, {("flatten", "max"): [0.70], ("flatten", "avg"): [0.68, 0.69]})
    (c,) = comparisons(rows)
    assert c["ci_points"] is None
    assert comparison_line(c).endswith("(-1.50 points; means over 2 and 1 seeds)")


def test_claim_without_a_resolved_difference(tmp_path: Path) -> None:
    rows = rows_of(tmp_path, {("flatten", "max"): MAX, ("flatten", "avg"): AVG})
    lo, hi = welch_by_hand(AVG, MAX)  # the claim reads avg - max, as the comparisons do
    assert claims(rows) == [
        "Average vs max pooling (head=flatten): 70.00% vs 71.00% test accuracy, "
        f"-1.00 points (95% CI {lo:+.2f} to {hi:+.2f} over 3 vs 3 seeds): "
        "no difference resolved with 3 seeds."
    ]


def test_claim_verdicts_follow_the_interval(tmp_path: Path) -> None:
    flatten_max = [0.70, 0.71, 0.72]
    rows = rows_of(
        tmp_path,
        {
            ("flatten", "max"): flatten_max,
            ("flatten", "avg"): [0.60, 0.61, 0.63],  # well below max: max pooling wins
            ("global", "max"): [0.50, 0.52, 0.51],  # well below: the flatten head wins
            ("flatten", "stride"): [0.64, 0.66, 0.65],  # below max: max pooling wins over stride
        },
    )
    pools, heads, stride = claims(rows)
    lo, hi = welch_by_hand([0.60, 0.61, 0.63], flatten_max)
    assert pools == (
        "Average vs max pooling (head=flatten): 61.33% vs 71.00% test accuracy, "
        f"-9.67 points (95% CI {lo:+.2f} to {hi:+.2f} over 3 vs 3 seeds): "
        "max pooling is better at this budget."
    )
    assert hi < 0
    assert heads.startswith(
        "Global vs flatten head (pool=max): 51.00% vs 71.00% test accuracy "
        "with 32,862 vs 270,942 parameters, -20.00 points (95% CI "
    )
    assert heads.endswith("): the flatten head is better at this budget.")
    assert stride.startswith(
        "Strided conv vs max pooling (head=flatten): 65.00% vs 71.00% test accuracy "
        "with 276,110 vs 270,942 parameters, -6.00 points (95% CI "
    )
    assert stride.endswith("over 3 vs 3 seeds): max pooling is better at this budget.")
    hi_stride = float(re.search(r"95% CI \S+ to (\S+) over", stride).group(1))
    assert hi_stride < 0


def test_claims_need_both_arms_with_test_accuracy(tmp_path: Path) -> None:
    rows = rows_of(
        tmp_path,
        {
            ("flatten", "max"): MAX,
            ("global", "max"): [None, None],  # both seeds failed: no test accuracy
            ("flatten", "stride"): [0.70, 0.69],
        },
    )
    (stride,) = claims(rows)  # no avg pooling ran; global has nothing to compare
    assert stride.startswith("Strided conv vs max pooling")
    assert "no difference resolved with 2 vs 3 seeds." in stride


def test_claims_skip_variants(tmp_path: Path) -> None:
    rows = rows_of(tmp_path, {("flatten", "max"): MAX, ("flatten", "avg"): AVG})
    for r in rows:
        r.variant = "optimizer.lr=0.01"
    assert claims(rows) == []


def test_a_single_seed_gives_no_interval(tmp_path: Path) -> None:
    rows = rows_of(tmp_path, {("flatten", "max"): [0.71], ("global", "max"): [0.65, 0.66]})
    assert claims(rows) == [
        "Global vs flatten head (pool=max): 65.50% vs 71.00% test accuracy "
        "with 32,862 vs 270,942 parameters, -5.50 points (2 vs 1 seeds; one seed: no interval)."
    ]


def shipped_claims() -> dict:
    """claims.yaml as installed with the package."""
    from importlib import resources

    source = resources.files("poolbench.review").joinpath(lecture_claims.CLAIMS_FILE)
    return yaml.safe_load(source.read_text())


def test_a_claim_added_to_the_yaml_needs_no_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = shipped_claims()
    assert data["reference"] == {"head": "flatten", "pool": "max"}
    assert [(c["axis"], c["a"], c["b"]) for c in data["claims"]] == [
        ("pool", "avg", "max"),
        ("head", "global", "flatten"),
        ("pool", "stride", "max"),
    ]
    new = {"title": "Average vs max pooling", "axis": "pool", "a": "avg", "b": "max"}
    data["claims"].append(new | {"fixed": {"head": "global"}})  # a teacher's fourth claim
    monkeypatch.setattr(lecture_claims, "lecture", lambda: lecture_claims.parse(data))
    rows = rows_of(
        tmp_path,
        {
            ("flatten", "max"): MAX,
            ("global", "max"): [0.60, 0.61, 0.62],
            ("global", "avg"): [0.66, 0.67, 0.68],
        },
    )
    heads, teachers = claims(rows)  # no avg or stride with the flatten head: those two skip
    assert heads.startswith("Global vs flatten head (pool=max): 61.00% vs 71.00%")
    lo, hi = welch_by_hand([0.66, 0.67, 0.68], [0.60, 0.61, 0.62])
    assert teachers == (
        "Average vs max pooling (head=global): 67.00% vs 61.00% test accuracy, "
        f"+6.00 points (95% CI {lo:+.2f} to {hi:+.2f} over 3 vs 3 seeds): "
        "average pooling is better at this budget."
    )
    assert lo > 0


def test_a_claim_the_page_cannot_state_is_one_config_error() -> None:
    def error(change: dict) -> str:
        data = shipped_claims()
        data["claims"].append(
            {"title": "T", "axis": "pool", "a": "avg", "b": "max", "fixed": {"head": "global"}}
            | change
        )
        with pytest.raises(ConfigError) as err:
            lecture_claims.parse(data, "claims.yaml")
        return str(err.value)

    assert lecture_claims.parse(shipped_claims()) == lecture_claims.lecture()
    assert error({"a": "max", "b": "avg"}) == (
        "claims.yaml: claim 4 (T): b is the reference pool (max) and a another one, so that "
        "every difference reads alike; got a=max, b=avg"
    )
    assert error({"a": "blur"}) == "claims.yaml: claim 4 (T): arm_names has no name for pool=blur"
    assert error({"fixed": {"pool": "max"}}) == (
        "claims.yaml: claim 4 (T): fixed names the head it holds, e.g. {head: ...}"
    )
    assert error({"axis": "model"}) == (
        "claims.yaml: claim 4 (T): axis is head or pool, got 'model'"
    )


def test_report_states_the_claims_before_the_comparisons(tmp_path: Path) -> None:
    sweep = fake_sweep(
        tmp_path / "sweep",
        {("flatten", "max"): MAX, ("flatten", "avg"): AVG, ("global", "max"): [0.60, 0.62, 0.61]},
    )
    text = report(sweep).read_text()
    lines = text.splitlines()
    section = lines.index("## The lecture's claims")
    assert section < lines.index("## Comparisons")
    assert lines[section + 2].startswith("Each difference reads a - b")
    bullets = lines[section + 4 : section + 6]
    assert bullets == [f"- {s}" for s in claims(summarize(find_jobs(sweep)))]
    assert bullets[0].startswith("- Average vs max pooling (head=flatten): 70.00% vs 71.00%")
    assert bullets[0].endswith("no difference resolved with 3 seeds.")
    assert bullets[1].startswith("- Global vs flatten head (pool=max): 61.00% vs 71.00%")
    assert bullets[1].endswith("the flatten head is better at this budget.")
    assert lines[section + 6] == ""  # then the comparisons, as before but with their CIs
    # one sign convention: the claim's difference is the comparison's for the same pair
    claim_ci = re.search(r"95% CI (\S+) to (\S+) over", bullets[0]).groups()
    lo, hi = welch_by_hand(AVG, MAX)
    assert f"(-1.00 points, 95% CI {lo:+.2f} to {hi:+.2f}; means over 3 and 3 seeds)" in text
    assert claim_ci == (f"{lo:+.2f}", f"{hi:+.2f}")


def two_part_sweep(root: Path) -> Path:
    """A GPU sweep of 12 jobs run in two parts: seeds 0 and 1, then seed 2 later."""
    arms = {
        ("flatten", "max"): MAX,
        ("flatten", "avg"): AVG,
        ("flatten", "stride"): [0.74, 0.75, 0.76],
        ("global", "max"): [0.60, 0.62, 0.61],
    }
    n = 0
    for (head, pool), accs in arms.items():
        for seed, acc in enumerate(accs):
            write_job(
                root / ("seeds_0_1" if seed < 2 else "seeds_2") / str(n), head, pool, seed, acc
            )
            n += 1
    for f in root.rglob("results.json"):  # what a GPU job records beside its metrics
        start = 0 if "seeds_0_1" in f.parts else 10_000
        start += 10 * int(f.parent.name)
        results = json.loads(f.read_text())
        results |= {"started_at": start, "ended_at": start + 60, "seconds": 60}
        results |= {"device": {"name": "NVIDIA H200", "accelerator": "cuda", "host": "h"}}
        results |= {"fast_path": {"stack": 16, "cuda_graph": True}}
        f.write_text(json.dumps(results))
    return root


@pytest.mark.slow
def test_results_doc_from_a_sweep_in_two_parts(tmp_path: Path) -> None:
    import sys

    root = two_part_sweep(tmp_path / "heads_x_pools")
    doc = tmp_path / "docs" / "results.md"
    env = {"SWEEP_DIR": str(root), "DOC": str(doc), "WALL": "200", "NOTE": "", "PY": sys.executable}
    out = run_command(["bash", str(RESULTS_DOC)], env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    text = doc.read_text()
    intro = " ".join(text.split("\n\n")[1].split())
    assert "12 jobs in all, each trained for **3 epochs** with 3 seeds" in intro
    assert "batch 128; stacks of 16 steps, each a CUDA graph replay)" in intro
    assert max(len(line) for line in text.split("\n\n")[1].splitlines()) <= 100
    assert (
        "| `head=flatten` | Flatten the last feature map (C*H*W features): the lecture's "
        "270,942-parameter net. |" in text
    )
    assert (
        "| `pool=stride` | A learned Conv2d(C, C, kernel_size, stride): downsampling that costs "
        "parameters (in_channels and out_channels come from the block). |" in text
    )
    described = [line.split("`")[1] for line in text.splitlines() if line.startswith("| `")]
    assert described == ["head=flatten", "head=global", "pool=avg", "pool=max", "pool=stride"]
    hardware = "Hardware: one NVIDIA H200, 12 jobs at once on it, 200 s from the command to its"
    assert f"{hardware} report (3 min)." in text
    assert "## Sweep: heads_x_pools" in text
    # Part seeds_0_1: jobs 0..10 start at 10 x their number, last ends at 160 s; part seeds_2:
    # jobs 2..11 start at 10,020..10,110, last ends at 10,170: 160 + 150 s, the gap not counted.
    assert "Sweep cost: 12 jobs in 5.2 min wall-clock over 2 parts (139 jobs/hour)" in text
    assert "- Strided conv vs max pooling (head=flatten): 75.00% vs 71.00%" in text
    assert "![accuracy vs parameters](heads_x_pools_accuracy_vs_params.png)" in text
    png = (doc.parent / "heads_x_pools_accuracy_vs_params.png").read_bytes()
    assert png == (root / "accuracy_vs_params.png").read_bytes()


def fake_python(tmp_path: Path, gpu: bool) -> tuple[Path, Path]:
    """A stand-in for python that records its calls and answers the script's GPU probe."""
    calls = tmp_path / "calls.txt"
    stub = tmp_path / "python"
    stub.write_text(
        "#!/bin/bash\n"
        f'echo "$*" >> {calls}\n'
        f'case "$*" in *torch.cuda.is_available*) exit {0 if gpu else 1};; esac\n'
    )
    stub.chmod(0o755)
    return stub, calls


def test_results_doc_without_a_gpu_says_so_before_any_job(tmp_path: Path) -> None:
    stub, calls = fake_python(tmp_path, gpu=False)
    doc = tmp_path / "results.md"
    env = {"PY": str(stub), "DOC": str(doc), "SWEEP_DIR": "", "RUNS_DIR": str(tmp_path / "runs")}
    out = run_command(["bash", str(RESULTS_DOC), str(tmp_path / "data")], env=env, timeout=60)
    assert out.returncode == 2
    assert out.stderr.startswith(
        "error: scripts/results_doc.sh runs sweep=lecture_grid x 20 epochs and needs"
    )
    assert "pass SWEEP_DIR=" in out.stderr and not doc.exists()
    assert len(calls.read_text().splitlines()) == 1  # the probe, and no job


def test_results_doc_on_a_gpu_runs_its_sweeps_then_the_doc(tmp_path: Path) -> None:
    stub, calls = fake_python(tmp_path, gpu=True)
    runs, doc = tmp_path / "runs", tmp_path / "results.md"
    (runs / "old").mkdir(parents=True)  # a previous sweep's folder is emptied first
    env = {"PY": str(stub), "DOC": str(doc), "SWEEP_DIR": "", "RUNS_DIR": str(runs)}
    out = run_command(["bash", str(RESULTS_DOC), "/data/cifar"], env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = calls.read_text().splitlines()
    common = (
        "hydra/launcher=joblib_gpus placement.jobs_per_gpu=12 data=folder data.root=/data/cifar "
        "trainer.max_epochs=20 trainer.enable_progress_bar=false"
    )
    # the page's own grid (36 jobs), then the lecture's two nets the lecture's way
    assert lines[1] == (
        f"train.py -m sweep=lecture_grid seed=0,1,2 {common} hydra.sweep.dir={runs}/lecture_grid"
    )
    assert lines[2] == (
        "train.py -m sweep=seed_nets seed=0,1,2 model.init=default tta=none "
        f"{common} hydra.sweep.dir={runs}/lecture_way"
    )
    assert lines[3] == f"scripts/report.py {runs}/lecture_grid {runs}/lecture_way"
    assert lines[-1].startswith(
        f"scripts/report.py {runs}/lecture_grid {runs}/lecture_way --doc {doc} --preface "
    )
    assert not (runs / "old").exists()
    # GRID=heads_x_pools: the full grid instead
    calls.write_text("")
    out = run_command(
        ["bash", str(RESULTS_DOC), "/data/cifar"], env=env | {"GRID": "heads_x_pools"}
    )
    assert out.returncode == 0, out.stderr
    assert calls.read_text().splitlines()[1].startswith("train.py -m sweep=heads_x_pools seed=")


@pytest.mark.slow
def test_results_doc_refuses_parts_run_differently(tmp_path: Path) -> None:
    import sys

    root = two_part_sweep(tmp_path / "heads_x_pools")
    for f in (root / "seeds_2").rglob("results.json"):  # the later part ran 20 epochs
        f.write_text(json.dumps(json.loads(f.read_text()) | {"epochs": 20}))
    doc = tmp_path / "results.md"
    env = {"SWEEP_DIR": str(root), "DOC": str(doc), "WALL": "", "NOTE": "", "PY": sys.executable}
    out = run_command(["bash", str(RESULTS_DOC)], env=env, timeout=300)
    assert out.returncode == 2
    assert out.stderr.strip() == (
        f"error: the jobs under {root} ran with different epochs (20, 3); pass a folder of one "
        "sweep's jobs, run alike"
    )
    assert not doc.exists()
