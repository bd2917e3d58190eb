"""One line for a command line Hydra cannot compose: the bad value or key, the nearest valid
choices ("did you mean"), the list, and the fix."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from omegaconf import OmegaConf

from poolbench.cli.parse import choice_values, compose_raw, is_group, parse_message, parse_overrides
from poolbench.config import CONF_DIR, KEYS_NOW_GROUPS, config_groups, group_options


def did_you_mean(word: str, choices: Iterable[str], cutoff: float = 0.6) -> str:
    """'; did you mean x?' (or 'x or y'), or '' when nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=3, cutoff=cutoff)
    return f"; did you mean {' or '.join(close)}?" if close else ""


def option_message(group: str, value: str, options: list[str], line: str | None = None) -> str:
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


def dotted_keys(cfg: Any) -> list[str]:
    keys: list[str] = []

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                keys.append(f"{prefix}{k}")
                walk(v, f"{prefix}{k}.")

    walk(OmegaConf.to_container(cfg, resolve=False), "")
    return keys


def known_keys(err: Exception, config_name: str, overrides: list[str], key: str) -> list[str]:
    """Every dotted key of the config composed with the command line's valid group choices
    (else of the default config): the keys a misspelt one is compared with."""
    with_hydra = key == "hydra" or key.startswith("hydra.")
    keys = None
    if keys is None:
        safe = []
        for o in parse_overrides(overrides):
            values = choice_values(o)
            if is_group(o) and not o.is_delete() and len(values) == 1 and o.package is None:
                group = o.key_or_group
                if group not in config_groups() or values[0] in group_options(group, overrides):
                    safe.append(f"{o.get_key_element()}={values[0]}")
        for attempt in (safe, []):
            try:
                keys = dotted_keys(compose_raw(config_name, attempt, return_hydra_config=True))
                break
            except Exception:
                continue
        else:
            return []
    if with_hydra:
        return keys
    return [k for k in keys if k != "hydra" and not k.startswith("hydra.")]


def key_message(key: str, keys: list[str], problem: str, hint: str) -> str:
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
        return parse_message(err)
    if (
        isinstance(err, MissingConfigException)
        and err.missing_cfg_file
        and "/" in str(err.missing_cfg_file)
    ):
        group, _, value = str(err.missing_cfg_file).rpartition("/")
        options = sorted(err.options or []) or group_options(group, overrides)
        line = next((o for o in overrides if o.lstrip("+~").split("=", 1)[0] == group), None)
        return option_message(group, value, options, line)
    if isinstance(err, MissingConfigException):
        return f"{text.splitlines()[0]}; configs live in {CONF_DIR}"

    def quoted(marker: str) -> str | None:
        if marker not in text:
            return None
        return text.split(marker, 1)[1].split("'", 1)[0]

    if key := quoted("Could not override '"):
        line = next((o for o in overrides if o.split("=", 1)[0] == key), f"{key}=…")
        if group := KEYS_NOW_GROUPS.get(key):  # an old spelling: the fix, not a near key
            options = ", ".join(group_options(group, overrides))
            return (
                f"{line}: {key} is now the config group {group}; write "
                f"{group}{line[len(key) :]} ({group} options: {options})"
            )
        return key_message(
            key,
            known_keys(err, config_name, overrides, key),
            f"{key} is not a key of the config",
            f"+{line} adds it as a new key",
        )
    if key := quoted("Could not delete from config. '"):
        keys = known_keys(err, config_name, overrides, key)
        if key in keys:  # Hydra takes a null value for a missing key
            return f"~{key}: {key} is null, and Hydra cannot delete a null key; leave it as it is"
        return key_message(
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
