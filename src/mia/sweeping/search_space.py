"""Hydra's sweep syntax (``interval(...)``, ``choice(...)``, ``range(...)``, ``tag(log, ...)``)
turned into Optuna distributions, and a trial's values back into Hydra overrides."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep
from hydra.errors import HydraException
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from mia.errors import UserError


def parse_overrides(items: Sequence[str], label: str) -> list[Override]:
    """Parse ``key=value`` strings with Hydra's own grammar; a bad one is a one-line error."""
    parser = OverridesParser.create()
    out = []
    for item in items:
        try:
            out.extend(parser.parse_overrides([item]))
        except HydraException as err:
            reason = str(err).strip().splitlines()[0]
            raise UserError(f"{label}: cannot parse '{item}' ({reason})") from None
    return out


def distribution(override: Override, label: str) -> BaseDistribution:
    """The Optuna distribution of one sweep override."""
    value = override.value()
    log = "log" in getattr(value, "tags", set())
    name = f"{label}.{override.get_key_element()}"
    if isinstance(value, ChoiceSweep):
        if log:
            raise UserError(f"{name}: tag(log, ...) applies to interval() and range() only")
        return CategoricalDistribution(list(value.list))
    try:
        if isinstance(value, IntervalSweep):
            low, high = value.start, value.end
            if isinstance(low, int) and isinstance(high, int):
                return IntDistribution(low, high, log=log)
            return FloatDistribution(float(low), float(high), log=log)
        if isinstance(value, RangeSweep):
            start, stop, step = value.start, value.stop, value.step
            count = int((stop - start) / step - 1e-9) + 1 if (stop - start) * step > 0 else 0
            if count <= 0:
                raise UserError(f"{name}: range({start}, {stop}, {step}) is empty")
            last = start + (count - 1) * step
            if all(isinstance(v, int) for v in (start, stop, step)):
                return IntDistribution(min(start, last), max(start, last), step=abs(step), log=log)
            return FloatDistribution(min(start, last), max(start, last), step=abs(step), log=log)
    except ValueError as err:  # e.g. log with a low bound <= 0, or low > high
        raise UserError(f"{name}: {err}") from None
    raise UserError(f"{name}: use choice(...), interval(...) or range(...), not {value!r}")


def search_space(
    params: Mapping[str, Any], arguments: Sequence[str], label: str = "hydra.sweeper.params"
) -> tuple[dict[str, BaseDistribution], list[str]]:
    """The distributions to search (from ``params`` and from sweep overrides on the command
    line), and the fixed overrides every trial gets."""
    space: dict[str, BaseDistribution] = {}
    fixed: list[str] = []
    configured = [f"{key}={value}" for key, value in (params or {}).items()]
    for override in parse_overrides(configured, label):
        key = override.get_key_element()
        if override.is_sweep_override():
            space[key] = distribution(override, label)
        else:
            fixed.append(f"{key}={override.get_value_element_as_str()}")
    for override in parse_overrides(arguments, "command line"):
        key = override.get_key_element()
        if override.is_sweep_override():
            space[key] = distribution(override, "command line")
        else:
            fixed = [f for f in fixed if f.split("=", 1)[0] != key]
            fixed.append(override.input_line or f"{key}={override.get_value_element_as_str()}")
    if not space:
        raise UserError(
            f"{label} is empty: give the settings to search, e.g. "
            "hydra.sweeper.params.optimizer.lr='tag(log, interval(1e-4, 1e-2))'"
        )
    return space, fixed


def suggest(trial: Any, name: str, dist: BaseDistribution) -> Any:
    """Ask an Optuna trial for a value of `dist` through its public suggest API."""
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)


def as_override(key: str, value: Any) -> str:
    """``key=value`` as Hydra parses it back to the same value."""
    if isinstance(value, str):
        plain = value and all(c.isalnum() or c in "_-./:" for c in value)
        return f"{key}={value}" if plain else f"{key}='{value}'"
    if isinstance(value, bool):
        return f"{key}={str(value).lower()}"
    if value is None:
        return f"{key}=null"
    return f"{key}={value!r}"
