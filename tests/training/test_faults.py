"""Interruptions, resumption, reproducibility and secrets: nothing computed is lost or leaked."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import FAST, ROOT, WANDB, make_cfg, read_results, run_command, wandb_summary

from poolbench.training.job import train

SLOW_ENOUGH = [  # epochs long enough (about a second) to interrupt one in the middle
    *FAST,
    WANDB,  # the interrupted and the resumed run share one W&B run
    "data.n_train=3000",
    "data.augment=true",
    "trainer.max_epochs=5",
    "task_name=resumable",
]


def command(tmp_path: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "train.py",
        *SLOW_ENOUGH,
        f"paths.root_dir={tmp_path}",
        f"data.cache_dir={tmp_path}/cache",
        *extra,
    ]


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    return run_command(cmd)  # in its own process group, killed at the end whatever happens


def runs(tmp_path: Path) -> list[Path]:
    root = tmp_path / "outputs" / "resumable"
    return sorted(root.iterdir()) if root.is_dir() else []


def load(path: Path) -> dict:
    assert path.is_file(), path
    return torch.load(path, map_location="cpu", weights_only=True)


def check_restorable(ckpt: dict, last: dict) -> None:
    """A Lightning checkpoint of this run: model, optimizer, schedule and loop state, whose
    weights load into the model and have moved on from those of last.ckpt."""
    from poolbench.training.module import PoolNetModule

    for key in ("state_dict", "optimizer_states", "lr_schedulers", "loops", "callbacks"):
        assert ckpt.get(key), key
    module = PoolNetModule(**ckpt["hyper_parameters"])
    module.load_state_dict(ckpt["state_dict"])  # strict: every tensor present, right shapes
    assert ckpt["global_step"] > last["global_step"]
    assert any(not torch.equal(v, last["state_dict"][k]) for k, v in ckpt["state_dict"].items())


def check_mid_epoch(ckpt: dict, last: dict) -> None:
    """The loops' progress says: stopped inside an epoch, after some of its batches."""
    loop = ckpt["loops"]["fit_loop"]
    batches, epochs = loop["epoch_loop.batch_progress"], loop["epoch_progress"]
    per_epoch = last["global_step"] // (last["epoch"] + 1)  # last.ckpt: at an epoch's end
    done = batches["current"]["completed"]
    assert 0 < done < per_epoch and not batches["is_last_batch"], (batches, per_epoch)
    assert epochs["current"]["started"] == epochs["current"]["completed"] + 1, epochs
    assert ckpt["epoch"] == epochs["current"]["completed"]
    assert ckpt["global_step"] == batches["total"]["completed"]
    assert ckpt["global_step"] == ckpt["epoch"] * per_epoch + done


def signal_mid_epoch(
    proc: subprocess.Popen, run_dir: Path, sig: int, epoch_seconds: float | None = None
) -> None:
    """Send `sig` about a third into the epoch after the first one (whose end writes
    last.ckpt). Without `epoch_seconds`, one epoch is timed by last.ckpt's rewrite at the next
    epoch end, and the signal goes a third into the third epoch."""
    last = run_dir / "checkpoints/last.ckpt"
    ends: list[float] = []
    deadline = time.time() + 300
    wanted = 1 if epoch_seconds else 2
    while time.time() < deadline and proc.poll() is None and len(ends) < wanted:
        if last.exists() and (not ends or last.stat().st_mtime > ends[-1]):
            ends.append(last.stat().st_mtime)
        time.sleep(0.02)
    assert len(ends) == wanted, f"the run did not get through {wanted} epoch(s)"
    epoch = epoch_seconds or ends[1] - ends[0]
    time.sleep(max(0.0, ends[-1] + epoch / 3 - time.time()))
    proc.send_signal(sig)


