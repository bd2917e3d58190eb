"""The fast path (fast_path.py): stacked steps train exactly as the eager path does; the plan
turns it on only where it can run; CUDA graph capture is checked where a GPU is."""

import csv
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import FAST, make_cfg, read_results

from poolbench.data.loader import EpochSampler, ImageStore, InMemoryLoader, Normalizer
from poolbench.errors import ConfigError
from poolbench.training.fast_path import plan
from poolbench.training.job import train

STACKED = ["fast.enabled=true", "fast.stack=3"]


def loader(stack: int, max_batches: int | None = None) -> InMemoryLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (50, 3, 8, 8), dtype=torch.uint8, generator=g)
    y = torch.arange(50) % 10
    return InMemoryLoader(
        ImageStore(x, pad=2, mirror=True),
        y,
        EpochSampler(50, 8, shuffle=True, seed=1),
        Normalizer([0.5] * 3, [0.25] * 3, (8, 8)),
        seed=1,
        stack=stack,
        max_batches=max_batches,
    )


def test_stacks_hold_the_same_batches_in_the_same_order() -> None:
    plain, stacked = loader(1), loader(3)
    batches = list(plain)
    stacks = list(stacked)
    # 50 images, batch 8: 6 full batches in stacks of 3, then the short batch of 2 alone
    assert [tuple(s[0].shape[:2]) for s in stacks] == [(3, 8), (3, 8), (1, 2)]
    assert len(stacked) == 3 and len(plain) == 7 and stacked.batches() == 7
    flat_x = [b for s in stacks for b in s[0]]
    flat_y = [b for s in stacks for b in s[1]]
    assert len(flat_x) == len(batches) == 7
    for (x, y), sx, sy in zip(batches, flat_x, flat_y, strict=True):
        assert torch.equal(x, sx) and torch.equal(y, sy)
        assert sx.is_contiguous(memory_format=torch.channels_last)
    # an int limit_train_batches counts batches, not stacks
    limited = loader(3, max_batches=5)
    assert [tuple(s[0].shape[:2]) for s in limited] == [(3, 8), (2, 8)] and len(limited) == 2


def test_a_resumed_loader_goes_on_with_the_epochs_next_batch() -> None:
    # What Lightning saves in a checkpoint inside an epoch (interrupted.ckpt) and hands back on
    # resuming: the epoch's next items are those an uninterrupted loader would have given.
    whole = list(loader(3))
    first = loader(3)
    it = iter(first)
    next(it)  # handed out: not trained yet (an exception inside the step, Ctrl-C, stops here)
    assert first.state_dict() == {"epoch": 0, "images": 0, "stack": 3}
    first.trained(24)  # the stack of 3 batches of 8 has trained (PoolNetModule says so)
    state = first.state_dict()
    assert state == {"epoch": 0, "images": 24, "stack": 3}
    resumed = loader(3)
    resumed.load_state_dict(state)
    assert resumed.state_dict() == state  # saved again before it ran: the same place
    rest = list(resumed)
    assert [tuple(s[1].shape) for s in rest] == [(3, 8), (1, 2)]
    for (x, y), (wx, wy) in zip(rest, whole[1:], strict=True):
        assert torch.equal(x, wx) and torch.equal(y, wy)
    resumed.trained(24)
    resumed.trained(2)
    assert resumed.state_dict() == {"epoch": 0, "images": 50, "stack": 3}
    assert len(list(resumed)) == 3  # a resume applies to one epoch, once
    later = loader(3)
    later.load_state_dict(state)
    later.sampler.set_epoch(1)  # a checkpoint from an earlier epoch skips nothing
    assert len(list(later)) == 3
    # Lightning's count is of items: stacks there, batches here. Either way round it is an
    # error, and the checkpoint's place stays (a crash checkpoint written then keeps it).
    for saved_stack, stack in ((3, 1), (1, 3)):
        other = loader(stack)
        other.load_state_dict({**state, "stack": saved_stack})
        with pytest.raises(
            ConfigError,
            match=f"taking {saved_stack} batch.es. per training step, this run takes {stack}:",
        ):
            next(iter(other))
        assert other.state_dict() == {**state, "stack": saved_stack}
    eager = loader(1)
    eager.load_state_dict({**state, "images": 50})  # a whole epoch, as last.ckpt: nothing left
    assert list(eager) == []


