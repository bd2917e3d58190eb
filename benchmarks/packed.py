"""(g) k jobs packed in one process (hydra/launcher=packed) against one job alone: training
images per second of all k together, and of the one, each from its jobs' results.json.

Both run train.py as a user would, with the same data, batch and steps (one epoch of `steps`
batches); a job's fit span is read back from results.json (ended_at less the time after fit,
less fit_seconds), so Python start-up, Hydra and data loading are left out of both.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LEAN = [  # the jobs' own work only: no pictures or shift measurement after the test
    "callbacks.review_images=null",
    "callbacks.shift_invariance=null",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
    "trainer.enable_progress_bar=false",
    "trainer.max_epochs=1",
    "trainer.limit_val_batches=2",
    "trainer.limit_test_batches=2",
    "logger=csv",
]


def fit_span(results: Path) -> tuple[float, float]:
    r = json.loads(results.read_text())
    if r["status"] != "ok":
        raise RuntimeError(f"{results}: {r['status']}: {r.get('error')}")
    end = r["ended_at"] - r["after_fit_seconds"]
    return end - r["fit_seconds"], end


def train(args: list[str]) -> None:
    out = subprocess.run(
        [sys.executable, "train.py", *args], cwd=ROOT, capture_output=True, text=True
    )
    if out.returncode != 0:
        raise RuntimeError(f"train.py {' '.join(args)} failed:\n{out.stderr[-2000:]}")


def packed_rows(
    k: int, data: list[str], steps: int, batch: int, tmp: Path
) -> list[tuple[str, str]]:
    common = [*data, *LEAN, f"trainer.limit_train_batches={steps}"]
    train([*common, f"hydra.run.dir={tmp}/alone"])
    start, end = fit_span(tmp / "alone" / "results.json")
    alone = steps * batch / (end - start)
    seeds = ",".join(str(s) for s in range(k))
    sweep = tmp / "packed"
    train(
        [
            "-m",
            "hydra/launcher=packed",
            f"placement.jobs_per_process={k}",
            f"seed={seeds}",
            *common,
            f"hydra.sweep.dir={sweep}",
        ]
    )
    spans = [fit_span(sweep / str(i) / "results.json") for i in range(k)]
    together = k * steps * batch / (max(e for _, e in spans) - min(s for s, _ in spans))
    return [
        ("(g) one job alone, training images/s", f"{alone:,.0f} img/s"),
        (
            f"(g) {k} jobs packed in one process, all together",
            f"{together:,.0f} img/s  g/alone {together / alone:.2f}",
        ),
    ]


def main(argv: list[str] | None = None) -> None:
    """`python benchmarks/packed.py --jobs K [--data-root PATH] [--steps N] [--out DIR]`: row (g)
    alone (scripts/benchmark.py --packed K prints it after the other rows)."""
    import argparse
    import tempfile

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=4, help="jobs packed in one process")
    p.add_argument("--data-root", type=Path, default=ROOT.parent / "shared/data/cifar10-jpg")
    p.add_argument("--steps", type=int, default=150, help="training batches per job")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--out", type=Path, help="keep the runs here (default: a temporary folder)")
    args = p.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="poolbench-packed-"))
    real = (args.data_root / "train").is_dir()
    data = (
        ["data=folder", f"data.root={args.data_root}"]
        if real
        else ["data=synthetic", "data.n_train=4000", "data.n_test=500"]
    )
    data += [f"data.batch_size={args.batch_size}", f"data.cache_dir={out}/cache"]
    print(
        f"data: {'CIFAR-10 JPEGs' if real else 'synthetic'}; batch {args.batch_size}; "
        f"{args.steps} steps per job",
        flush=True,
    )
    rows = packed_rows(args.jobs, data, args.steps, args.batch_size, out)
    width = max(len(r[0]) for r in rows)
    print("\n".join(f"{name:<{width}}  {value}" for name, value in rows))


if __name__ == "__main__":
    main()