# stacked: the fast path's stacks of optimizer steps (manual optimization), as on a GPU
@pytest.mark.parametrize(
    "fast", [[], ["fast.enabled=true", "fast.stack=4"]], ids=["eager", "stacked"]
)
@pytest.mark.ci
def test_sigterm_then_resume_latest_matches_an_uninterrupted_run(
    tmp_path: Path, spawn, fast: list[str]
) -> None:
    def job(*extra: str) -> list[str]:
        return command(tmp_path, *fast, *extra)

    full = run(job("logger=csv"))  # the reference: its metrics, not its W&B run
    assert full.returncode == 0, full.stderr[-3000:]
    reference = read_results(runs(tmp_path)[0])

    proc = spawn(job(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and len(runs(tmp_path)) < 2:
        time.sleep(0.05)
    interrupted_dir = runs(tmp_path)[1]
    # as a cluster pre-empting the job would: in epoch 2 of 5, a third of the way in
    signal_mid_epoch(proc, interrupted_dir, signal.SIGTERM, reference["metrics"]["time/epoch_s"])
    proc.wait(timeout=300)
    interrupted = read_results(interrupted_dir)
    assert proc.returncode != 0
    assert interrupted["status"] == "interrupted", interrupted
    assert interrupted["epochs"] < 5
    last = load(interrupted_dir / "checkpoints/last.ckpt")
    saved = load(interrupted_dir / "checkpoints/interrupted.ckpt")
    check_restorable(saved, last)
    if fast:  # Lightning counts stacks as batches; global_step counts optimizer steps
        per_epoch = last["global_step"] // (last["epoch"] + 1)
        assert 0 < saved["global_step"] - last["global_step"] < per_epoch
    else:
        check_mid_epoch(saved, last)
    assert wandb_summary(interrupted_dir)["summary"]["status"] == "interrupted"

    resumed = run(job("resume=latest"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    final = read_results(runs(tmp_path)[2])
    assert final["status"] == "ok" and final["epochs"] == 5
    for key in ("val/acc", "val/acc_best", "test/acc", "test/loss"):
        assert final["metrics"][key] == pytest.approx(reference["metrics"][key], abs=1e-6), key
    # The dashboard shows one continuous run: the resumed job reuses the interrupted W&B run.
    assert final["wandb_run_id"] == interrupted["wandb_run_id"]


def csv_rows(run_dir: Path) -> list[dict[str, float]]:
    rows = csv.DictReader((run_dir / "csv/metrics.csv").open())
    return [{k: float(v) for k, v in r.items() if v} for r in rows]


# 5 optimizer steps an epoch (4 batches of 128 and 28 images): on the fast path, stacks of 3
# steps, then 1, then the short batch
@pytest.mark.parametrize("how", ["sigterm", "ctrl_c"])
@pytest.mark.parametrize(
    "fast, stopped_at",
    [([], 7), (["fast.enabled=true", "fast.stack=3"], 8)],
    ids=["eager", "stacked"],
)
@pytest.mark.ci
def test_interrupt_then_resume_from_interrupted_ckpt_matches_an_uninterrupted_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast: list[str], stopped_at: int, how: str
) -> None:
    """interrupted.ckpt, written inside an epoch, resumes with that epoch's next untrained
    batch: the same training, logged at the same steps, as a run never interrupted (but for
    the interrupted epoch's train averages). A SIGTERM stops between steps; Ctrl-C mostly lands
    inside one, whose batch has then not trained."""
    from poolbench.training.module import PoolNetModule

    def job(name: str, *extra: str) -> Path:
        overrides = [*FAST, "trainer=cpu", "trainer.max_epochs=3", "data.augment=true", "seed=3"]
        overrides += ["trainer.log_every_n_steps=3", *fast, *extra]
        train(make_cfg(overrides, tmp_path / name, cache=tmp_path / "cache"))
        return tmp_path / name

    full = job("full")
    batch_end, training_step = PoolNetModule.on_train_batch_end, PoolNetModule.training_step

    def sigterm_from_step_7(self: PoolNetModule, *args: object) -> None:
        batch_end(self, *args)
        if self.global_step >= 7 and not self.trainer.received_sigterm:
            # Lightning's handler (without one this process would die) stops the run after this
            # training step, a stack on the fast path, as a cluster's SIGTERM would
            assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN)
            os.kill(os.getpid(), signal.SIGTERM)

    def ctrl_c_in_step_7(self: PoolNetModule, *args: object) -> object:
        if self.global_step >= 7:  # before this step (or stack) trains anything
            raise KeyboardInterrupt
        return training_step(self, *args)

    sigint = signal.getsignal(signal.SIGINT)  # Lightning ignores SIGINT once it caught one
    with monkeypatch.context() as m:
        if how == "sigterm":
            m.setattr(PoolNetModule, "on_train_batch_end", sigterm_from_step_7)
        else:
            m.setattr(PoolNetModule, "training_step", ctrl_c_in_step_7)
        try:
            with pytest.raises(SystemExit) as stopped:
                job("interrupted")
        finally:
            signal.signal(signal.SIGINT, sigint)
    assert stopped.value.code == (143 if how == "sigterm" else 1)
    assert read_results(tmp_path / "interrupted")["status"] == "interrupted"
    saved_path = tmp_path / "interrupted/checkpoints/interrupted.ckpt"
    saved = load(saved_path)
    assert saved["global_step"] == stopped_at  # in the second epoch, 2 or 3 steps in
    # the train loader's place, as Lightning saved it: the epoch's images trained on
    position = {"epoch": 1, "images": (stopped_at - 5) * 128, "stack": 3 if fast else 1}
    assert saved["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [position]

    resumed = job("resumed", f"ckpt_path={saved_path}")
    a, b = load(full / "checkpoints/last.ckpt"), load(resumed / "checkpoints/last.ckpt")
    assert a["global_step"] == b["global_step"] == 15
    for key, weights in a["state_dict"].items():
        assert torch.equal(weights, b["state_dict"][key]), key
    ra, rb = read_results(full)["metrics"], read_results(resumed)["metrics"]
    for key in ("val/acc", "val/acc_best", "test/acc", "test/loss", "train/acc"):
        assert rb[key] == pytest.approx(ra[key], abs=1e-6), key
    # What the loggers got from the resumed run is what they got from the uninterrupted one
    # after the same step, but for one gap: the interrupted epoch's train/acc and
    # train/loss_epoch average only the batches trained after resuming (checkpoints keep no
    # epoch averages: neither Lightning's nor torchmetrics' train_acc).
    after = [r for r in csv_rows(full) if r["step"] >= stopped_at]
    got = csv_rows(resumed)
    assert [sorted(r) for r in got] == [sorted(r) for r in after]
    gaps = []
    for want, row in zip(after, got, strict=True):
        for key, value in row.items():
            if key.startswith("time/"):  # seconds: checked below
                continue
            if row.get("epoch") == 1 and key in ("train/acc", "train/loss_epoch"):
                gaps.append(key)  # averages of fewer batches: any value in range
                assert 0 <= value <= (1 if key == "train/acc" else 10), key
            else:
                assert value == pytest.approx(want[key], abs=1e-6), (row["step"], key)
    assert sorted(gaps) == ["train/acc", "train/loss_epoch"]
    # The resumed epoch's rate counts only the images it trained on after the resume (not
    # the whole epoch's 540): rate x seconds gives that count back.
    timed = [r for r in got if "time/epoch_s" in r]
    assert [r["epoch"] for r in timed] == [1, 2]
    assert timed[0]["time/epoch_s"] > 0
    images = (9 - stopped_at) * 128 + 28  # the rest of the epoch's 4 batches of 128, then 28
    throughput = timed[0]["time/train_img_per_s"]
    assert throughput * timed[0]["time/epoch_s"] == pytest.approx(images, rel=1e-4)


def test_resume_latest_without_an_earlier_run_says_so(tmp_path: Path) -> None:
    out = run(command(tmp_path, "resume=latest"))
    assert out.returncode == 2
    assert "resume=latest found no earlier run" in out.stderr
    assert not (tmp_path / "outputs" / "resumable").exists() or not runs(tmp_path)


@pytest.mark.ci
def test_same_seed_twice_gives_identical_metrics(tmp_path: Path) -> None:
    metrics = []
    for name in ("a", "b"):
        cfg = make_cfg(
            [*FAST, "data.augment=true", "seed=7"],
            tmp_path / name,
            cache=tmp_path / "cache",
        )
        train(cfg)
        metrics.append(read_results(tmp_path / name)["metrics"])
    for key in ("val/acc", "val/acc_best", "test/acc", "test/loss", "train/loss"):
        assert metrics[0][key] == metrics[1][key], key


@pytest.mark.slow
def test_secrets_in_the_environment_are_never_logged(tmp_path: Path) -> None:
    secret = "sk-FAKE-SECRET-4f9a1c"
    env = {
        **os.environ,
        "WANDB_SILENT": "true",
        "WANDB_MODE": "offline",
        "WANDB_API_KEY": secret,
        "GITHUB_TOKEN": secret,
        "HF_TOKEN": secret,
    }
    out = run_command(
        [
            sys.executable,
            "train.py",
            *FAST,
            WANDB,
            "trainer.max_epochs=1",
            f"hydra.run.dir={tmp_path}/run",
            f"data.cache_dir={tmp_path}/cache",
        ],
        env=env,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    files = [p for p in (tmp_path / "run").rglob("*") if p.is_file()]
    assert any(p.suffix == ".wandb" for p in files) and any(p.name == "results.json" for p in files)
    leaked = [str(p) for p in files if secret.encode() in p.read_bytes()]
    assert leaked == []


@pytest.mark.ci
def test_ctrl_c_saves_a_checkpoint_and_marks_the_run_interrupted(tmp_path: Path, spawn) -> None:
    proc = spawn(
        command(tmp_path, "trainer.max_epochs=30"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while time.time() < deadline and not runs(tmp_path):
        time.sleep(0.05)
    run_dir = runs(tmp_path)[0]
    signal_mid_epoch(proc, run_dir, signal.SIGINT)
    proc.wait(timeout=300)
    r = read_results(run_dir)
    assert proc.returncode != 0 and r["status"] == "interrupted", r
    last = load(run_dir / "checkpoints/last.ckpt")
    saved = load(run_dir / "checkpoints/interrupted.ckpt")
    check_restorable(saved, last)  # Ctrl-C may land anywhere: mid-epoch is not promised
    assert wandb_summary(run_dir)["summary"]["status"] == "interrupted"


def test_run_folders_are_unique_and_shared_by_a_jobs_ranks(monkeypatch: pytest.MonkeyPatch) -> None:
    from poolbench.sweeps.distributed import run_stamp

    before = dict(os.environ)
    stamps = {run_stamp() for _ in range(3)}
    assert len(stamps) == 3  # microseconds: two runs started in one second still differ
    assert dict(os.environ) == before  # nothing leaks into the runs this process starts
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "x")  # the same rendezvous id for every launch
    # Without the agents' shared store, the ranks of one node share their agent process.
    assert run_stamp() == run_stamp()
    assert run_stamp().endswith(f"-torchrun{os.getppid()}")
    # With it (c10d and static rendezvous), rank zero's stamp reaches every rank on every node.
    from torch.distributed import TCPStore

    monkeypatch.setenv("TORCHELASTIC_USE_AGENT_STORE", "True")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    launches = []
    for _ in range(2):  # two launches of the same command: two agent stores
        store = TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False)
        monkeypatch.setenv("MASTER_PORT", str(store.port))
        stamps = []
        for rank in ("0", "1", "0"):  # rank zero again: restarted by its agent, same folder
            monkeypatch.setenv("RANK", rank)
            stamps.append(run_stamp())
        assert len(set(stamps)) == 1 and stamps[0].endswith("-torchrun")
        launches.append(stamps[0])
    assert launches[0] != launches[1]


@pytest.mark.slow
def test_spawned_jobs_die_with_a_failing_test(tmp_path: Path) -> None:
    """The `spawn` fixture kills a job's whole process group when its test fails: a grandchild
    (as a DDP rank is) does not outlive the failed test."""
    pid_file = tmp_path / "grandchild.pid"
    (tmp_path / "test_inner.py").write_text(
        f"""
import sys, time
from pathlib import Path
sys.path.insert(0, {str(ROOT / "tests")!r})
from conftest import spawn  # noqa: F401

def test_fails(spawn):
    spawn(["bash", "-c", "sleep 300 & echo $! > {pid_file}; wait"])
    while not Path({str(pid_file)!r}).exists():
        time.sleep(0.05)
    assert False, "a failing test"
"""
    )
    out = run_command(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        timeout=120,
    )
    assert out.returncode == 1 and "1 failed" in out.stdout, out.stdout[-2000:]
    grandchild = Path(f"/proc/{int(pid_file.read_text())}/stat")

    def running() -> bool:
        try:
            return grandchild.read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:  # gone
            return False

    deadline = time.time() + 10
    while running():
        assert time.time() < deadline, "the spawned job's grandchild is still running"
        time.sleep(0.1)


@pytest.mark.slow
def test_a_resumed_run_keeps_the_best_score_so_far(tmp_path: Path) -> None:
    import torch
    from lightning.pytorch.callbacks import ModelCheckpoint

    from poolbench.training.callbacks import RunCheckpoint

    def saver(cls: type, folder: str) -> ModelCheckpoint:
        return cls(dirpath=tmp_path / folder, monitor="val/acc", mode="max", save_last=True)

    before = saver(RunCheckpoint, "run1")
    best = str(tmp_path / "run1" / "epoch001.ckpt")
    before.best_model_score, before.best_model_path = torch.tensor(0.9), best
    before.best_k_models, before.kth_best_model_path = {best: torch.tensor(0.9)}, best
    state = before.state_dict()

    resumed = saver(RunCheckpoint, "run2")  # resume=latest: a new folder
    resumed.load_state_dict(state)
    assert resumed.best_model_score == 0.9 and resumed.best_model_path == best
    assert resumed.dirpath == str(tmp_path / "run2")  # new checkpoints go to the new folder
    plain = saver(ModelCheckpoint, "run2")
    plain.load_state_dict(state)
    assert plain.best_model_score is None  # Lightning alone forgets: the bug this fixes
    assert resumed.state_key == plain.state_key


@pytest.mark.slow
def test_last_ckpt_is_the_last_epoch_even_without_improvement(tmp_path: Path) -> None:
    import torch

    from poolbench.training.job import train

    # A learning rate so small that val/acc never improves after the first epoch: Lightning
    # alone would leave last.ckpt at epoch 0.
    overrides = [*FAST, "trainer.max_epochs=3", "optimizer.lr=1e-12"]
    cfg = make_cfg([*overrides, "callbacks.review_images=null"], tmp_path, cache=tmp_path / "c")
    train(cfg)
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    best = torch.load(read_results(tmp_path)["best_checkpoint"], weights_only=True)
    assert best["epoch"] == 0  # no later epoch beat the first
    assert last["epoch"] == 2 and last["global_step"] == 3 * best["global_step"]
