"""poolbench against the few lines of plain PyTorch a user would otherwise write.

All rows are measured in one process run, on the same machine, with the same nets, batch size
and number of steps; warm-up steps are excluded and each figure is the median of repeats.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Not part of the installed package: run from a checkout, beside plain.py, with src/ importable.
sys.path[:0] = [str(ROOT / "src"), str(Path(__file__).resolve().parent)]
NETS = ("flatten", "global")


def fit_rates(
    configs: dict[str, list[str]], args: Any, warmup: int, out: Path
) -> dict[str, tuple[float, float]]:
    """Median images/s and data-wait share of each configuration. Repeats run round-robin, so
    a machine's drift (clocks, caches, other load) spreads over all of them alike."""
    fits: dict[str, list[tuple[float, float]]] = {name: [] for name in configs}
    for i in range(args.repeats):
        for j, (name, overrides) in enumerate(configs.items()):
            fits[name].append(poolbench_fit(overrides, args.steps, warmup, out / f"{j}-{i}"))
    return {
        name: (statistics.median(f[0] for f in runs), statistics.median(f[1] for f in runs))
        for name, runs in fits.items()
    }


def median_rate(fn: Any, repeats: int) -> float:
    return statistics.median(fn() for _ in range(repeats))


# (b) poolbench's Trainer.fit -----------------------------------------------------------------
def compose(overrides: list[str]) -> Any:
    from poolbench.cli.overrides import compose as compose_config

    return compose_config("train", overrides)


def poolbench_fit(overrides: list[str], steps: int, warmup: int, out: Path) -> tuple[float, float]:
    """Images/s of Trainer.fit with the default callbacks and the CSV logger, and the share of
    step time spent between steps (fetching, moving and augmenting the next batch). Timed by
    optimizer steps (Lightning's global_step): on the fast path one training_step is a stack."""
    import lightning as L
    from omegaconf import open_dict
    from plain import synchronize

    from poolbench.data.datamodule import ImageDataModule
    from poolbench.training import fast_path
    from poolbench.training.job import build_module, build_trainer
    from poolbench.training.loggers import build_loggers

    class Clock(L.Callback):
        def __init__(self) -> None:
            self.t0 = self.t1 = self.last_end = 0.0
            self.step0 = self.step1 = 0
            self.waiting = 0.0

        def on_train_batch_start(self, trainer: Any, *args: Any) -> None:
            now = time.perf_counter()
            if self.t0:
                self.waiting += now - self.last_end
            elif trainer.global_step >= warmup:
                synchronize(trainer.strategy.root_device)
                self.t0, self.step0 = time.perf_counter(), trainer.global_step

        def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
            self.last_end = time.perf_counter()
            if trainer.global_step >= trainer.max_steps:  # before the epoch-end checkpoint
                synchronize(trainer.strategy.root_device)
                self.t1, self.step1 = time.perf_counter(), trainer.global_step

    cfg = compose(
        [
            *overrides,
            "logger=csv",
            f"trainer.max_steps={warmup + steps}",
            "trainer.limit_val_batches=0",
            "trainer.num_sanity_val_steps=0",
            "trainer.enable_progress_bar=false",
            "trainer.max_epochs=1000",
        ]
    )
    with open_dict(cfg):
        cfg.paths.output_dir = str(out)
        cfg.callbacks.progress_bar = None
        cfg.callbacks.model_summary = None  # runs before the timed steps; only clutters output
        cfg.trainer.enable_model_summary = False
    L.seed_everything(0, verbose=False)
    dm = ImageDataModule(cfg.data)
    module = build_module(cfg, dm.num_classes, dm.classes)
    trainer = build_trainer(cfg, build_loggers(cfg, "bench", None, []), out)
    fast_path.apply(cfg, trainer, module, dm)
    clock = Clock()
    trainer.callbacks.append(clock)
    trainer.fit(module, datamodule=dm)
    total = clock.t1 - clock.t0
    return (clock.step1 - clock.step0) * cfg.data.batch_size / total, clock.waiting / total


def training_device() -> Any:
    import torch

    # where train.py trains by default (trainer.accelerator=auto)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# (c), (d) data only --------------------------------------------------------------------------
