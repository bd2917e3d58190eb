"""Reading a command line as Hydra does: its flags, its overrides (Hydra's public override
parser), a sweep's first job, and Hydra's compose over conf/."""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from omegaconf import DictConfig

from poolbench.config import CONF_DIR, config_groups
from poolbench.errors import OverrideError


def parse_overrides(overrides: list[str]) -> list[Any]:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    try:
        return OverridesParser.create().parse_overrides(overrides)
    except OverrideParseException as err:
        raise OverrideError(parse_message(err)) from None


def parse_message(err: Any) -> str:
    detail = " ".join(line.strip() for line in str(err.message).splitlines()[1:] if line.strip())
    return (
        f"cannot read the override {err.override!r}"
        + (f" ({detail})" if detail else "")
        + "; write key=value (group=option, +key=value to add, ~key to delete)"
    )


def is_group(override: Any) -> bool:
    key = override.key_or_group
    return "." not in key and (key in config_groups() or "/" in key)


def choice_values(override: Any) -> list[str]:
    """The option names a group override asks for (every choice of a sweep), else []."""
    from hydra.core.override_parser.types import ChoiceSweep, ValueType

    value = override.value()
    if override.value_type in (ValueType.CHOICE_SWEEP, ValueType.SIMPLE_CHOICE_SWEEP):
        assert isinstance(value, ChoiceSweep)
        return [v for v in value.list if isinstance(v, str)]
    return [value] if isinstance(value, str) else []


def compose_raw(
    config_name: str, overrides: list[str], return_hydra_config: bool = False
) -> DictConfig:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return hydra_compose(
            config_name, overrides=overrides, return_hydra_config=return_hydra_config
        )


def hydra_flags_parser() -> argparse.ArgumentParser:
    """The flags @hydra.main reads (Hydra 1.3's command line), so that the overrides can be
    told from them: tests/config/test_config.py checks it against Hydra's own parser."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("overrides", nargs="*")
    for flags in (("--help", "-h"), ("--hydra-help",), ("--resolve",), ("--run", "-r")):
        parser.add_argument(*flags, action="store_true")
    parser.add_argument("--multirun", "-m", action="store_true")
    parser.add_argument("--shell-completion", "-sc", action="store_true")
    parser.add_argument("--cfg", "-c", choices=["job", "hydra", "all"])
    for flags in (
        ("--package", "-p"),
        ("--config-path", "-cp"),
        ("--config-name", "-cn"),
        ("--config-dir", "-cd"),
        ("--experimental-rerun",),
    ):
        parser.add_argument(*flags)
    parser.add_argument("--info", "-i", const="all", nargs="?")
    return parser


def command_line(argv: list[str]) -> tuple[list[str], str | None, bool, bool] | None:
    """Hydra's reading of argv: (overrides, --config-name, multirun?, conf/ only?), or None
    when Hydra answers the command line itself."""
    if "--version" in argv:
        return None
    parser = hydra_flags_parser()

    def no_exit(message: str) -> NoReturn:
        raise ValueError(message)

    parser.error = no_exit  # type: ignore[method-assign]
    try:
        args, _ = parser.parse_known_args(argv)
    except (ValueError, SystemExit):
        return None  # Hydra answers it itself
    if args.shell_completion or args.info is not None or args.experimental_rerun:
        return None
    # Another config folder (--config-dir/--config-path) may hold options conf/ does not: then
    # only Hydra's own composition judges them.
    conf_only = not (args.config_dir or args.config_path)
    return list(args.overrides), args.config_name, bool(args.multirun), conf_only


def first_job(overrides: list[Any]) -> list[str]:
    """A sweep's first job, as overrides a plain compose accepts."""
    from hydra.core.override_parser.types import ValueType

    job = []
    for o in overrides:
        if not o.is_sweep_override():
            job.append(o.input_line)
        elif o.value_type in (ValueType.CHOICE_SWEEP, ValueType.SIMPLE_CHOICE_SWEEP) or (
            o.value_type == ValueType.RANGE_SWEEP
        ):
            job.append(f"{o.get_key_element()}={next(iter(o.sweep_string_iterator()))}")
        elif not is_group(o):  # interval(…) for Optuna, glob(…): the key must still exist
            job.append(f"{o.get_key_element()}=0")
    return job
