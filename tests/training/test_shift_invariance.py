"""Shift invariance: APS is invariant by construction, the consistency and the curve are what
their definitions say (hand computations), a run logs them, and the report compares pools."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml
from conftest import FAST, ROOT, read_results, run_cli
from omegaconf import OmegaConf
from scipy import stats
from torch.nn import functional as F

from poolbench.models.convnet import build_convnet
from poolbench.training.shift_invariance import (
    count,
    curve_figure,
    draw_pairs,
    measure,
    shift_images,
)


def net(pool: str, padding_mode: str, seed: int, head: str = "global") -> torch.nn.Module:
    torch.manual_seed(seed)
    node = {
        g: OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / g / f"{o}.yaml"))
        for g, o in (("head", head), ("pool", pool))
    }
    model = {"channels": [16, 32], "kernel_size": 5, "hidden": [120, 84]}
    model["padding_mode"] = padding_mode
    return build_convnet(model, node["head"], node["pool"], 10, 32).eval()


def every_circular_shift(x: torch.Tensor) -> torch.Tensor:
    """(1024 * len(x), C, 32, 32): each image rolled by every (dy, dx), by torch.roll."""
    return torch.cat([torch.roll(x, (dy, dx), (2, 3)) for dy in range(32) for dx in range(32)])


def split_of(x: torch.Tensor, y: torch.Tensor) -> SimpleNamespace:
    return SimpleNamespace(x=x, y=y)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_aps_with_circular_padding_is_invariant_before_training(seed: int) -> None:
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(seed))
    y = torch.tensor([3, 7])
    for pool, invariant in (("aps", True), ("max", False)):
        model = net(pool, "circular", seed)
        with torch.no_grad():
            logits = model(every_circular_shift(x)).view(1024, 2, 10)
        spread = (logits - logits[0]).abs().max().item()
        counts = measure(model, split_of(x, y), lambda v: v, 2, 8, seed=seed)
        if invariant:
            assert spread < 1e-5  # identical logits for all 1024 shifts of both images
            assert counts.result()["consistency"] == 1.0
            assert len(set(logits.argmax(-1).flatten(1).T.tolist()[0])) == 1
        else:
            assert spread > 1e-3  # max pooling: the answer moves with the image
    # zero padding breaks it: the border is not where a circular shift puts it
    with torch.no_grad():
        z = net("aps", "zeros", seed)(every_circular_shift(x))
    assert (z - z[:1]).abs().max().item() > 1e-3


def parity_net(x: torch.Tensor) -> torch.Tensor:
    """Class 1 where the top-left pixel of channel 0 is 1: on a checkerboard that is the
    parity of the shift, dy + dx."""
    v = x[:, 0, 0, 0]
    return torch.stack([1 - v, v], 1)


def test_consistency_of_a_net_that_flips_with_shift_parity() -> None:
    n, m = 4000, 8
    board = torch.tensor(np.indices((32, 32)).sum(0) % 2, dtype=torch.float32)
    x = board.expand(n, 3, 32, 32).clone()
    counts = measure(parity_net, split_of(x, torch.zeros(n, dtype=torch.long)), lambda v: v, n, m)
    # By hand: the two draws agree where dy1 + dx1 and dy2 + dx2 have the same parity.
    pairs = draw_pairs(n, m, 0).numpy()
    by_hand = np.mean((pairs[:, 0] + pairs[:, 1]) % 2 == (pairs[:, 2] + pairs[:, 3]) % 2)
    assert counts.result()["consistency"] == pytest.approx(by_hand, abs=1e-9)
    # and the expectation: 9 of the 17 shifts -8..8 are even
    even = (9 / 17) ** 2 + (8 / 17) ** 2
    assert by_hand == pytest.approx(even**2 + (1 - even) ** 2, abs=0.03)
    # the diagonal shifts (s, s) keep the parity: every curve point says class 0
    assert counts.result()["acc"] == [1.0] * (m + 1)


@pytest.mark.parametrize("mode", ["circular", "padded"])
def test_curve_points_equal_a_direct_computation(mode: str) -> None:
    model = net("max", "zeros", 0)
    x = torch.randn(6, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    y = torch.tensor([0, 1, 2, 3, 4, 5])
    result = measure(model, split_of(x, y), lambda v: v, 6, 4, mode).result()
    for s in range(5):
        if mode == "circular":
            moved = torch.roll(x, (s, s), (2, 3))
        else:  # down-right by s: zeros come in at the top and the left
            moved = F.pad(x, (s, 0, s, 0))[..., :32, :32]
        with torch.no_grad():
            p = model(moved).softmax(1)
        assert result["acc"][s] == pytest.approx((p.argmax(1) == y).float().mean().item())
        assert result["prob"][s] == pytest.approx(p[torch.arange(6), y].mean().item(), abs=1e-6)


def test_per_image_shifts_equal_torch_roll_and_ranks_add_up() -> None:
    x = torch.randn(5, 3, 32, 32)
    dy, dx = torch.tensor([0, 3, -2, 8, -8]), torch.tensor([1, -4, 0, 8, 2])
    moved = shift_images(x, dy, dx, "circular")
    for i in range(5):
        assert torch.equal(moved[i], torch.roll(x[i], (int(dy[i]), int(dx[i])), (1, 2)))
    # DDP: each rank counts every world-th image; the sums are the single process's
    model, y = net("max", "zeros", 3), torch.randint(0, 10, (7,))
    x = torch.randn(7, 3, 32, 32)
    one = measure(model, split_of(x, y), lambda v: v, 7, 3)
    parts = [measure(model, split_of(x, y), lambda v: v, 7, 3, rank_of=(r, 2)) for r in (0, 1)]
    both = parts[0] + parts[1]
    for k in ("agree", "correct", "prob", "images"):
        assert torch.allclose(getattr(both, k).float(), getattr(one, k).float(), atol=1e-5)
    assert int(parts[0].images) == 4 and int(parts[1].images) == 3


def test_count_is_one_batched_forward() -> None:
    calls = []

    def recorder(v: torch.Tensor) -> torch.Tensor:
        calls.append(len(v))
        return torch.zeros(len(v), 10)

    count(
        recorder,
        torch.randn(3, 3, 32, 32),
        torch.zeros(3, dtype=torch.long),
        draw_pairs(3, 2, 0),
        2,
    )
    assert calls == [3 * (3 + 2)]  # 2 random + 3 diagonal views of 3 images, in one call


@pytest.mark.slow
def test_a_run_logs_consistency_and_its_curve(tmp_path: Path) -> None:
    run = tmp_path / "run"
    out = run_cli(["train.py", *FAST, "logger=csv", f"hydra.run.dir={run}", "trainer.max_epochs=1"])
    assert out.returncode == 0, out.stderr[-3000:]
    metrics = read_results(run)["metrics"]
    curve = json.loads((run / "shift_curve.json").read_text())
    assert curve["images"] == 200 and curve["mode"] == "circular" and curve["max_shift"] == 8
    assert metrics["test/shift_consistency"] == pytest.approx(curve["consistency"])
    assert [metrics[f"test/shift_acc/{s}"] for s in range(9)] == pytest.approx(curve["acc"])
    assert [metrics[f"test/shift_prob/{s}"] for s in range(9)] == pytest.approx(curve["prob"])
    # the CSV log has it too
    (csv_file,) = (run / "csv").rglob("metrics.csv")
    assert "test/shift_consistency" in csv_file.read_text().splitlines()[0].split(",")
    # the picture draws those numbers
    fig = curve_figure(curve)
    acc_line, prob_line = fig.axes[0].lines
    assert list(acc_line.get_ydata()) == pytest.approx(curve["acc"])
    assert list(prob_line.get_ydata()) == pytest.approx(curve["prob"])
    # `~` turns it off
    off = tmp_path / "off"
    out = run_cli(
        [
            "train.py",
            *FAST,
            "logger=csv",
            f"hydra.run.dir={off}",
            "trainer.max_epochs=1",
            "~callbacks.shift_invariance",
        ]
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert not any("shift" in k for k in read_results(off)["metrics"])
    assert not (off / "shift_curve.json").exists()


def write_job(job: Path, pool: str, seed: int, acc: float, consistency: float) -> None:
    job.mkdir(parents=True)
    curve = {f"test/shift_acc/{s}": acc - 0.01 * s for s in range(3)}
    curve |= {f"test/shift_prob/{s}": acc / 2 for s in range(3)}
    results = {
        "status": "ok",
        "choices": {"head": "global", "pool": pool},
        "params": {"total": 32_862},
        "flops_per_image": 9_048_400,
        "metrics": {"test/acc": acc, "test/shift_consistency": consistency, **curve},
        "epochs": 5,
    }
    (job / "results.json").write_text(json.dumps(results))
    (job / ".hydra").mkdir()
    overrides = [f"pool={pool}", f"seed={seed}"]
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"seed": seed}))


def test_report_compares_consistency_with_intervals(tmp_path: Path) -> None:
    from poolbench.review.report import report

    arms = {
        "max": ([0.60, 0.62, 0.61], [0.80, 0.82, 0.83]),
        "blur": ([0.63, 0.62, 0.64], [0.90, 0.89, 0.92]),
    }
    sweep = tmp_path / "sweep"
    n = 0
    for pool, (accs, cons) in arms.items():
        for seed, (acc, c) in enumerate(zip(accs, cons, strict=True)):
            write_job(sweep / str(n), pool, seed, acc, c)
            n += 1
    text = report(sweep).read_text()
    header = next(s for s in text.splitlines() if s.startswith("| head | pool |"))
    assert header.split(" | ")[-3] == "consistency %"
    blur, ref = arms["blur"][1], arms["max"][1]
    mean, std = 100 * statistics.fmean(blur), 100 * statistics.stdev(blur)
    assert f"| {mean:.2f} ± {std:.2f} |" in text
    ci = stats.ttest_ind(blur, ref, equal_var=False).confidence_interval(0.95)
    line = next(
        s for s in text.splitlines() if s.startswith("- pool=blur vs pool=max") and "shift" in s
    )
    assert f"({100 * (statistics.fmean(blur) - statistics.fmean(ref)):+.2f} points" in line
    assert f"95% CI {100 * ci.low:+.2f} to {100 * ci.high:+.2f}" in line
    # the figure: a line per pool, its points the seeds' mean accuracy at each shift
    from poolbench.review.runs import config_key, find_jobs
    from poolbench.review.shift_report import plot

    fig = plot(find_jobs(sweep), tmp_path / "f.png", config_key)
    lines = {ln.get_label(): list(ln.get_ydata()) for ln in fig.axes[0].lines}
    max_acc = statistics.fmean(arms["max"][0])
    assert lines["pool=max"] == pytest.approx([100 * (max_acc - 0.01 * s) for s in range(3)])
    assert (sweep / "shift_curves.png").is_file() and "shift_curves.png" in text


@pytest.mark.parametrize("pool", ["max", "avg", "blur", "stride", "aps"])
def test_circular_padding_everywhere_makes_the_total_stride_a_symmetry(pool: str) -> None:
    """sweep=shift_study's nets (circular padding, global head): a circular shift by the total
    stride (4 px, two stride-2 layers) moves the last map by one pixel, which the global head
    does not see; so every pool gives the same logits there. BlurPool pads circularly too."""
    model = net(pool, "circular", 0)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        base, moved = model(x), model(torch.roll(x, (4, -8), (2, 3)))
    assert (moved - base).abs().max().item() < 1e-5
