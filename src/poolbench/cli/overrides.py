"""A command line made into a config, or into one line saying what is wrong with it, for every
entry point: `run_app` (train.py, eval.py) and `compose` (scripts, tests, benchmark).

Hydra reports a typo in an option (`head=globl`) or an unknown key (`optimizer.lrr=0.1`) in a
dozen lines and exits 1. Here those become one `error:` line that names the value, the nearest
valid choices and the list, exit status 2, before any run folder exists. Only Hydra and
OmegaConf are imported here: the answer is fast.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

from omegaconf import DictConfig, OmegaConf

from poolbench.config import CONF_DIR, config_groups, group_options, searchpath
from poolbench.errors import OverrideError, fail


def did_you_mean(word: str, choices: Iterable[str], cutoff: float = 0.6) -> str:
    """'; did you mean x?' (or 'x or y'), or '' when nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=3, cutoff=cutoff)
    return f"; did you mean {' or '.join(close)}?" if close else ""


def _option_message(group: str, value: str, options: list[str], line: str | None = None) -> str:
    shown = line or f"{group}={value}"
    if not options:
        groups = config_groups()
        return (
            f"{shown}: there is no config group {group}{did_you_mean(group, groups)} "
            f"(groups: {', '.join(groups)})"
        )
    return (
        f"{shown} is not an option{did_you_mean(value, options)} "
        f"({group} options: {', '.join(options)})"
    )


def _parse(overrides: list[str]) -> list[Any]:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    try:
        return OverridesParser.create().parse_overrides(overrides)
    except OverrideParseException as err:
        raise OverrideError(_parse_message(err)) from None


def _parse_message(err: Any) -> str:
    detail = " ".join(line.strip() for line in str(err.message).splitlines()[1:] if line.strip())
    return (
        f"cannot read the override {err.override!r}"
        + (f" ({detail})" if detail else "")
        + "; write key=value (group=option, +key=value to add, ~key to delete)"
    )


def _is_group(override: Any) -> bool:
    key = override.key_or_group
    return "." not in key and (key in config_groups() or "/" in key)


def _values(override: Any) -> list[str]:
    """The option names a group override asks for (every choice of a sweep), else []."""
    from hydra.core.override_parser.types import ChoiceSweep, ValueType

    value = override.value()
    if override.value_type in (ValueType.CHOICE_SWEEP, ValueType.SIMPLE_CHOICE_SWEEP):
        assert isinstance(value, ChoiceSweep)
        return [v for v in value.list if isinstance(v, str)]
    return [value] if isinstance(value, str) else []


def check_group_options(overrides: list[str]) -> None:
    """Every option named for one of poolbench's groups exists, sweep choices included: cheap
    (a folder listing), and before a sweep has made its folder or run a job."""
    for o in _parse(overrides):
        key = o.key_or_group
        if o.is_delete() or o.package is not None or key not in config_groups(overrides):
            continue
        options = group_options(key, overrides)
        for value in _values(o):
            if value not in options:
                raise OverrideError(_option_message(key, value, options))


def _dotted_keys(cfg: Any) -> list[str]:
    keys: list[str] = []

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                keys.append(f"{prefix}{k}")
                walk(v, f"{prefix}{k}.")

    walk(OmegaConf.to_container(cfg, resolve=False), "")
    return keys


def _known_keys(err: Exception, config_name: str, overrides: list[str], key: str) -> list[str]:
    """Every dotted key of the config composed with the command line's valid group choices
    (else of the default config): the keys a misspelt one is compared with."""
    with_hydra = key == "hydra" or key.startswith("hydra.")
    keys = None
    if keys is None:
        safe = []
        for o in _parse(overrides):
            values = _values(o)
            if _is_group(o) and not o.is_delete() and len(values) == 1 and o.package is None:
                group = o.key_or_group
                if group not in config_groups() or values[0] in group_options(group, overrides):
                    safe.append(f"{o.get_key_element()}={values[0]}")
        for attempt in (safe, []):
            try:
                keys = _dotted_keys(_compose_raw(config_name, attempt, return_hydra_config=True))
                break
            except Exception:
                continue
        else:
            return []
    if with_hydra:
        return keys
    return [k for k in keys if k != "hydra" and not k.startswith("hydra.")]


def _key_message(key: str, keys: list[str], problem: str, hint: str) -> str:
    parent, _, leaf = key.rpartition(".")
    ancestors = {key.rsplit(".", n)[0] for n in range(1, key.count(".") + 1)}
    keys = [k for k in keys if k not in ancestors]
    close = difflib.get_close_matches(key, keys, n=3, cutoff=0.75)
    if not close:  # the right name under the wrong parent: `lr` for `optimizer.lr`
        leaves = {k: k.rpartition(".")[2] for k in keys}
        near = set(difflib.get_close_matches(leaf, set(leaves.values()), n=3, cutoff=0.8))
        close = [k for k, v in leaves.items() if v in near][:3]
    depth = key.count(".")
    siblings = [
        k.rpartition(".")[2]
        for k in keys
        if k.count(".") == depth and k.rpartition(".")[0] == parent
    ]
    where = f"keys in {parent}" if parent else "top-level keys"
    listed = f" ({where}: {', '.join(sorted(siblings))})" if siblings else ""
    mean = f"; did you mean {' or '.join(close)}?" if close else ""
    return f"{problem}{mean}{listed}; {hint}"


