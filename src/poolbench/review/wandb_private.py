"""The one private wandb_workspaces name poolbench uses, here only: the wire form W&B stores
for a report or workspace. The library serializes it only inside `save()` (which needs the
server); offline, the dashboard writes and checks this form itself. tests/review/test_dashboard.py
(test_wandb_workspaces_still_serializes) names it, so a release that moves it fails there."""

from __future__ import annotations

from typing import Any

TO_MODEL = "_to_model"


def spec(obj: Any) -> dict[str, Any]:
    """The wire form W&B stores for a wandb_workspaces Report or Workspace (works offline)."""
    return getattr(obj, TO_MODEL)().model_dump(by_alias=True, exclude_none=True, mode="json")
