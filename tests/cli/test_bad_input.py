"""Bad input: one clear line (what is wrong, the value, the fix), a non-zero exit, before data
is loaded or training starts, and no half-written run folder."""

import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from conftest import (
    FAST,
    ROOT,
    WANDB,
    make_folder,
    read_results,
    run_cli,
    wandb_summary,
    write_image,
)

SLOW = pytest.mark.slow  # more of the same, for `make test` only (test-fast keeps one of each)


def fails(tmp_path: Path, *args: str, script: str = "train.py", env: dict | None = None) -> str:
    """The command exits 2 with exactly one `error:` line, no traceback, and no run folder."""
    run_dir = tmp_path / "run"
    out = run_cli(
        [script, *args, f"hydra.run.dir={run_dir}", f"data.cache_dir={tmp_path}/c"], env=env
    )
    assert out.returncode == 2, (out.returncode, out.stderr[-2000:])
    errors = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, out.stderr[-2000:]
    assert "Traceback" not in out.stderr and "HYDRA_FULL_ERROR" not in out.stderr, out.stderr
    assert not run_dir.exists(), sorted(str(p) for p in run_dir.rglob("*"))
    return errors[0]


def one_error_line(out: subprocess.CompletedProcess) -> str:
    """The whole of stderr is one `error:` line, and the exit status is 2."""
    assert out.returncode == 2, (out.returncode, out.stderr[-2000:])
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("error: "), out.stderr
    return out.stderr.strip()


@pytest.mark.parametrize(
    ("override", "nearest"),
    [
        ("head=globl", "global"),
        pytest.param("pool=avgg", "avg", marks=SLOW),
        pytest.param("data=cifar100", "cifar10", marks=SLOW),
        pytest.param("trainer=gpus", "gpu", marks=SLOW),
        pytest.param("tta=mirror", None, marks=SLOW),
        ("pool=median", None),  # nothing close: the list alone
    ],
)
def test_unknown_option_lists_the_choices(
    override: str, nearest: str | None, tmp_path: Path
) -> None:
    group, value = override.split("=")
    out = run_cli(["train.py", override, f"hydra.run.dir={tmp_path}/run"])
    line = one_error_line(out)
    assert line.startswith(f"error: {override} is not an option"), line
    if nearest:
        assert f"did you mean {nearest}?" in line or f"did you mean {nearest} or" in line, line
    else:
        assert "did you mean" not in line, line
    options = sorted(p.stem for p in (ROOT / "conf" / group).glob("*.yaml"))
    assert f"({group} options: {', '.join(options)})" in line, line
    assert not (tmp_path / "run").exists()


def test_the_readme_example_is_what_train_py_prints(tmp_path: Path) -> None:
    out = run_cli(
        [str(ROOT / "train.py"), "head=globl"], cwd=tmp_path
    )  # outputs/ would go under tmp_path
    assert one_error_line(out).startswith(
        "error: head=globl is not an option; did you mean global? (head options: avg, flatten,"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["optimizer.lrr=0.1"],
            "optimizer.lrr is not a key of the config; did you mean optimizer.lr?",
        ),
        pytest.param(
            ["lr=0.1"], "lr is not a key of the config; did you mean optimizer.lr?", marks=SLOW
        ),
        (
            ["pool=max", "pool.kernel_sise=3"],
            "pool.kernel_sise is not a key of the config; did you mean pool.kernel_size or",
        ),
        pytest.param(
            ["seeed=1"], "seeed is not a key of the config; did you mean seed?", marks=SLOW
        ),
        (
            ["hydra.run.dirr=x"],
            "hydra.run.dirr is not a key of the config; did you mean hydra.run.dir?",
        ),
        pytest.param(
            ["+seed=1"], "+seed=1: seed is already in the config; drop the +: seed=1", marks=SLOW
        ),
        pytest.param(
            ["~seeed"], "~seeed: seeed is not a key of the config; did you mean seed?", marks=SLOW
        ),
        pytest.param(
            ["head=flatten,global"], "head=flatten,global lists several values: add -m", marks=SLOW
        ),
        (["headglobal"], "cannot read the override 'headglobal'"),
        (["-m", "head=flatten,globl"], "head=globl is not an option; did you mean global?"),
        pytest.param(
            ["-m", "seeed=1,2"], "seeed is not a key of the config; did you mean seed?", marks=SLOW
        ),
        pytest.param(["--cfg", "job", "head=globl"], "head=globl is not an option", marks=SLOW),
        pytest.param(["--help", "seeed=1"], "seeed is not a key of the config", marks=SLOW),
    ],
)
def test_unknown_keys_and_bad_syntax_name_the_nearest_key(
    args: list[str], expected: str, tmp_path: Path
) -> None:
    out = run_cli(
        [str(ROOT / "train.py"), *args], cwd=tmp_path
    )  # no run or sweep folder under tmp_path
    line = one_error_line(out)
    assert line.startswith(f"error: {expected}"), line
    if "is not a key" in expected:
        assert "keys in " in line or "top-level keys: " in line, line
    assert list(tmp_path.iterdir()) == []