def data_rate(loader: Any, transfer: Any, batches: int, warmup: int, device: Any) -> float:
    """Images/s over `batches` batches from a fresh pass, so each epoch's start-up (shuffling,
    drawing the crops, refilling workers) is counted; the warm-up pass before it is not."""
    from plain import synchronize

    def take(k: int) -> int:
        n, it = 0, iter(loader)
        for _ in range(k):
            batch = next(it, None)
            if batch is None:
                it = iter(loader)
                batch = next(it)
            n += len(transfer(batch)[0])
        return n

    take(warmup)
    synchronize(device)
    start = time.perf_counter()
    n = take(batches)
    synchronize(device)
    return n / (time.perf_counter() - start)


def torchvision_data(split: Any, batch: int, mean: Any, std: Any) -> Any:
    from poolbench.data.torchvision_loader import make_loader

    return make_loader(split, batch, True, True, 2, mean, std)


def poolbench_data(dm: Any) -> tuple[Any, Any]:
    return dm.train_dataloader(), lambda b: b  # batches come out augmented and normalized


# (e) start-up and memory ---------------------------------------------------------------------
def startup(
    overrides: list[str], cache: Path, out: Path, batches: int = 20
) -> tuple[float, float, int]:
    """Seconds from process start to the first training step (wall clock, measured outside,
    and as the run reports it), and the run's peak RSS in MB."""
    cmd = [
        sys.executable,
        "train.py",
        *overrides,
        "trainer.max_epochs=1",
        f"trainer.limit_train_batches={batches}",
        "trainer.limit_val_batches=5",
        "trainer.limit_test_batches=5",
        "logger=csv",
        "trainer.enable_progress_bar=false",
        f"data.cache_dir={cache}",
        f"hydra.run.dir={out}",
    ]
    t0 = time.time()
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise RuntimeError(f"start-up run failed: {proc.stderr.read()[-2000:]}")
    results = json.loads((out / "results.json").read_text())
    python_start = results["startup_seconds"]
    # the run measures from poolbench's import; add the interpreter's own start
    interpreter = time_command([sys.executable, "-c", "pass"])
    return python_start + interpreter, time.time() - t0, usage.ru_maxrss // 1024


def time_command(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True)
    return time.perf_counter() - t0


def speed_rows(args: Any, data: list[str], tmp: Path, warmup: int) -> list[tuple[str, str]]:
    import plain

    from poolbench.data.datamodule import ImageDataModule
    from poolbench.training.devices import auto_precision

    device = training_device()
    rows: list[tuple[str, str]] = []
    # (e) first, while no cache exists: the cold start decodes the images
    batches = 3 if args.quick else 20
    cold = startup(data, tmp / "cache-e", tmp / "cold", batches)
    warm = startup(data, tmp / "cache-e", tmp / "warm", batches)
    import_lightning = statistics.median(
        time_command([sys.executable, "-c", "import lightning"]) for _ in range(3)
    )
    help_s = time_command([sys.executable, "train.py", "--help"])

    dm = ImageDataModule(compose(data).data, device=str(device))
    dm.prepare_data()
    dm.setup("fit")
    x = dm.normalize(dm.train.x).contiguous().to(device)  # the NCHW tensor a user would write
    y = dm.train.y.to(device)
    auto = auto_precision("auto")
    path = "fast path" if device.type == "cuda" else "eager steps"
    for head in NETS:
        a = median_rate(
            lambda h=head: plain.images_per_second(h, x, y, args.batch_size, args.steps, warmup),
            args.repeats,
        )
        # (b) as a user runs it (crop/flip augmentation, label smoothing), and doing exactly
        # (a)'s work (no augmentation, plain cross-entropy): the framework's own cost.
        net = [*data, f"head={head}"]
        # on a GPU the defaults take the fast path: the eager row shows what it gains
        wanted = {*args.speed_options, *(["eager"] if device.type == "cuda" else [])}
        options = {k: v for k, v in SPEED_OPTIONS.items() if k in wanted}
        rates = fit_rates(
            {
                "defaults": net,
                "same": [*net, "data.augment=false", "label_smoothing=0", *SAME_NUMERICS],
                **{k: [*net, *v] for k, v in options.items()},
            },
            args,
            warmup,
            tmp / f"b-{head}",
        )
        (b, wait), (same, _) = rates["defaults"], rates["same"]
        rows.append((f"(a) plain PyTorch loop, {head} net", f"{a:,.0f} img/s"))
        rows.append(
            (
                f"(b) poolbench Trainer.fit, {head} net, same work as (a)",
                f"{same:,.0f} img/s   b/a = {same / a:.2f}",
            )
        )
        rows.append(
            (
                f"(b) poolbench Trainer.fit, {head} net, defaults "
                f"({auto}, {path}, crop/flip, smoothing)",
                f"{b:,.0f} img/s   b/a = {b / a:.2f}   data wait {100 * wait:.1f}% of step time",
            )
        )
        for name, extra in options.items():
            r = rates[name][0]
            rows.append(
                (f"    with {' '.join(extra)}", f"{r:,.0f} img/s   x{r / b:.2f} vs. default")
            )

    c = median_rate(
        lambda: data_rate(
            torchvision_data(dm.train, args.batch_size, dm.mean, dm.std),
            lambda bt: [t.to(device, non_blocking=True) for t in bt],
            args.steps,
            warmup,
            device,
        ),
        args.repeats,
    )
    d = median_rate(
        lambda: data_rate(*poolbench_data(dm), args.steps, warmup, device), args.repeats
    )
    rows.append(
        (
            "(c) torchvision dataset + PIL transforms + DataLoader(2 workers), data only",
            f"{c:,.0f} img/s",
        )
    )
    rows.append(
        (
            "(d) poolbench in-memory loader + batched crop/flip/normalize, data only",
            f"{d:,.0f} img/s   d/c = {d / c:.1f}",
        )
    )
    rows += shift_rows(dm, device)
    rows.append(("(e) start-up to first training step, cold (decode + cache)", f"{cold[0]:.1f} s"))
    rows.append(
        (
            "(e) start-up to first training step, warm (cache hit)",
            f"{warm[0]:.1f} s   framework share {warm[0] - import_lightning:+.1f} s",
        )
    )
    rows.append(("(e) python -c 'import lightning'", f"{import_lightning:.1f} s"))
    rows.append(("(e) python train.py --help", f"{help_s:.2f} s"))
    rows.append(("(e) peak RSS of a training run", f"{max(cold[2], warm[2]):,} MB"))
    return rows