def fake_trainer(device: str = "cpu", world_size: int = 1, precision: str = "32-true"):
    return SimpleNamespace(
        world_size=world_size,
        precision=precision,
        strategy=SimpleNamespace(root_device=torch.device(device)),
    )


def planned(tmp_path: Path, overrides: list[str], **trainer):
    return plan(make_cfg([*FAST, *overrides], tmp_path), fake_trainer(**trainer))


def test_plan_is_on_for_one_gpu_and_off_where_it_cannot_run(tmp_path: Path) -> None:
    p = planned(tmp_path, [], device="cuda")
    assert (p.stack, p.cuda_graph, p.on) == (16, True, True)
    p = planned(tmp_path, [])  # auto on a CPU: Lightning's eager step, as before
    assert not p.on and "CUDA" in p.why_not
    p = planned(tmp_path, ["fast.enabled=true"])  # stacks on a CPU too, no graph there
    assert (p.stack, p.cuda_graph) == (16, False)
    p = planned(tmp_path, ["fast.enabled=false"], device="cuda")
    assert not p.on
    p = planned(tmp_path, [], device="cuda", world_size=2)
    assert not p.on and "DDP" in p.why_not
    p = planned(tmp_path, [], device="cuda", precision="16-mixed")
    assert not p.on and "16-mixed" in p.why_not
    # stacked, but no graph: what a graph would freeze or cannot hold
    p = planned(tmp_path, ["scheduler=onecycle"], device="cuda")
    assert (p.stack, p.cuda_graph) == (16, False) and "onecycle" in p.why_not
    p = planned(tmp_path, ["optimizer=sgd"], device="cuda")
    assert (p.stack, p.cuda_graph) == (16, False) and "SGD" in p.why_not
    p = planned(tmp_path, ["fast.cuda_graph=false"], device="cuda")
    assert (p.stack, p.cuda_graph) == (16, False)


@pytest.mark.parametrize(
    "overrides, named",
    [
        (["trainer.gradient_clip_val=1.0"], "trainer.gradient_clip_val=1.0"),
        (["trainer.accumulate_grad_batches=2"], "trainer.accumulate_grad_batches=2"),
        (["data.loader=torchvision"], "data.loader=torchvision"),
        (["trainer.limit_train_batches=0.5"], "trainer.limit_train_batches=0.5"),
    ],
)
def test_fast_true_with_a_conflict_is_a_one_line_error(
    tmp_path: Path, overrides: list[str], named: str
) -> None:
    with pytest.raises(ConfigError) as err:
        planned(tmp_path, ["fast.enabled=true", *overrides])
    message = str(err.value)
    assert named in message and "fast.enabled=auto" in message and "\n" not in message
    assert not planned(tmp_path, overrides, device="cuda").on  # auto: quietly eager


def test_bad_fast_enabled_is_named(tmp_path: Path) -> None:
    from poolbench.training.checks import validate

    with pytest.raises(ConfigError, match="fast.enabled='sometimes'"):
        validate(make_cfg([*FAST, "fast.enabled=sometimes"], tmp_path))


def fit(
    tmp_path: Path, name: str, extra: list[str], trainer: str = "cpu"
) -> tuple[dict, list[tuple[int, list[str]]]]:
    # trainer=cpu: these compare stacking alone, also on a machine with a GPU
    out = tmp_path / name
    cfg = make_cfg(
        [
            *FAST,
            f"trainer={trainer}",
            "data.augment=true",
            "logger=csv",
            "seed=3",
            "trainer.log_every_n_steps=3",
            *extra,
        ],
        out,
        cache=tmp_path / "cache",
    )
    train(cfg)
    rows = list(csv.DictReader((out / "csv/metrics.csv").open()))
    logged = [
        (int(r["step"]), sorted(k for k, v in r.items() if v and k not in ("step", "epoch")))
        for r in rows
    ]
    return read_results(out), logged


# (data.n_train, overrides): 90% of n_train trains, in batches of 128
CASES = {
    # 540 images: 5 steps an epoch, as stacks of 3, 1 and the short batch alone
    "short_last_batch": (600, []),
    # 512 images: 4 full batches, one stack of 4 that crosses a logging step (3); validation
    # must still log at the eager path's step, the epoch's last
    "epoch_ends_in_a_stack": (569, ["fast.stack=4"]),
    "int_batch_limit": (600, ["trainer.limit_train_batches=4"]),
    "onecycle": (600, ["scheduler=onecycle"]),  # it also cycles Adam's betas, per step
}