@SLOW
@pytest.mark.parametrize("script", ["train.py", "eval.py"])
def test_a_key_that_became_a_group_is_answered_with_the_new_spelling(
    script: str, tmp_path: Path
) -> None:
    out = run_cli([str(ROOT / script), "data.tta=none"], cwd=tmp_path)
    assert one_error_line(out) == (
        "error: data.tta=none: data.tta is now the config group tta; write tta=none "
        "(tta options: flip, flip_translate, none)"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("script", ["train.py", "eval.py", "scripts/embed.py", "scripts/shapes.py"])
def test_every_entry_point_answers_a_typo_in_one_line(script: str, tmp_path: Path) -> None:
    for args, expected in (
        (["pool=mx"], "pool=mx is not an option; did you mean max?"),
        (
            ["data.batch_sise=8"],
            "data.batch_sise is not a key of the config; "
            "did you mean data.batch_size or data.eval_batch_size?",
        ),
    ):
        out = run_cli([str(ROOT / script), *args], cwd=tmp_path)
        assert one_error_line(out).startswith(f"error: {expected}")
    assert list(tmp_path.iterdir()) == []


def test_report_answers_bad_arguments_in_one_line(tmp_path: Path) -> None:
    report = str(ROOT / "scripts/report.py")
    line = one_error_line(run_cli([report, "--dco", "x", str(tmp_path)], cwd=tmp_path))
    assert "unrecognized arguments: --dco" in line and "did you mean --doc?" in line, line
    line = one_error_line(run_cli([report], cwd=tmp_path))
    assert "the following arguments are required: sweep_dirs" in line, line
    line = one_error_line(run_cli([report, str(tmp_path / "nope")], cwd=tmp_path))
    assert "is not a folder; pass a sweep folder under outputs/" in line, line


def test_overrides_that_hydra_accepts_still_work(tmp_path: Path) -> None:
    out = run_cli(
        [
            str(ROOT / "train.py"),
            "--cfg",
            "job",
            "+extra.key=1",
            "~label_smoothing",
            "head=flatten",
            "hydra.job.chdir=false",
            "hydra/launcher=basic",
        ],
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert "extra:\n  key: 1" in out.stdout and "label_smoothing" not in out.stdout
    assert "_target_: poolbench.models.heads.FlattenHead" in out.stdout
    helped = run_cli([str(ROOT / "train.py"), "--help"], cwd=tmp_path)
    assert helped.returncode == 0 and "head: avg, flatten, gem, global" in helped.stdout, (
        helped.stdout
    )


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "pool.kernel_size=16",
            "blocks.1.pool (MaxPool2d, kernel 16, stride 2, padding 0) turns a",
        ),
        (
            "data.image_size=2",
            "blocks.1.pool (MaxPool2d, kernel 2, stride 2, padding 0) turns a 32x1x1",
        ),
        ("model.hidden=[0,84]", "model.hidden=0 must be a positive whole number"),
        ("model.channels=[16,-4]", "model.channels=-4 must be a positive whole number"),
        ("model.channels=16", "model.channels=16 must be a list"),
        ("data.batch_size=0", "data.batch_size=0 must be a positive whole number"),
        ("optimizer.lr=abc", "optimizer.lr='abc' must be a number above 0"),
        ("optimizer.lr=0", "optimizer.lr=0 must be a number above 0"),
        ("trainer.max_epochs=0", "trainer.max_epochs=0 must be a positive whole number"),
        ("data.val_fraction=1.5", "data.val_fraction=1.5 must lie strictly between 0 and 1"),
        ("data.val_fraction=0", "data.val_fraction=0 must lie strictly between 0 and 1"),
        ("trainer.precision=17", "trainer.precision=17 is not a precision; choose auto, 32-true"),
        (
            "model.padding_mode=mirror",
            "model.padding_mode='mirror' is unknown; choose model.padding_mode=zeros or circular",
        ),
        pytest.param(
            "callbacks.shift_invariance.mode=diagonal",
            "callbacks.shift_invariance.mode='diagonal' is unknown; choose "
            "callbacks.shift_invariance.mode=circular or padded",
            marks=SLOW,
        ),
        pytest.param(
            "callbacks.shift_invariance.images=0",
            "callbacks.shift_invariance.images=0 must be a positive whole number",
            marks=SLOW,
        ),
        (
            "scheduler.interval=hourly",
            "scheduler.interval='hourly' is unknown; choose scheduler.interval=step or epoch",
        ),
        ("data=folder", "data=folder needs data.root=PATH"),  # not the cifar10 default's
        (
            "head._target_=theirpkg.layers.Attention",  # a user's class, package not installed
            "head: Error locating target 'theirpkg.layers.Attention': is its package importable",
        ),
        ("~seed", "~seed: poolbench reads seed; give it a value (seed=…) instead of deleting it"),
        ("~optimizer.lr", "~optimizer.lr: poolbench reads optimizer.lr; give it a value"),
        pytest.param(
            "trainer=gpu",
            "trainer.accelerator=gpu (trainer=gpu, ddp) needs a GPU, and torch sees none",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has one"),
        ),
    ],
)
@pytest.mark.slow
def test_bad_values_are_named_with_a_fix(override: str, message: str, tmp_path: Path) -> None:
    extra = ["head=flatten"] if "image_size" in override else []
    assert message in fails(tmp_path, override, *extra)


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("missing", "is not a folder"),
        ("no_train", "has no train/ folder"),
        ("no_classes", "has no class folders"),
        ("empty_class", "holds no images"),
        ("class_missing_in_test", "has no folder for class(es) owl"),
        ("corrupt", "cannot decode image"),
        ("one_class", "has 1 class (cat); a classifier needs at least 2: one folder per class"),
    ],
)
@pytest.mark.slow
def test_broken_image_folders(breakage: str, message: str, tmp_path: Path) -> None:
    root = make_folder(tmp_path / "imgs")
    if breakage == "missing":
        root = tmp_path / "nope"
    elif breakage == "no_train":
        shutil.rmtree(root / "train")
    elif breakage == "no_classes":
        for d in (root / "train").iterdir():
            shutil.rmtree(d)
    elif breakage == "empty_class":
        (root / "train" / "emu").mkdir()
        (root / "test" / "emu").mkdir()
    elif breakage == "class_missing_in_test":
        write_image(root / "train" / "owl" / "0.jpg", "RGB", (32, 32), 9)
    elif breakage == "corrupt":
        (root / "train" / "dog" / "2.png").write_bytes(b"\x89PNG broken")
    elif breakage == "one_class":
        shutil.rmtree(root / "train" / "dog")
        shutil.rmtree(root / "test" / "dog")
    line = fails(tmp_path, "data=folder", f"data.root={root}")
    assert message in line
    if breakage == "corrupt":
        assert "2.png" in line


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["data.num_classes=1"],
            "data=synthetic has 1 class (class0); a classifier needs at least 2: "
            "data.num_classes=2 or more",
        ),
        (
            ["data.n_train=5"],  # round(0.5) = 0 validation images
            "data.val_fraction=0.1 of 5 training images leaves 5 to train and 0 to validate",
        ),
        (["data.n_train=5", "data.val_fraction=0.95"], "leaves 0 to train and 5 to validate"),
        (["data.n_test=0"], "the test split of data=synthetic holds no images"),
    ],
)
@pytest.mark.slow
def test_data_too_small_to_train_on(overrides: list[str], message: str, tmp_path: Path) -> None:
    # before: a whole training run, then a crash in the test metrics (one class), or a tensor
    # size overflow from the loader (an empty split)
    assert message in fails(tmp_path, "data=synthetic", *overrides)


