import math
import re

import pytest
from conftest import ROOT, run_cli


def figure(text: str) -> float:
    """A printed figure ("1,234", "0.39", "-0.4"): it must parse as a finite number."""
    value = float(text.replace(",", ""))
    assert math.isfinite(value), text
    return value


def positive(text: str) -> float:
    value = figure(text)
    assert value > 0, text
    return value


def close(printed: float, exact: float, decimals: int) -> bool:
    """`printed` is `exact` rounded to `decimals`, where exact comes from rounded figures
    itself: allow half a unit of the last digit plus 2% for the rounding of its inputs."""
    return abs(printed - exact) <= 0.5 * 10**-decimals + 0.02 * abs(exact)


def rows(stdout: str) -> dict[str, str]:
    """Each table row, label -> figures (split at the first run of two or more spaces)."""
    table = {}
    for line in stdout.splitlines():
        if line.startswith(("(a)", "(b)", "(c)", "(d)", "(e)", "(f)", "(g)", "    with ")):
            label, value = re.split(r"\s{2,}", line.strip(), maxsplit=1)
            table[label] = value
    return table


def check_speed_table(stdout: str) -> None:
    """Every row is there, every figure a positive finite number, every ratio its figures'."""
    table = rows(stdout)
    rate = r"(\S+) img/s"

    def row(prefix: str, pattern: str) -> re.Match:
        labels = [k for k in table if k.startswith(prefix)]
        assert len(labels) == 1, (prefix, labels)
        m = re.fullmatch(pattern, table[labels[0]])
        assert m, (labels[0], table[labels[0]])
        return m

    for net in ("flatten", "global"):
        a = positive(row(f"(a) plain PyTorch loop, {net} net", rate)[1])
        same = row(f"(b) poolbench Trainer.fit, {net} net, same", rate + r"   b/a = (\S+)")
        assert close(positive(same[2]), positive(same[1]) / a, 2), same[0]
        b = row(
            f"(b) poolbench Trainer.fit, {net} net, defaults",
            rate + r"   b/a = (\S+)   data wait (\S+)% of step time",
        )
        assert close(positive(b[2]), positive(b[1]) / a, 2), b[0]
        assert 0 <= figure(b[3]) < 100, b[0]  # a share of the step time: may round to 0.0
    # --speed-options fp32: one row per net, under that net's (b) rows
    options = [line for line in stdout.splitlines() if line.startswith("    with ")]
    assert len(options) == 2, stdout
    for line in options:
        m = re.fullmatch(
            r"    with trainer\.precision=32-true\s{2,}" + rate + r"   x(\S+) vs\. default", line
        )
        assert m, line
        positive(m[1]), positive(m[2])
    c = positive(row("(c) torchvision dataset", rate)[1])
    d = row("(d) poolbench in-memory loader", rate + r"   d/c = (\S+)")
    assert close(positive(d[2]), positive(d[1]) / c, 1), d[0]
    # (f): the synthetic test set (500 images) is under `images: auto`'s CPU sample: one row
    f = row(
        "(f) shift invariance, 500 test images x 11 views (images: auto here)",
        r"(\S+) s   (\S+) views/s",
    )
    assert close(figure(f[2]), 500 * 11 / positive(f[1]), 0), f[0]
    positive(row("(e) start-up to first training step, cold", r"(\S+) s")[1])
    warm = row("(e) start-up to first training step, warm", r"(\S+) s   framework share (\S+) s")
    imported = positive(row("(e) python -c 'import lightning'", r"(\S+) s")[1])
    # a difference of two timings: either sign, but finite and what the two figures give
    assert abs(figure(warm[2]) - (positive(warm[1]) - imported)) <= 0.11, warm[0]
    positive(row("(e) python train.py --help", r"(\S+) s")[1])
    positive(row("(e) peak RSS of a training run", r"(\S+) MB")[1])


@pytest.mark.ci
def test_benchmark_quick_prints_every_row() -> None:
    out = run_cli(["scripts/benchmark.py", "--quick", "--speed-options", "fp32"], cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    check_speed_table(out.stdout)


@pytest.mark.ci
def test_benchmark_accuracy_mode_compares_with_the_plain_loop() -> None:
    out = run_cli(["scripts/benchmark.py", "--quick", "--accuracy", "2"], cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    for head in ("flatten", "global"):
        plain = re.search(
            rf"plain Adam loop, {head} net, 2 epochs +(\S+)% last epoch, "
            r"(\S+)% best \(epoch (\d)\)",
            out.stdout,
        )
        ours = re.search(
            rf"poolbench defaults, {head} net, 2 epochs +(\S+)% +gain (\S+) points over the best",
            out.stdout,
        )
        assert plain and ours, out.stdout
        last, best, ours_acc = positive(plain[1]), positive(plain[2]), positive(ours[1])
        assert last <= best <= 100 and ours_acc <= 100 and plain[3] in ("1", "2"), plain[0]
        assert abs(figure(ours[2]) - (ours_acc - best)) <= 0.011, ours[0]
        # synthetic gratings are easy: both recipes end far above chance (10%)
        assert last > 30 and ours_acc > 30, out.stdout


def test_benchmark_names_an_unknown_speed_option() -> None:
    out = run_cli(["scripts/benchmark.py", "--speed-options", "fp32,turbo"], cwd=ROOT)
    assert out.returncode == 2
    assert "unknown --speed-options turbo; choose from eager,compile,fp32,bf16,nchw" in out.stderr


@pytest.mark.slow
def test_packed_row_is_its_jobs_images_over_their_fit_span(tmp_path) -> None:
    """(g): k jobs in one process against one alone, each rate from the runs' results.json."""
    import json

    out = run_cli(
        ["benchmarks/packed.py", "--jobs", "2", "--steps", "4", "--batch-size", "64",
         "--data-root", "/nonexistent", "--out", str(tmp_path)],
        cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    table = rows(out.stdout)
    alone = positive(table["(g) one job alone, training images/s"].split()[0])
    together, ratio = re.fullmatch(
        r"(\S+) img/s  g/alone (\S+)", table["(g) 2 jobs packed in one process, all together"]
    ).groups()

    def span(results: str) -> tuple[float, float]:
        r = json.loads((tmp_path / results).read_text())
        assert r["status"] == "ok"
        end = r["ended_at"] - r["after_fit_seconds"]
        return end - r["fit_seconds"], end

    start, end = span("alone/results.json")
    assert abs(alone - 4 * 64 / (end - start)) <= 0.5
    spans = [span(f"packed/{i}/results.json") for i in (0, 1)]
    assert spans[0][0] < spans[1][1] and spans[1][0] < spans[0][1]  # they overlapped
    exact = 2 * 4 * 64 / (max(e for _, e in spans) - min(s for s, _ in spans))
    assert abs(figure(together) - exact) <= 0.5
    assert close(figure(ratio), exact / alone, 2)
