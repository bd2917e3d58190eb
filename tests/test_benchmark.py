from conftest import ROOT, run_cli


def test_benchmark_quick_prints_every_row() -> None:
    out = run_cli(["scripts/benchmark.py", "--quick"], cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
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
