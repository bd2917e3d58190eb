"""Sweeps over several GPUs on one machine (joblib_gpus) and over a Ray cluster (ray_gpus),
tested on the CPU with logical GPU ids: which GPU each job saw, one result and one finished W&B
run per job in one group, and a job killed mid-sweep failing alone."""

import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import FAST, ROOT, WANDB, kill_group, read_results, run_command, wandb_summary
from helpers import wandb_group

JOBS = [*FAST, WANDB, "trainer.max_epochs=1", "trainer.accelerator=cpu", "seed=0,1,2,3"]
# A local Ray on this CPU machine that believes it has two GPUs: Ray then sets
# CUDA_VISIBLE_DEVICES per job exactly as on a GPU machine.
RAY = [
    "hydra/launcher=ray_gpus",
    "+hydra.launcher.ray.init.num_gpus=2",
    "+hydra.launcher.ray.init.num_cpus=4",
    "hydra.launcher.ray.remote.num_gpus=0.5",
]


def start(tmp_path: Path, *overrides: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "train.py",
            "-m",
            *overrides,
            f"hydra.sweep.dir={tmp_path}/sweep",
            f"data.cache_dir={tmp_path}/cache",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "WANDB_SILENT": "true", "RAY_DEDUP_LOGS": "0"},
        start_new_session=True,  # its own process group: Ray's processes too are ended below
    )


def finish(proc: subprocess.Popen, timeout: int = 600) -> tuple[int, str]:
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out
    finally:
        kill_group(proc)  # even once train.py exited: Ray's and joblib's leftovers in its group


def jobs_by_gpu(sweep: Path, n: int) -> dict[str, int]:
    results = [read_results(sweep / str(i)) for i in range(n)]
    assert all(r["status"] == "ok" for r in results), results
    return collections.Counter(r["device"]["cuda_visible_devices"] for r in results)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.ci
def test_a_token_cluster_takes_its_token_and_spreads_jobs_over_gpus(tmp_path: Path) -> None:
    """A real cluster (`ray start --head`) with Ray's token auth, which believes it has two
    GPUs: joined without the token, one error line; with it, four jobs on two GPUs, four
    finished W&B runs in one group, and no traceback in the sweep's log."""
    ray = str(Path(sys.executable).with_name("ray"))
    env = {**os.environ, "RAY_DEDUP_LOGS": "0"}
    env.pop("WANDB_SILENT", None)  # W&B as a user sees it: its teardown must print no traceback
    env.pop("RAY_AUTH_MODE", None)
    subprocess.run([ray, "get-auth-token", "--generate"], env=env, check=True, timeout=120)
    port = free_port()
    head = [ray, "start", "--head", f"--port={port}", "--num-cpus=4", "--num-gpus=2"]
    head += ["--include-dashboard=false", "--disable-usage-stats"]
    started = subprocess.run(
        head, env={**env, "RAY_AUTH_MODE": "token"}, capture_output=True, text=True, timeout=180
    )
    try:
        assert started.returncode == 0, started.stderr[-3000:]
        cluster = [
            "hydra/launcher=ray_gpus",
            f"hydra.launcher.ray.init.address=127.0.0.1:{port}",
            "hydra.launcher.ray.remote.num_gpus=0.5",
            f"hydra.sweep.dir={tmp_path}/sweep",
            f"data.cache_dir={tmp_path}/cache",
        ]
        command = [sys.executable, "train.py", "-m", *JOBS, *cluster]
        refused = run_command(command, env=env, timeout=300)
        assert refused.returncode == 2
        last = refused.stderr.strip().splitlines()[-1]
        assert last.startswith(f"error: hydra.launcher.ray.init.address=127.0.0.1:{port}: Ray ")
        assert "export RAY_AUTH_MODE=token" in last and "~/.ray/auth_token" in last
        assert not (tmp_path / "sweep" / "0").exists()  # no job started

        joined = run_command(command, env={**env, "RAY_AUTH_MODE": "token"}, timeout=600)
        log = joined.stdout + joined.stderr
        assert joined.returncode == 0, log[-3000:]
        assert "Traceback" not in log and "Exception ignored" not in log, log[-3000:]
    finally:
        subprocess.run([ray, "stop", "--force"], env=env, capture_output=True, timeout=120)
    sweep = tmp_path / "sweep"
    assert jobs_by_gpu(sweep, 4) == {"0": 2, "1": 2}  # a half GPU each: two jobs a GPU
    runs = [wandb_summary(sweep / str(i)) for i in range(4)]
    assert all(r["state"] == "finished" for r in runs)
    assert len({r["run_id"] for r in runs}) == 4
    assert {wandb_group(sweep / str(i)) for i in range(4)} == {f"{tmp_path.name}/sweep"}