@pytest.mark.slow
def test_cifar10_offline_names_three_ways_forward(tmp_path: Path) -> None:
    # A proxy that refuses at once: what a machine without internet sees, on any machine.
    offline = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}
    line = fails(tmp_path, "data=cifar10", f"data.root={tmp_path}/cifar", env=offline)
    for hint in ("cifar-10-python.tar.gz", "data=folder data.root=", "data=digits"):
        assert hint in line


@pytest.mark.ci
def test_eval_bad_checkpoints(tmp_path: Path) -> None:
    assert "does not exist" in fails(tmp_path, f"ckpt_path={tmp_path}/none.ckpt", script="eval.py")
    junk = tmp_path / "junk.ckpt"
    junk.write_text("not a checkpoint")
    assert "is not a readable checkpoint" in fails(tmp_path, f"ckpt_path={junk}", script="eval.py")
    assert "no checkpoint given" in fails(tmp_path, script="eval.py")
    # train.py's ckpt_path (resume from it): the same checks, before any run folder
    assert "does not exist" in fails(tmp_path, f"ckpt_path={tmp_path}/none.ckpt", *FAST[:3])
    assert "is not a readable checkpoint" in fails(tmp_path, f"ckpt_path={junk}", *FAST[:3])


@pytest.mark.parametrize(
    ("script", "override", "message"),
    [
        ("eval.py", "ckpt_path=/missing.ckpt", "ckpt_path=/missing.ckpt does not exist"),
        ("train.py", "optimizer.lr=-1", "optimizer.lr=-1"),  # caught inside the job
    ],
)
def test_the_default_run_folder_leaves_nothing_behind(
    script: str, override: str, message: str, tmp_path: Path
) -> None:
    # outputs/<task>/<date_time>/ is made by Hydra: it goes, and so do its empty parents
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    assert message in one_error_line(run_cli([str(ROOT / script), override], cwd=cwd))
    assert list(cwd.iterdir()) == []


