"""`pip install .` (not editable) puts the configs inside the package: the console script
trains from any folder, with no checkout in sight."""

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, read_results, run_command
from PIL import Image

from poolbench.review.figures.cli import FIGURES

SHIPPED = ["pyproject.toml", "README.md", "src", "conf"]


@pytest.mark.ci
def test_a_non_editable_install_trains_from_any_folder(tmp_path: Path) -> None:
    # A copy of what git tracks, so the build leaves nothing in the checkout; the venv's
    # setuptools builds it, and --no-deps reuses the venv's torch (no download).
    files = subprocess.run(
        ["git", "ls-files", *SHIPPED], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    project = tmp_path / "project"
    for f in files:
        (project / f).parent.mkdir(parents=True, exist_ok=True)
        (project / f).write_bytes((ROOT / f).read_bytes())
    site = tmp_path / "site"
    pip = run_command(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
        + ["--target", str(site), str(project)],
        timeout=600,
    )
    assert pip.returncode == 0, pip.stderr[-3000:]
    assert (site / "poolbench/conf/train.yaml").is_file()
    assert (site / "poolbench/conf/pool/max.yaml").is_file()
    assert (site / "poolbench/conf/hydra/launcher/joblib_gpus.yaml").is_file()
    # hydra/launcher=ray_gpus names this class: without it Hydra cannot load the launcher
    assert (site / "hydra_plugins/poolbench_ray/launcher.py").is_file()
    assert (site / "hydra_plugins/poolbench_packed/launcher.py").is_file()  # =packed
    assert (site / "poolbench/conf/tta/flip_translate.yaml").is_file()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"PYTHONPATH": str(site)}  # the installed copy only, not the checkout's src/
    where = run_command(
        [
            sys.executable,
            "-c",
            "import poolbench.config as c; print(c.__file__); print(c.CONF_DIR)",
        ],
        cwd=elsewhere,
        env=env,
    )
    assert where.returncode == 0, where.stderr
    module_file, conf_dir = where.stdout.split()
    assert module_file.startswith(str(site)) and conf_dir == str(site / "poolbench" / "conf")
    train = run_command(
        [
            str(site / "bin" / "poolbench-train"),
            "data=digits",
            "trainer.max_epochs=1",
            "logger=csv",
            "callbacks.progress_bar=null",
            "trainer.enable_progress_bar=false",
            f"data.cache_dir={tmp_path / 'cache'}",
        ],
        cwd=elsewhere,
        env=env,
    )
    assert train.returncode == 0, train.stderr[-3000:]
    (run,) = (elsewhere / "outputs" / "train").iterdir()
    r = read_results(run)
    assert r["status"] == "ok" and r["choices"]["data"] == "digits"
    assert r["params"]["total"] == 32_862 and r["epochs"] == 1
    # Ten digits, 359 test images: chance 0.1, the commonest digit 0.142; one epoch reaches
    # about 0.35.
    assert r["metrics"]["test/acc"] > 0.25

    # The other tools a user runs are console scripts of the installed copy too.
    def tool(name: str, *args: str) -> str:
        done = run_command([str(site / "bin" / name), *args], cwd=elsewhere, env=env)
        assert done.returncode == 0, (name, done.stderr[-3000:])
        return done.stdout

    assert "params/total 270,942" in tool("poolbench-shapes", "head=flatten", "pool=max")
    assert "wrote pooling.png" in tool("poolbench-visualize", "--out", "pooling.png")
    assert Image.open(elsewhere / "pooling.png").size[0] > 500
    ckpt = run / "checkpoints" / "last.ckpt"
    assert "embed/knn_acc" in tool("poolbench-embed", f"ckpt_path={ckpt}", "knn_k=5")
    assert "embed/knn_acc" in read_results(run)["metrics"]
    made = tool("poolbench-figures", "figures", str(run))
    for name in FIGURES:
        assert f"wrote figures/{name}" in made
        assert Image.open(elsewhere / "figures" / name).size == (1920, 1080)


def test_every_config_group_and_our_launchers_are_packaged() -> None:
    # setuptools wants each folder of conf/ listed as a package (or warns, and may drop it)
    import tomllib

    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]
    folders = [d.relative_to(ROOT / "conf") for d in (ROOT / "conf").rglob("*") if d.is_dir()]
    groups = {
        "poolbench.conf." + ".".join(d.parts) for d in folders if "__pycache__" not in d.parts
    }
    assert groups and groups <= set(packages), sorted(groups - set(packages))
    plugins = {"hydra_plugins." + d.name for d in (ROOT / "src/hydra_plugins").iterdir()}
    plugins.discard("hydra_plugins.__pycache__")
    assert plugins == {"hydra_plugins.poolbench_ray", "hydra_plugins.poolbench_packed"}
    assert plugins <= set(packages), sorted(plugins - set(packages))