def shift_rows(dm: Any, device: Any) -> list[tuple[str, str]]:
    """(f) callbacks.shift_invariance's measurement (shift_invariance.measure: consistency and
    the 0..8 px curve, 11 views an image), on the whole test set and on what `images: auto`
    measures on this device, untrained global net (the cost does not depend on the weights)."""
    from plain import synchronize

    from poolbench.training.shift_invariance import ShiftInvariance, measure

    dm.setup("test")
    callback = ShiftInvariance()  # the shipped defaults: max_shift 8, circular
    net = build_net("global").to(device).eval()
    if device.type != "cuda":
        import torch

        net = net.to(memory_format=torch.channels_last)  # as the trainer's CPU batches are
    rows = []
    total = len(dm.test.y)
    for n in sorted({total, callback.how_many(total, device)}):
        measure(net, dm.test, dm.normalize, min(n, 256), 8, device=device)  # warm-up
        synchronize(device)
        start = time.perf_counter()
        measure(net, dm.test, dm.normalize, n, callback.max_shift, callback.mode, device=device)
        synchronize(device)
        seconds = time.perf_counter() - start
        auto = " (images: auto here)" if n == callback.how_many(total, device) else ""
        rows.append(
            (
                f"(f) shift invariance, {n:,} test images x {callback.max_shift + 3} views{auto}",
                f"{seconds:.2f} s   {n * (callback.max_shift + 3) / seconds:,.0f} views/s",
            )
        )
    return rows


def build_net(head: str) -> Any:
    from omegaconf import OmegaConf

    from poolbench.models.convnet import build_convnet

    conf = ROOT / "conf"
    node = {
        g: OmegaConf.to_container(OmegaConf.load(conf / g / f"{o}.yaml"))
        for g, o in (("head", head), ("pool", "max"), ("model", "convnet"))
    }
    return build_convnet(node["model"], node["head"], node["pool"], 10, 32)