@pytest.mark.ci
def test_eval_takes_the_runs_data_and_names_what_disagrees(tmp_path: Path) -> None:
    out = run_cli(
        [
            "train.py",
            *FAST,
            "trainer.max_epochs=1",
            "logger=csv",
            f"hydra.run.dir={tmp_path}/train",
            f"data.cache_dir={tmp_path}/c",
        ]
    )
    assert out.returncode == 0, out.stderr[-2000:]
    ckpt = tmp_path / "train/checkpoints/last.ckpt"
    # train.py resuming a global-head checkpoint as a flatten net: one line, no folder
    line = fails(tmp_path, f"ckpt_path={ckpt}", "head=flatten", *FAST[:3])
    assert line == (
        f"error: ckpt_path={ckpt} holds another network (head=global there, head=flatten here); "
        "resume with the options it was trained with, or drop ckpt_path"
    )
    line = fails(
        tmp_path, f"ckpt_path={ckpt}", "head=flatten", "pool=avg", *FAST[:3], script="eval.py"
    )
    assert "head: config 'flatten' vs checkpoint 'global'" in line
    assert "pool: config 'avg' vs checkpoint 'max'" in line
    # other data: its class names differ (before: CIFAR-10 or digits scored at chance, no word)
    line = fails(tmp_path, f"ckpt_path={ckpt}", "trainer.precision=17", script="eval.py")
    assert "trainer.precision=17 is not a precision" in line  # as train.py checks it
    line = fails(tmp_path, f"ckpt_path={ckpt}", "data=digits", script="eval.py")
    assert "(class0, class1, class2, class3, …) but data=digits has 10 (0, 1, 2, 3, …)" in line
    line = fails(tmp_path, f"ckpt_path={ckpt}", "data=digits", script="scripts/embed.py")
    assert "but data=digits has 10 (0, 1, 2, 3, …)" in line  # embed.py checks it too
    # without data=, eval takes the run's own (data=synthetic, 600/200 images), not cifar10;
    # a key added to data since that run (here: store_on_device) keeps today's default
    saved = tmp_path / "train/.hydra/config.yaml"
    saved.write_text("".join(s for s in saved.read_text().splitlines(True) if "store_on" not in s))
    trained = read_results(tmp_path / "train")
    out = run_cli(
        [
            "eval.py",
            f"ckpt_path={trained['best_checkpoint']}",
            "logger=csv",
            "~callbacks.lr_monitor",  # eval turns it off itself: deleting it is no error
            f"hydra.run.dir={tmp_path}/eval",
            f"data.cache_dir={tmp_path}/c",
        ]
    )
    assert out.returncode == 0, out.stderr[-2000:]
    evaluated = read_results(tmp_path / "eval")
    assert evaluated["choices"]["data"] == "synthetic"
    assert evaluated["metrics"]["test/acc"] == trained["metrics"]["test/acc"]
    assert not (tmp_path / "eval/checkpoints").exists()  # eval saves no checkpoint


@pytest.mark.slow
def test_divergence_stops_at_the_first_non_finite_loss(tmp_path: Path) -> None:
    out = run_cli(
        [
            "train.py",
            *FAST,
            WANDB,
            "trainer.max_epochs=20",
            "optimizer.lr=1e4",
            f"hydra.run.dir={tmp_path}/run",
            f"data.cache_dir={tmp_path}/c",
        ]
    )
    assert out.returncode == 2
    assert "training diverged; lower optimizer.lr (now 10000.0)" in out.stderr
    r = read_results(tmp_path / "run")
    assert r["status"] == "failed" and r["epochs"] == 0  # not 20 epochs of NaN
    assert "NonFiniteLossError" in r["error"]
    assert wandb_summary(tmp_path / "run")["exit_code"] == 1


def test_finite_loss_checks_skip_gpu_steps_but_never_an_epochs_end() -> None:
    from poolbench.training.module import FINITE_CHECK_EVERY, finite_check_due

    # on a GPU, reading the loss stalls the kernel queue: only every FINITE_CHECK_EVERY-th step
    due = [i for i in range(100) if finite_check_due("cuda", i, last_batch=False)]
    assert due == list(range(0, 100, FINITE_CHECK_EVERY)) and len(due) == 4
    assert finite_check_due("cuda", 7, last_batch=True)  # before validation and checkpoints
    assert all(finite_check_due("cpu", i, last_batch=False) for i in range(100))
