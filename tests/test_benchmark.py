import re

from conftest import ROOT, run_cli


def test_benchmark_quick_prints_every_row() -> None:
    out = run_cli(["scripts/benchmark.py", "--quick", "--speed-options", "fp32"], cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count("with trainer.precision=32-true") == 2  # one row per net
    for row in (
        "(a) plain PyTorch loop, flatten net",
        "(b) poolbench Trainer.fit, global net",
        "b/a = ",
        "d/c = ",
        "data wait",
        "cold",
        "warm",
        "import lightning",
        "peak RSS",
    ):
        assert row in out.stdout, row


def test_benchmark_accuracy_mode_compares_with_the_plain_loop() -> None:
    out = run_cli(["scripts/benchmark.py", "--quick", "--accuracy", "2"], cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    for head in ("flatten", "global"):
        plain = re.search(
            rf"plain Adam loop, {head} net, 2 epochs +([\d.]+)% last epoch", out.stdout
        )
        ours = re.search(rf"poolbench defaults, {head} net, 2 epochs +([\d.]+)% +gain", out.stdout)
        assert plain and ours, out.stdout
        # synthetic gratings are easy: both recipes end far above chance (10%)
        assert float(plain[1]) > 30 and float(ours[1]) > 30, out.stdout


def test_benchmark_names_an_unknown_speed_option() -> None:
    out = run_cli(["scripts/benchmark.py", "--speed-options", "fp32,turbo"], cwd=ROOT)
    assert out.returncode == 2
    assert "unknown --speed-options turbo; choose from compile,fp32,bf16,nchw" in out.stderr
