"""Sweep folder -> a saved W&B workspace and report for its runs (offline: their specs as JSON).

Built with wandb-workspaces (W&B's workspaces and reports as code). Every key a panel names is
checked against what the sweep's W&B runs logged, read from their .wandb files, before anything
is written or saved.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from poolbench.errors import DashboardError, OneLineArgumentParser, answered
from poolbench.review.panel_checks import check_keys, workspace_panels
from poolbench.review.wandb_panels import build_report, build_workspace
from poolbench.review.wandb_private import spec
from poolbench.review.wandb_runs import RunLog, find_runs, one_value
from poolbench.training.loggers import wandb_online

WORKSPACE_FILE = "wandb_workspace.json"
REPORT_FILE = "wandb_report.json"


def sync_command(sweep_dir: Path, entity: str, project: str, runs: list[RunLog]) -> str:
    where = (f"--entity {entity} " if entity else "") + f"--project {project}"
    # <job>/wandb/offline-run-*, or <part>/<job>/wandb/... for a sweep run in parts.
    depths = sorted({len(r.path.relative_to(sweep_dir).parts) - 2 for r in runs}) or [1]
    globs = " ".join(f"{shlex.quote(str(sweep_dir))}/{'*/' * d}wandb/offline-run-*" for d in depths)
    return f"wandb sync {where} {globs}"


def dashboard(
    sweep_dir: Path,
    entity: str | None = None,
    project: str | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    sweep_dir = Path(sweep_dir)
    runs = find_runs(sweep_dir)
    group = one_value(runs, "group", sweep_dir)
    if not group:
        raise DashboardError(
            f"the W&B runs under {sweep_dir} have no group: was it run as a sweep (-m)?"
        )
    project = project or one_value(runs, "project", sweep_dir)
    entity = entity or one_value(runs, "entity", sweep_dir)  # empty for runs made offline
    online = not dry_run and wandb_online()
    if online and not entity:
        import wandb

        entity = wandb.Api().default_entity or ""
    name = f"poolbench {group}"
    workspace = build_workspace(runs, entity, project, group, name)
    report = build_report(sweep_dir, entity, project, group, online)
    workspace_spec, report_spec = spec(workspace), spec(report)
    checked = check_keys(workspace_panels(workspace_spec), runs, sweep_dir)

    result: dict[str, Any] = {
        "group": group,
        "entity": entity,
        "project": project,
        "runs": len(runs),
        "keys_checked": checked,
        "sync": sync_command(sweep_dir, entity, project, runs),
    }
    if not online:
        (sweep_dir / WORKSPACE_FILE).write_text(json.dumps(workspace_spec, indent=1) + "\n")
        (sweep_dir / REPORT_FILE).write_text(json.dumps(report_spec, indent=1) + "\n")
        result["files"] = [str(sweep_dir / WORKSPACE_FILE), str(sweep_dir / REPORT_FILE)]
        return result

    import wandb

    uploaded = wandb.Api().runs(f"{entity}/{project}", filters={"group": group}, per_page=1)
    if len(uploaded) == 0:
        raise DashboardError(
            f"W&B has no runs of group {group} in {entity}/{project}; upload them first: "
            f"{result['sync']}"
        )
    workspace.save()
    report.save()
    result["workspace_url"] = workspace.url
    result["report_url"] = report.url
    return result


def main(argv: list[str] | None = None) -> None:
    parser = OneLineArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "sweep_dir", type=Path, help="a sweep folder, e.g. outputs/train-sweep/<date>"
    )
    parser.add_argument("--entity", help="W&B entity (default: the runs', else your default)")
    parser.add_argument("--project", help="W&B project (default: the runs', i.e. poolbench)")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help=f"only write {WORKSPACE_FILE} and {REPORT_FILE} into the sweep folder",
    )
    args = parser.parse_args(argv)
    # bad input: one error: line, exit 2
    result = answered(dashboard, args.sweep_dir, args.entity, args.project, args.dry_run)
    print(
        f"{result['runs']} W&B runs of group {result['group']}: "
        f"{result['keys_checked']} panel keys checked against what they logged"
    )
    if "files" in result:
        why = "--dry-run" if args.dry_run else "offline: no W&B credentials (wandb login)"
        print(f"{why}: wrote {' and '.join(result['files'])}")
        again = f"poolbench-dashboard {args.sweep_dir}"
        again += f" --entity {args.entity}" if args.entity else ""
        again += f" --project {args.project}" if args.project else ""
        print("to make the dashboard in W&B, upload the runs and run this again with credentials:")
        print(f"  {result['sync']}")
        print(f"  {again}")
    else:
        print(f"workspace: {result['workspace_url']}")
        print(f"report:    {result['report_url']}")


if __name__ == "__main__":
    main()
