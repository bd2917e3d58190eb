"""The lecture's claims, one sentence each in report.md and the W&B report: a - b in
test-accuracy points with Welch's 95% CI over seeds, and the verdict the interval allows.
The claims, the reference net and the arms' names are data, in claims.yaml beside this file."""

from __future__ import annotations

import functools
import statistics
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

from poolbench.errors import ConfigError
from poolbench.review.stats import Row, welch_ci

CLAIMS_FILE = "claims.yaml"
AXES = ("head", "pool")


@dataclass(frozen=True)
class Claim:
    """a vs b along axis (head or pool), the other axis held at fixed_value."""

    title: str
    axis: str
    a: str
    b: str
    fixed_axis: str
    fixed_value: str


@dataclass(frozen=True)
class Lecture:
    reference: dict[str, str]  # the lecture's net, {"head": ..., "pool": ...}: every b
    signs: str  # the sign convention, said once above the claims
    arm_names: dict[tuple[str, str], str]  # (axis, value) -> how a verdict names it
    claims: tuple[Claim, ...]


@functools.cache
def lecture() -> Lecture:
    """claims.yaml, read once and checked (a claim it cannot state is one ConfigError)."""
    source = resources.files("poolbench.review").joinpath(CLAIMS_FILE)
    return parse(yaml.safe_load(source.read_text()), str(source))


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{what} must be a word, got {value!r}")
    return value


def parse(data: Any, where: str = CLAIMS_FILE) -> Lecture:
    if not isinstance(data, dict) or set(data) != {"reference", "signs", "arm_names", "claims"}:
        raise ConfigError(f"{where} needs exactly reference, signs, arm_names and claims")
    ref = data["reference"]
    if not isinstance(ref, dict) or set(ref) != set(AXES):
        raise ConfigError(f"{where}: reference needs a head and a pool, got {ref!r}")
    reference = {axis: _text(ref[axis], f"{where}: reference.{axis}") for axis in AXES}
    names = data["arm_names"] or {}
    arm_names = {
        (_text(axis, f"{where}: arm_names' axis"), _text(value, f"{where}: arm_names.{axis}")): (
            _text(name, f"{where}: arm_names.{axis}.{value}")
        )
        for axis, arms in names.items()
        for value, name in (arms or {}).items()
    }
    if not isinstance(data["claims"], list):
        raise ConfigError(f"{where}: claims is a list of claims, got {data['claims']!r}")
    claims = []
    for n, c in enumerate(data["claims"], 1):
        what = f"{where}: claim {n}"
        if not isinstance(c, dict) or set(c) != {"title", "axis", "a", "b", "fixed"}:
            raise ConfigError(f"{what} needs exactly title, axis, a, b and fixed, got {c!r}")
        what += f" ({c['title']})"
        axis = _text(c["axis"], f"{what}: axis")
        if axis not in AXES:
            raise ConfigError(f"{what}: axis is head or pool, got {axis!r}")
        other = AXES[1 - AXES.index(axis)]
        if not isinstance(c["fixed"], dict) or list(c["fixed"]) != [other]:
            raise ConfigError(f"{what}: fixed names the {other} it holds, e.g. {{{other}: ...}}")
        claim = Claim(
            _text(c["title"], f"{what}: title"),
            axis,
            _text(c["a"], f"{what}: a"),
            _text(c["b"], f"{what}: b"),
            other,
            _text(c["fixed"][other], f"{what}: fixed.{other}"),
        )
        if claim.b != reference[axis] or claim.a == claim.b:
            raise ConfigError(
                f"{what}: b is the reference {axis} ({reference[axis]}) and a another one, "
                f"so that every difference reads alike; got a={claim.a}, b={claim.b}"
            )
        for arm in (claim.a, claim.b):
            if (axis, arm) not in arm_names:
                raise ConfigError(f"{what}: arm_names has no name for {axis}={arm}")
        claims.append(claim)
    signs = _text(data["signs"], f"{where}: signs")
    return Lecture(reference, signs, arm_names, tuple(claims))


def verdict(claim: Claim, ci: tuple[float, float], seeds: tuple[int, int]) -> str:
    names = lecture().arm_names
    if ci[0] > 0:
        return f"{names[claim.axis, claim.a]} is better at this budget"
    if ci[1] < 0:
        return f"{names[claim.axis, claim.b]} is better at this budget"
    n = seeds[0] if seeds[0] == seeds[1] else f"{seeds[0]} vs {seeds[1]}"
    return f"no difference resolved with {n} seeds"


def claim_sentence(claim: Claim, a: Row, b: Row) -> str:
    acc_a, acc_b = a.test_acc, b.test_acc
    mean_a, mean_b = statistics.fmean(acc_a), statistics.fmean(acc_b)
    params = ""
    if a.params and b.params and a.params != b.params:
        params = f" with {a.params:,} vs {b.params:,} parameters"
    seeds = (len(acc_a), len(acc_b))
    ci = welch_ci(acc_a, acc_b)
    if ci is None:
        evidence = f"({seeds[0]} vs {seeds[1]} seeds; one seed: no interval)"
    else:
        evidence = (
            f"(95% CI {ci[0]:+.2f} to {ci[1]:+.2f} over {seeds[0]} vs {seeds[1]} seeds): "
            + verdict(claim, ci, seeds)
        )
    return (
        f"{claim.title} ({claim.fixed_axis}={claim.fixed_value}): "
        f"{100 * mean_a:.2f}% vs {100 * mean_b:.2f}% test accuracy{params}, "
        f"{100 * (mean_a - mean_b):+.2f} points {evidence}."
    )


def claims(rows: list[Row]) -> list[str]:
    """One sentence per lecture claim whose two arms the sweep ran (plain config, no variant)."""
    plain = {(r.head, r.pool): r for r in rows if not r.variant}
    out = []
    for claim in lecture().claims:
        arms = []
        for value in (claim.a, claim.b):
            choice = {claim.axis: value, claim.fixed_axis: claim.fixed_value}
            arms.append(plain.get((choice["head"], choice["pool"])))
        a, b = arms
        if a and b and a.test_acc and b.test_acc:
            out.append(claim_sentence(claim, a, b))
    return out