def explain(err: Exception, config_name: str, overrides: list[str]) -> str:
    """One line for a Hydra composition error: the value, the nearest choices, the list."""
    from hydra.errors import MissingConfigException, OverrideParseException

    text = str(err)
    if isinstance(err, OverrideParseException):
        return _parse_message(err)
    if (
        isinstance(err, MissingConfigException)
        and err.missing_cfg_file
        and "/" in str(err.missing_cfg_file)
    ):
        group, _, value = str(err.missing_cfg_file).rpartition("/")
        options = sorted(err.options or []) or group_options(group, overrides)
        line = next((o for o in overrides if o.lstrip("+~").split("=", 1)[0] == group), None)
        return _option_message(group, value, options, line)
    if isinstance(err, MissingConfigException):
        return f"{text.splitlines()[0]}; configs live in {CONF_DIR}"

    def quoted(marker: str) -> str | None:
        if marker not in text:
            return None
        return text.split(marker, 1)[1].split("'", 1)[0]

    if key := quoted("Could not override '"):
        line = next((o for o in overrides if o.split("=", 1)[0] == key), f"{key}=…")
        return _key_message(
            key,
            _known_keys(err, config_name, overrides, key),
            f"{key} is not a key of the config",
            f"+{line} adds it as a new key",
        )
    if key := quoted("Could not delete from config. '"):
        keys = _known_keys(err, config_name, overrides, key)
        if key in keys:  # Hydra takes a null value for a missing key
            return f"~{key}: {key} is null, and Hydra cannot delete a null key; leave it as it is"
        return _key_message(
            key,
            keys,
            f"~{key}: {key} is not a key of the config",
            "nothing to delete",
        )
    if key := quoted("An item is already at '"):
        line = next((o for o in overrides if o.startswith(f"+{key}=")), f"+{key}=…")
        return (
            f"{line}: {key} is already in the config; drop the +: {line.lstrip('+')} "
            f"(or ++{line.lstrip('+')} to add or override)"
        )
    if "Ambiguous value for argument '" in text:
        line = text.split("Ambiguous value for argument '", 1)[1].split("'", 1)[0]
        key = line.split("=", 1)[0]
        return (
            f"{line} lists several values: add -m to run one job per value "
            f"(python train.py -m {line}), or quote a list: {key}='[{line.split('=', 1)[1]}]'"
        )
    lines = [s.strip() for s in text.splitlines() if s.strip()]
    cause = err.__cause__
    if cause is not None and str(cause).strip():
        lines.append(str(cause).strip().splitlines()[0])
    return "; ".join(lines)


def _compose_raw(
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


def compose(
    config_name: str, overrides: list[str], return_hydra_config: bool = False
) -> DictConfig:
    """The config as `python train.py <overrides>` would compose it (with the `hydra` node, e.g.
    hydra.runtime.choices, if asked). An override Hydra cannot apply raises OverrideError, with
    the one-line message the entry points print."""
    from hydra.errors import ConfigCompositionException, OverrideParseException

    check_group_options(overrides)
    try:
        return _compose_raw(config_name, overrides, return_hydra_config)
    except (ConfigCompositionException, OverrideParseException) as err:
        raise OverrideError(explain(err, config_name, overrides)) from None


def hydra_flags_parser() -> argparse.ArgumentParser:
    """The flags @hydra.main reads (Hydra 1.3's command line), so that the overrides can be
    told from them: tests/test_cli.py checks it against Hydra's own parser."""
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


def _command_line(argv: list[str]) -> tuple[list[str], str | None, bool, bool] | None:
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


def _first_job(overrides: list[Any]) -> list[str]:
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
        elif not _is_group(o):  # interval(…) for Optuna, glob(…): the key must still exist
            job.append(f"{o.get_key_element()}=0")
    return job


def run_app(app: Callable[[], Any], config_name: str) -> Any:
    """Call a @hydra.main function; bad overrides end in one `error:` line and exit status 2.

    Hydra composes before the task runs and prints its own error (exit 1). Here, first: a
    cheap check of group options (sweep choices too), then a compose of the command line (of
    a sweep's first job), whose composition errors become one line, before Hydra starts.
    HYDRA_FULL_ERROR=1 keeps Hydra's own report."""
    from hydra.errors import ConfigCompositionException, OverrideParseException

    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        return app()
    parsed = _command_line(sys.argv[1:])
    if parsed is not None:
        overrides, name, multirun, conf_only = parsed
        config_name = name or config_name
        try:
            if conf_only:
                # hydra.searchpath folders (a user's own pools and heads) are read here too, so
                # their options get "did you mean" as well; one not found from here leaves the
                # options to the compose below, which names them as Hydra finds them.
                if None not in searchpath(overrides):
                    check_group_options(overrides)
                job = _first_job(_parse(overrides)) if multirun else overrides
                try:
                    _compose_raw(config_name, job)
                except (ConfigCompositionException, OverrideParseException) as err:
                    raise OverrideError(explain(err, config_name, overrides)) from None
                except Exception:
                    pass  # not a composition error: Hydra reports it as usual
        except OverrideError as err:
            fail(str(err))
    return app()
