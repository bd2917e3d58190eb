"""poolbench-shapes: its conv arithmetic and totals; the docs' tables are its --readme output."""

import pytest
from conftest import ROOT, docs_text, run_cli

from poolbench.config import group_options

pytestmark = pytest.mark.slow

HEADS, POOLS = group_options("head"), group_options("pool")


def test_shapes_script_prints_arithmetic_and_totals() -> None:
    out = run_cli(["scripts/shapes.py", "head=flatten", "pool=max"], cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "o = ⌊(32 + 2·2 − 5)/1⌋ + 1 = 32" in out.stdout
    assert "o = ⌊(16 + 2·0 − 2)/2⌋ + 1 = 8" in out.stdout
    assert "params/total 270,942" in out.stdout
    assert "flops/forward 9,524,560" in out.stdout
    bad = run_cli(["scripts/shapes.py", "pool.kernel_size=16"], cwd=ROOT)
    assert bad.returncode == 2 and "blocks.1.pool" in bad.stderr and "-3" in bad.stderr


def test_readme_parameter_tables_are_what_shapes_py_prints() -> None:
    out = run_cli(["scripts/shapes.py", "--readme"], cwd=ROOT)
    assert out.returncode == 0, out.stderr
    readme = docs_text()  # the tables live in docs/configuration.md (Parameter counts)
    assert readme.count("<!-- scripts/shapes.py --readme -->\n") == 1  # one copy to keep true
    block = readme.split("<!-- scripts/shapes.py --readme -->\n", 1)[1]
    block = block.split("\n<!-- end of scripts/shapes.py --readme -->", 1)[0]
    assert block == out.stdout.rstrip("\n")
    # the lecture's nets, and the new pools' own parameters: one exponent / weight per layer
    for row in (
        "| `flatten` | 2,048 | 270,942 | 276,110 |",
        "| `global` | 64 | 32,862 | 38,030 |",
        "| `gem` | 32 | 29,023 | 34,191 |",
        "| `gem` | GeM | 2 | 16x16, 8x8 | 270,944 | 32,864 |",
        "| `blur` | BlurPool | 0 | 16x16, 8x8 | 270,942 | 32,862 |",
        "| `stride` | Conv2d | 5,168 | 16x16, 8x8 | 276,110 | 38,030 |",
    ):
        assert row in block
    rows = [line for line in block.splitlines() if line.startswith("| `")]
    assert len(rows) == len(HEADS) + len(POOLS)  # every shipped option has its row