def accuracy_rows(args: Any, data: list[str], tmp: Path) -> list[tuple[str, str]]:
    """Test accuracy after the same number of epochs: the textbook loop (Adam lr 1e-3, no
    augmentation) on poolbench's train split, and `train.py` with its defaults."""
    import plain

    from poolbench.data.datamodule import ImageDataModule

    epochs = args.accuracy
    dm = ImageDataModule(compose(data).data)
    dm.prepare_data()
    dm.setup("fit")
    train = dm.normalize(dm.train.x).contiguous(), dm.train.y
    test = dm.normalize(dm.test.x).contiguous(), dm.test.y
    rows = []
    for head in NETS:
        accs = plain.test_accuracy_per_epoch(head, train, test, epochs, args.batch_size)
        best = max(range(epochs), key=accs.__getitem__)
        out = tmp / f"acc-{head}"
        subprocess.run(
            [
                sys.executable,
                "train.py",
                *data,
                f"head={head}",
                f"trainer.max_epochs={epochs}",
                "logger=csv",
                "trainer.enable_progress_bar=false",
                f"hydra.run.dir={out}",
            ],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        ours = json.loads((out / "results.json").read_text())["metrics"]["test/acc"]
        rows.append(
            (
                f"plain Adam loop, {head} net, {epochs} epochs",
                f"{100 * accs[-1]:.2f}% last epoch, "
                f"{100 * accs[best]:.2f}% best (epoch {best + 1})",
            )
        )
        rows.append(
            (
                f"poolbench defaults, {head} net, {epochs} epochs",
                f"{100 * ours:.2f}%   gain {100 * (ours - accs[best]):+.2f} points over the best",
            )
        )
    return rows


SAME_NUMERICS = ["trainer.precision=32-true"]  # (a) runs in float32
SPEED_OPTIONS = {
    "eager": ["fast.enabled=false"],  # Lightning's own step per batch (the default on a CPU)
    "compile": ["model.compile=true"],
    "fp32": ["trainer.precision=32-true"],
    "bf16": ["trainer.precision=bf16-mixed"],
    "nchw": ["data.channels_last=false"],
}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--data-root",
        type=Path,
        default=ROOT.parent / "shared/data/cifar10-jpg",
        help="an ImageFolder copy of CIFAR-10; synthetic data when missing",
    )
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=150, help="timed steps per repeat")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="a smoke run: few steps, synthetic data")
    p.add_argument(
        "--speed-options",
        nargs="?",
        const=",".join(SPEED_OPTIONS),
        default="",
        type=lambda s: s.split(","),
        help=f"also time these options in (b), all when none are named: {','.join(SPEED_OPTIONS)}",
    )
    p.add_argument(
        "--packed",
        type=int,
        metavar="K",
        default=0,
        help="also (g): K jobs packed in one process (hydra/launcher=packed) against one alone",
    )
    p.add_argument(
        "--accuracy",
        type=int,
        metavar="EPOCHS",
        help="instead: test accuracy after EPOCHS epochs, plain Adam loop vs. poolbench defaults",
    )
    args = p.parse_args(argv)
    unknown = set(args.speed_options) - set(SPEED_OPTIONS) - {""}
    if unknown:
        p.error(
            f"unknown --speed-options {','.join(sorted(unknown))}; choose from "
            f"{','.join(SPEED_OPTIONS)}"
        )
    if args.quick:
        args.steps, args.repeats, args.data_root = 5, 1, Path("/nonexistent")
    warmup = 3 if args.quick else 10

    import torch

    device = training_device()
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    real = (args.data_root / "train").is_dir()
    tmp = Path(tempfile.mkdtemp(prefix="poolbench-bench-"))
    data = (
        ["data=folder", f"data.root={args.data_root}"]
        if real
        else ["data=synthetic", "data.n_train=4000", "data.n_test=500"]
    )
    data += [f"data.batch_size={args.batch_size}", f"data.cache_dir={tmp}/cache"]
    what = (
        f"{args.accuracy} epochs per run"
        if args.accuracy
        else f"{args.steps} timed steps after {warmup} warm-up; median of {args.repeats}"
    )
    print(
        f"data: {'CIFAR-10 JPEGs at ' + str(args.data_root) if real else 'synthetic'}; "
        f"batch {args.batch_size}; {what}; torch {torch.__version__}, "
        f"{where}, {torch.get_num_threads()} CPU threads",
        flush=True,
    )
    rows = accuracy_rows(args, data, tmp) if args.accuracy else speed_rows(args, data, tmp, warmup)
    if args.packed and not args.accuracy:
        from packed import packed_rows

        rows += packed_rows(args.packed, data, args.steps, args.batch_size, tmp / "packed")
    width = max(len(r[0]) for r in rows)
    print("\n".join(f"{name:<{width}}  {value}" for name, value in rows))


if __name__ == "__main__":
    main()