@pytest.mark.parametrize("case", CASES)
def test_stacked_steps_train_exactly_as_eager_steps(tmp_path: Path, case: str) -> None:
    n_train, extra = CASES[case]
    common = [f"data.n_train={n_train}", *extra]
    eager, eager_log = fit(tmp_path, "eager", common)
    stacked, stacked_log = fit(tmp_path, "stacked", [*STACKED, *common])  # extra wins
    assert eager["fast_path"] == {"stack": 1, "cuda_graph": False}
    stack = 4 if "fast.stack=4" in extra else 3
    assert stacked["fast_path"] == {"stack": stack, "cuda_graph": False}
    for key in ("val/acc", "val/acc_best", "test/acc", "test/loss", "train/acc", "lr-AdamW"):
        assert stacked["metrics"][key] == pytest.approx(eager["metrics"][key], abs=1e-6), key
    assert stacked["metrics"]["train/loss_epoch"] == pytest.approx(
        eager["metrics"]["train/loss_epoch"], rel=1e-5
    )
    # The loggers see the same steps and names: per-step loss every 3 optimizer steps, epoch
    # metrics and validation at each epoch's last step, test after.
    assert stacked_log == eager_log
    assert any("train/loss_step" in names for _, names in eager_log)
    ckpts = [
        torch.load(tmp_path / n / "checkpoints/last.ckpt", map_location="cpu", weights_only=True)
        for n in ("eager", "stacked")
    ]
    batches = -(-round(n_train * 0.9) // 128)  # an epoch's optimizer steps, the short one too
    if "trainer.limit_train_batches=4" in extra:
        batches = 4
    assert ckpts[0]["global_step"] == ckpts[1]["global_step"] == 2 * batches
    for a, b in zip(*(c["lr_schedulers"][0]["_last_lr"] for c in ckpts), strict=True):
        assert a == pytest.approx(b)  # the schedule ran out at the same step
        if case != "onecycle":
            assert a == pytest.approx(0.0, abs=1e-9)


def test_a_failed_capture_goes_on_eagerly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # On a CPU: pretend to be a GPU run whose graph cannot be recorded (an op that does not
    # capture); the run must end as the eager one does, and say that no graph ran.
    from poolbench.training import fast_path, module

    eager, _ = fit(tmp_path, "eager", [])

    def no_capture(graph: object, **options: object) -> None:
        raise RuntimeError("operation not permitted when stream is capturing")

    cuda = fast_path.torch.cuda
    monkeypatch.setattr(fast_path, "plan", lambda cfg, trainer: fast_path.FastPlan(3, True))
    monkeypatch.setattr(module, "optimizer_kwargs", lambda plan: {})  # capturable needs CUDA
    monkeypatch.setattr(fast_path.StackedSteps, "_warmup_step", fast_path.StackedSteps._eager_step)
    monkeypatch.setattr(cuda, "CUDAGraph", lambda: object())
    monkeypatch.setattr(cuda, "graph", no_capture)
    fell_back, _ = fit(tmp_path, "fell_back", [])
    assert fell_back["fast_path"] == {"stack": 3, "cuda_graph": False}  # what ran
    assert "CUDA graph capture failed, eager steps instead: operation not permitted" in caplog.text
    for key in ("val/acc", "test/acc", "test/loss", "train/acc"):
        assert fell_back["metrics"][key] == pytest.approx(eager["metrics"][key], abs=1e-6), key


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dict, list, list[int]]]:
    """Eager and stacked runs that max_steps=7 stops inside the second epoch's first stack of 3
    (5 steps an epoch: 4 full batches of 128 and 28 images): results, what the CSV logger got,
    and the images EpochTimer counted per epoch."""
    from poolbench.training.callbacks import EpochTimer

    tmp_path = tmp_path_factory.mktemp("capped")
    timers: list[EpochTimer] = []
    init = EpochTimer.__init__

    def keep(self: EpochTimer) -> None:
        init(self)
        timers.append(self)

    runs: dict = {"folder": tmp_path}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(EpochTimer, "__init__", keep)
        for name, extra in (("eager", []), ("stacked", STACKED)):
            before = len(timers)
            results, logged = fit(tmp_path, name, [*extra, "trainer.max_steps=7"])
            assert len(timers) == before + 1, name  # this run's own timer
            ckpt = torch.load(tmp_path / name / "checkpoints/last.ckpt", weights_only=True)
            assert ckpt["global_step"] == 7 and results["status"] == "ok", name
            runs[name] = results, logged, timers[-1].images_per_epoch
    return runs


