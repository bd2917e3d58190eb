"""W&B goes online only with credentials (or WANDB_MODE), and the logger a run builds follows."""

from pathlib import Path

import pytest
from conftest import FAST, make_cfg

SECRET = "sk-FAKE-WANDB-KEY-7c1e"  # never a real key: nothing here reaches the network


def test_wandb_online_only_with_credentials(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from poolbench.training.loggers import build_loggers, wandb_logger, wandb_offline, wandb_online

    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    assert wandb_offline(None) is True
    monkeypatch.setenv("WANDB_API_KEY", SECRET)
    assert wandb_offline(None) is False
    assert wandb_offline(True) is True  # logger.wandb.offline=true still wins
    monkeypatch.delenv("WANDB_API_KEY")
    netrc = tmp_path / ".netrc"  # what `wandb login` writes
    netrc.write_text(f"machine api.wandb.ai\n  login user\n  password {SECRET}\n")
    netrc.chmod(0o600)
    assert wandb_offline(None) is False
    netrc.unlink()
    monkeypatch.setenv("WANDB_MODE", "online")
    assert wandb_offline(None) is False  # wandb reads WANDB_MODE itself
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_API_KEY", SECRET)
    assert wandb_offline(None) is True  # WANDB_MODE says, credentials or not
    from poolbench.review import dashboard

    assert dashboard.wandb_online is wandb_online  # the dashboard asks the same question
    monkeypatch.delenv("WANDB_API_KEY")
    monkeypatch.delenv("WANDB_MODE")
    assert wandb_offline(False) is False  # logger.wandb.offline=false

    # The logger a run would build: online with a key, offline without; nothing started yet.
    cfg = make_cfg([*FAST, "logger=default"], tmp_path / "run")
    monkeypatch.setenv("WANDB_API_KEY", SECRET)
    online = wandb_logger(build_loggers(cfg, "defaults", None, []))
    assert online._offline is False and online._experiment is None
    monkeypatch.delenv("WANDB_API_KEY")
    assert wandb_logger(build_loggers(cfg, "defaults", None, []))._offline is True
