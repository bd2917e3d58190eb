"""Sweep folder -> report.md, results.csv, accuracy_vs_params.png, curves.png.

Reads only what jobs left on disk (results.json, .hydra/, csv/metrics.csv): no network, no W&B.
"""

from __future__ import annotations

from pathlib import Path

from poolbench.errors import OneLineArgumentParser, answered
from poolbench.review import shift_report
from poolbench.review.claims import claims, lecture
from poolbench.review.comparisons import comparison_line, comparisons
from poolbench.review.cost import cost_line, sweep_cost
from poolbench.review.plots import plot_curves, plot_scatter
from poolbench.review.runs import Job, config_key, load_sweep
from poolbench.review.stats import Row, summarize
from poolbench.review.tables import table, write_csv


def markdown(rows: list[Row], jobs: list[Job], sweep_dir: Path) -> str:
    cost = sweep_cost(jobs)
    lines = [
        f"# Sweep report: {sweep_dir.name}",
        "",
        f"{len(jobs)} jobs, {sum(j.ok for j in jobs)} ok. Accuracies: mean ± std over seeds.",
        *(["", cost_line(cost)] if cost else []),
        "",
        *table(rows),
    ]
    stated = claims(rows)
    if stated:
        lines += ["", "## The lecture's claims", "", lecture().signs, ""]
        lines += [f"- {sentence}" for sentence in stated]
    compared = comparisons(rows)
    if compared:
        lines += ["", "## Comparisons", ""]
        lines += [f"- {comparison_line(c)}" for c in compared]
    lines += shift_report.section(rows, compared)
    failed = [j for j in jobs if not j.ok]
    if failed:
        lines += ["", "## Failed jobs", ""]
        for j in failed:
            lines.append(
                f"- `{j.dir.name}` ({j.variant or ','.join(config_key(j)[:2])}): "
                f"{j.results.get('status')}: {j.results.get('error')}"
            )
    lines += [
        "",
        "![accuracy vs parameters](accuracy_vs_params.png)",
        "",
        "![validation accuracy per epoch](curves.png)",
        "",
    ]
    return "\n".join(lines)


def report(sweep_dir: Path) -> Path:
    sweep_dir = Path(sweep_dir)
    jobs = load_sweep(sweep_dir)
    rows = summarize(jobs)
    write_csv(jobs, sweep_dir / "results.csv")
    plot_scatter(jobs, sweep_dir / "accuracy_vs_params.png")
    plot_curves(jobs, sweep_dir / "curves.png")
    shift_report.plot(jobs, sweep_dir / shift_report.FIGURE, config_key)
    out = sweep_dir / "report.md"
    out.write_text(markdown(rows, jobs, sweep_dir))
    return out


def write_doc(sweep_dirs: list[Path], doc: Path, preface: str) -> None:
    """One markdown page for several sweeps, with their plots copied beside it (docs/)."""
    import shutil

    doc.parent.mkdir(parents=True, exist_ok=True)
    parts = [preface.rstrip() + "\n"] if preface else []
    for d in sweep_dirs:
        text = (d / "report.md").read_text()
        for png in ("accuracy_vs_params.png", "curves.png", shift_report.FIGURE):
            if not (d / png).is_file():  # shift_curves.png: only where runs measured shifts
                continue
            shutil.copy(d / png, doc.parent / f"{d.name}_{png}")
            text = text.replace(f"]({png})", f"]({d.name}_{png})")
        parts.append(text.replace("# Sweep report: ", "## Sweep: ", 1))
    doc.write_text("\n".join(parts))


def main(argv: list[str] | None = None) -> None:
    parser = OneLineArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dirs", nargs="+", type=Path, help="sweep folder(s) under outputs/")
    parser.add_argument("--doc", type=Path, help="also write one page for all sweeps here")
    parser.add_argument("--preface", type=Path, help="markdown to open the --doc page with")
    args = parser.parse_args(argv)
    for d in args.sweep_dirs:
        out = answered(report, d)  # bad input: one error: line, exit 2
        print(out.read_text())
        pictures = "accuracy_vs_params.png, curves.png"
        if (d / shift_report.FIGURE).is_file():
            pictures += f", {shift_report.FIGURE}"
        print(f"wrote {out}, results.csv, {pictures} in {d}")
    if args.doc:
        preface = args.preface.read_text() if args.preface else ""
        write_doc(args.sweep_dirs, args.doc, preface)
        print(f"wrote {args.doc}")


if __name__ == "__main__":
    main()
