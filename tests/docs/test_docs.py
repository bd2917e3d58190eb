"""README's first screen and the docs site (mkdocs.yml, docs/*.md), read without training or
building: README stays a teacher's first screen, the nav and docs/ agree, README's links land,
and every `outputs/…` folder the pages name is one the configs make a command write."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml
from conftest import CONF, ROOT

README = ROOT / "README.md"
DOCS = ROOT / "docs"


def pages() -> dict[str, str]:
    return {p.relative_to(ROOT).as_posix(): p.read_text() for p in [README, *DOCS.glob("*.md")]}


def test_readme_is_the_teachers_first_screen() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 150
    for fact in (
        "270,942 parameters",  # the lecture's two nets
        "32,862 parameters",
        "head=flatten pool=max",
        "head=global pool=max",
        "model.init=default tta=none",  # the lecture's way
        "python train.py -m sweep=lecture_grid",
        "outputs/lecture_grid-sweep/<date>_<time>",
        "scripts/report.py",
        "docs/results.md",
    ):
        assert fact in text, fact


def test_readme_links_land() -> None:
    # MkDocs checks the pages' links; README is outside docs_dir, so its own are checked here.
    text = README.read_text()
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        assert (ROOT / path).is_file(), target
        if anchor and path.endswith(".md"):  # as MkDocs' toc would spell the heading
            headings = re.findall(r"^#+ (.+)$", (ROOT / path).read_text(), re.M)
            slugs = {
                re.sub(r"[-\s]+", "-", re.sub(r"[^\w\s-]", "", h).strip().lower()) for h in headings
            }
            assert anchor in slugs, target


class _TolerantLoader(yaml.SafeLoader):
    """mkdocs.yml may carry tags (`!!python/name:…` for Material's extensions, `!ENV`): the nav
    does not need them, so they load as None."""


_TolerantLoader.add_multi_constructor("tag:yaml.org,2002:python/", lambda *_: None)
_TolerantLoader.add_multi_constructor("!", lambda *_: None)


def nav_files(nav: list | dict | str) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, dict):
        return [f for value in nav.values() for f in nav_files(value)]
    return [f for entry in nav for f in nav_files(entry)]


def test_nav_lists_every_page_and_only_pages_that_exist() -> None:
    cfg = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=_TolerantLoader)
    assert cfg["docs_dir"] == "docs"
    listed = [f for f in nav_files(cfg["nav"]) if not f.startswith(("http://", "https://"))]
    assert len(listed) == len(set(listed)), listed
    on_disk = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert sorted(on_disk - set(listed)) == [], "pages missing from mkdocs.yml's nav"
    assert sorted(set(listed) - on_disk) == [], "nav entries without their page in docs/"


# --- outputs folders: what each command writes, derived from the configs -------------------

# The entry points and the config each composes (their @hydra.main config_name).
ENTRY_CONFIG = {
    "train.py": "train",
    "poolbench-train": "train",
    "eval.py": "eval",
    "poolbench-eval": "eval",
    "embed.py": "embed",
    "poolbench-embed": "embed",
}


def task_names() -> dict[str, str]:
    """Every config that sets task_name, by its path under conf/ without .yaml: `train`,
    `sweep/lecture_grid`, `hparams_search/optuna`, …"""
    names = {}
    for path in Path(CONF).rglob("*.yaml"):
        cfg = yaml.safe_load(path.read_text())
        if isinstance(cfg, dict) and "task_name" in cfg:
            names[path.relative_to(CONF).with_suffix("").as_posix()] = str(cfg["task_name"])
    return names


def folder_templates() -> dict[str, str]:
    """hydra.run.dir and hydra.sweep.dir's folder under outputs/, e.g. `${task_name}-sweep`."""
    hydra = yaml.safe_load((Path(CONF) / "hydra" / "default.yaml").read_text())
    templates = {}
    for mode in ("run", "sweep"):
        parts = hydra[mode]["dir"].split("/")
        assert parts[:2] == ["${paths.root_dir}", "outputs"], hydra[mode]["dir"]
        assert "${task_name}" in parts[2], hydra[mode]["dir"]  # what the check below relies on
        templates[mode] = parts[2]
    return templates


def folder(mode: str, task: str) -> str:
    return folder_templates()[mode].replace("${task_name}", task)


def words(command: str) -> list[str]:
    try:
        return shlex.split(command, comments=True)
    except ValueError:  # an unbalanced quote in a fragment: plain words are enough here
        return command.split("#")[0].split()


def writes(command: str, names: dict[str, str]) -> set[str]:
    """The folders under outputs/ that a command line writes (empty: not a Hydra entry point)."""
    ws = words(command)
    at = next((i for i, w in enumerate(ws) if Path(w).name in ENTRY_CONFIG), None)
    if at is None:
        return set()
    config, args = ENTRY_CONFIG[Path(ws[at]).name], ws[at + 1 :]
    mode = "sweep" if {"-m", "--multirun"} & set(args) else "run"
    task, chosen = names[config], {}
    for arg in args:
        key, _, value = arg.lstrip("+").partition("=")
        if f"{key}/{value}" in names:  # a group option that sets task_name: sweep=, hparams_search=
            task = names[f"{key}/{value}"]
        chosen[key] = value
    task = chosen.get("task_name", task)  # the command line wins
    if f"hydra.{mode}.dir" in chosen:
        return {chosen[f"hydra.{mode}.dir"].split("/")[1]}
    return {folder(mode, task)}


OUTPUTS = re.compile(r"(?<![\w./-])outputs/([^\s/`'\")\]|,]+)")


def units(text: str) -> list[tuple[str, list[str]]]:
    """A page as (text, commands) units: each fenced code block (its lines, continuations
    joined), each indented code paragraph, and each other paragraph (its inline code spans of
    more than one word)."""
    out, lines, i = [], text.splitlines(), 0
    para: list[str] = []

    def flush() -> None:
        if para:
            body = "\n".join(para)
            if all(line.startswith("    ") and "`" not in line for line in para):
                out.append((body, body.replace("\\\n", " ").splitlines()))
            else:
                spans = [" ".join(s.split()) for s in re.findall(r"`([^`]+)`", body)]
                out.append((body, [s for s in spans if " " in s]))  # `eval.py` alone: a name
            para.clear()

    while i < len(lines):
        line = lines[i]
        if line.strip().startswith("```"):
            flush()
            j = i + 1
            while j < len(lines) and not lines[j].strip().startswith("```"):
                j += 1
            body = "\n".join(lines[i + 1 : j])
            out.append((body, body.replace("\\\n", " ").splitlines()))
            i = j + 1
            continue
        if line.strip():
            para.append(line)
        else:
            flush()
        i += 1
    flush()
    return out


def folder_problems(docs: dict[str, str]) -> list[str]:
    """Every `outputs/<folder>` a page names must be one a command can write (a task's run or
    sweep folder, the placeholder `<task_name>`, or a hydra.*.dir the page sets); where a code
    block or paragraph also runs a command, the folders it names must be the ones it writes."""
    names = task_names()
    tasks = {*names.values(), "<task_name>"}
    possible = {folder(mode, t) for mode in ("run", "sweep") for t in tasks}
    generic = {folder(mode, "<task_name>") for mode in ("run", "sweep")}
    problems = []
    for page, text in docs.items():
        set_here = set(re.findall(r"hydra\.(?:run|sweep)\.dir=outputs/([\w.-]+)", text))
        for body, commands in units(text):
            named = OUTPUTS.findall(body)
            written = set().union(*(writes(c, names) for c in commands))
            for name in named:
                if name not in possible | set_here:
                    problems.append(f"{page}: outputs/{name} is no folder a command writes")
                elif written and name not in written | generic | set_here:
                    ran = [c for c in commands if writes(c, names)]
                    problems.append(
                        f"{page}: outputs/{name} beside {ran}, which write(s) "
                        f"{sorted('outputs/' + w for w in written)}"
                    )
    return problems


def test_folders_the_docs_name_are_the_folders_the_commands_write() -> None:
    assert folder_problems(pages()) == []


def test_folder_check_knows_the_configs() -> None:
    names = task_names()
    assert writes("python train.py -m sweep=lecture_grid", names) == {"lecture_grid-sweep"}
    assert writes("python train.py -m head=flatten,global", names) == {"train-sweep"}
    assert writes("python train.py -m hparams_search=optuna", names) == {"optuna-sweep"}
    assert writes("python train.py head=flatten pool=max", names) == {"train"}
    assert writes(".venv/bin/python eval.py ckpt_path=x", names) == {"eval"}
    assert writes("python train.py -m hydra.sweep.dir=outputs/grid/a", names) == {"grid"}
    assert writes("wandb sync outputs/train/x", names) == set()


def test_folder_check_catches_a_review_of_the_wrong_sweep() -> None:
    # The old README reviewed `outputs/train-sweep/…` right after `sweep=lecture_grid`.
    readme = README.read_text()
    assert "python scripts/report.py outputs/lecture_grid-sweep/<date>_<time>" in readme
    planted = readme.replace(
        "python scripts/report.py outputs/lecture_grid-sweep/<date>_<time>",
        "python scripts/report.py outputs/train-sweep/<date>_<time>",
    )
    (problem,) = folder_problems({"README.md": planted})
    assert "outputs/train-sweep beside ['python train.py -m sweep=lecture_grid" in problem
    assert "['outputs/lecture_grid-sweep']" in problem
    assert folder_problems({"x.md": "`ls outputs/<run>/wandb`"})  # no command writes that