@pytest.mark.ci
def test_joining_a_cluster_fails_in_one_line_naming_the_token() -> None:
    from hydra_plugins.poolbench_ray.launcher import join_failed

    assert "export RAY_AUTH_MODE=token" in join_failed("ray://h:10001", None)
    assert "holds the token the cluster was started with" in join_failed("h:6379", "token")


@pytest.mark.ci
def test_joblib_gpus_binds_each_worker_to_one_gpu(tmp_path: Path) -> None:
    placement = ["hydra/launcher=joblib_gpus", "placement.gpus=2", "placement.jobs_per_gpu=2"]
    code, out = finish(start(tmp_path, *JOBS, *placement, "logger=csv"))
    assert code == 0, out[-3000:]
    sweep = tmp_path / "sweep"
    assert jobs_by_gpu(sweep, 4) == {"0": 2, "1": 2}
    # Four workers (2 GPUs x 2 jobs each), each holding one numbered slot.
    assert sorted(p.name for p in (sweep / ".placement").iterdir()) == [
        f"worker-{i}" for i in range(4)
    ]


@pytest.mark.ci
def test_a_killed_ray_job_fails_alone(tmp_path: Path) -> None:
    overrides = [
        *FAST,
        WANDB,
        "trainer.max_epochs=3",
        "trainer.accelerator=cpu",
        "seed=0,1,2",
        *RAY,
    ]
    proc = start(tmp_path, *overrides)
    try:
        log = tmp_path / "sweep" / "1" / "train.log"
        deadline = time.time() + 300
        while time.time() < deadline and "pid " not in (log.read_text() if log.exists() else ""):
            time.sleep(0.5)
        pid = int(log.read_text().split("pid ")[1].split()[0])
        os.kill(pid, signal.SIGKILL)  # job 1's Ray worker, mid-run
        code, out = finish(proc)
    finally:
        kill_group(proc)  # also when waiting for the job's pid failed before finish()
    assert code != 0, out[-3000:]  # the sweep reports the lost job once the others are done
    sweep = tmp_path / "sweep"
    lost = read_results(sweep / "1")
    assert lost["status"] == "failed" and "Ray worker died" in lost["error"]
    assert lost["choices"]["head"] == "global"
    for i in (0, 2):
        assert read_results(sweep / str(i))["status"] == "ok"
        assert wandb_summary(sweep / str(i))["state"] == "finished"


@pytest.mark.parametrize(
    ("visible", "gpus", "expected"),
    [("", None, 2), ("", 3, 6), ("0,1,2,3", None, 8), ("3,5", 1, 2), ("3,5", 4, 4)],
)
def test_joblib_gpus_sizes_n_jobs(
    visible: str, gpus: int | None, expected: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from poolbench.sweeps.placement import gpu_ids, parallel_jobs

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert parallel_jobs(2, gpus) == expected  # two jobs a GPU (one "GPU" without any)
    if visible == "3,5":
        # the first of the GPUs this process may use; never more than there are
        assert gpu_ids(gpus) == ["3", "5"][:gpus]


def test_a_dead_workers_slot_is_taken_over(tmp_path: Path) -> None:
    from poolbench.sweeps.placement import claim_slot

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (tmp_path / "worker-0").write_text(str(os.getppid()))  # a live worker holds slot 0
    (tmp_path / "worker-1").write_text(str(gone.pid))  # slot 1's worker has exited
    assert claim_slot(tmp_path) == 1
    assert (tmp_path / "worker-1").read_text() == str(os.getpid())
    assert claim_slot(tmp_path) == 1  # a process keeps its slot