def test_max_steps_inside_a_stack_logs_at_the_eager_step(capped: dict) -> None:
    (eager, eager_log, _), (stacked, stacked_log, _) = capped["eager"], capped["stacked"]
    assert stacked["fast_path"] == {"stack": 3, "cuda_graph": False}
    for key in ("train/acc", "test/acc", "test/loss"):
        assert stacked["metrics"][key] == pytest.approx(eager["metrics"][key], abs=1e-6), key

    def epoch_steps(logged: list) -> list[int]:
        return [step for step, names in logged if "train/acc" in names]

    # the epochs' last optimizer steps, 5 and 7, on Lightning's 0-based axis; test after them
    assert epoch_steps(eager_log) == epoch_steps(stacked_log) == [4, 6]
    assert stacked_log[-1][0] == eager_log[-1][0] == 7 and "test/acc" in stacked_log[-1][1]
    assert stacked_log == eager_log


def test_epoch_timer_counts_only_the_images_a_cut_stack_trained_on(capped: dict) -> None:
    # 540 images in the first epoch; in the second, 2 steps of 128 where the stack held 3
    assert capped["eager"][2] == capped["stacked"][2] == [540, 2 * 128]


def test_resuming_inside_an_epoch_with_another_stack_is_refused_before_fit(
    capped: dict, tmp_path: Path
) -> None:
    from poolbench.training.fast_path import check_resume
    from poolbench.training.job import train

    # max_steps stopped the stacked run 2 steps into its second epoch's first stack of 3
    inside = capped["folder"] / "stacked/checkpoints/last.ckpt"
    loop = torch.load(inside, weights_only=True)["loops"]["fit_loop"]
    assert loop["epoch_loop.batch_progress"]["is_last_batch"] is False
    assert loop["state_dict"]["combined_loader"] == [{"epoch": 1, "images": 256, "stack": 3}]
    check_resume(str(inside), 3)  # the same stack: goes on
    message = (
        "the checkpoint was saved inside an epoch by a run taking 3 batch(es) per training "
        "step, this run takes 1: resume it with the same fast.enabled and fast.stack, or from "
        "a checkpoint at an epoch's end"
    )
    with pytest.raises(ConfigError) as err:
        check_resume(str(inside), 1)
    assert str(err.value) == message
    # Through a run: refused before fit, so no checkpoint (nor crash checkpoint) is written.
    cfg = make_cfg([*FAST, "trainer=cpu", "logger=csv", f"ckpt_path={inside}"], tmp_path / "run")
    with pytest.raises(ConfigError) as err:
        train(cfg)
    assert str(err.value) == message
    assert not list((tmp_path / "run").rglob("*.ckpt"))
    # The same checkpoint marked as written at its epoch's end goes on with any stack.
    whole = tmp_path / "whole.ckpt"
    ckpt = torch.load(inside, weights_only=True)
    ckpt["loops"]["fit_loop"]["epoch_loop.batch_progress"]["is_last_batch"] = True
    torch.save(ckpt, whole)
    check_resume(str(whole), 1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA GPU")
def test_cuda_graph_trains_as_the_eager_path_and_repeats_itself(tmp_path: Path) -> None:
    runs = {
        name: fit(tmp_path, name, ["data.n_train=3000", *extra], trainer="gpu")[0]
        for name, extra in (
            ("graph", ["fast.stack=4"]),
            ("graph_again", ["fast.stack=4"]),
            ("eager", ["fast.enabled=false"]),
        )
    }
    assert runs["graph"]["fast_path"] == {"stack": 4, "cuda_graph": True}
    assert runs["eager"]["fast_path"] == {"stack": 1, "cuda_graph": False}
    for key in ("val/acc", "test/acc", "test/loss"):
        assert runs["graph"]["metrics"][key] == runs["graph_again"]["metrics"][key], key
    # the same training: capturable AdamW rounds differently, nothing else changes
    assert runs["graph"]["metrics"]["test/acc"] == pytest.approx(
        runs["eager"]["metrics"]["test/acc"], abs=0.03
    )
    assert runs["graph"]["metrics"]["test/acc"] > 0.5
