"""The precision a run is evaluated at: the command's, else the run's, else the default."""

import json
from pathlib import Path

from conftest import make_cfg


def test_eval_precision_is_the_commands_else_the_runs(tmp_path: Path) -> None:
    from poolbench.review.trained import training_precision

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    ckpt = run / "checkpoints" / "last.ckpt"
    cfg = make_cfg([f"ckpt_path={ckpt}"], tmp_path / "eval", config="eval")
    assert training_precision(cfg, []) == (
        "auto",
        "this machine's default: no results.json beside the run",
    )
    (run / "results.json").write_text(json.dumps({"precision": "bf16-mixed"}))
    assert training_precision(cfg, []) == ("bf16-mixed", f"the run's, from {run / 'results.json'}")
    named = make_cfg([f"ckpt_path={ckpt}", "trainer.precision=64-true"], tmp_path / "e2", "eval")
    assert training_precision(named, ["trainer.precision=64-true"]) == (
        "64-true",
        "the command's trainer.precision=64-true",
    )
