"""Hydra's sweep syntax (``interval(...)``, ``choice(...)``, ``range(...)``, ``tag(log, ...)``)
turned into Optuna distributions, and a trial's values back into Hydra overrides."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import (
    ChoiceSweep,
    IntervalSweep,
    Override,
    RangeSweep,
    Transformer,
)
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
    """The Optuna distribution of one sweep override, as Hydra's own Optuna sweeper maps it:
    ``range(a, b, s)`` includes b, ``shuffle(...)`` and ``choice(...)`` are categorical,
    ``interval`` is float unless both ends are integers (or ``int(...)``)."""
    value = override.value()
    log = "log" in getattr(value, "tags", set())
    name = f"{label}.{override.get_key_element()}"
    if isinstance(value, ChoiceSweep) or (isinstance(value, RangeSweep) and value.shuffle):
        if log:
            raise UserError(f"{name}: tag(log, ...) applies to interval() only")
        return CategoricalDistribution(
            list(override.sweep_iterator(transformer=Transformer.encode))
        )
    try:
        if isinstance(value, IntervalSweep):
            low, high = value.start, value.end
            if isinstance(low, int) and isinstance(high, int):
                return IntDistribution(low, high, log=log)
            return FloatDistribution(float(low), float(high), log=log)
        if isinstance(value, RangeSweep):
            if log:
                raise UserError(f"{name}: tag(log, ...) applies to interval() only")
            start, stop, step = value.start, value.stop, value.step
            if step == 0 or (stop - start) * step < 0:
                raise UserError(f"{name}: range({start}, {stop}, {step}) is empty")
            low, high = min(start, stop), max(start, stop)
            if all(isinstance(v, int) for v in (start, stop, step)):
                return IntDistribution(low, high, step=abs(step))
            return FloatDistribution(float(low), float(high), step=abs(float(step)))
    except ValueError as err:  # e.g. log with a low bound <= 0, or low > high
        raise UserError(f"{name}: {err}") from None
    raise UserError(f"{name}: use choice(...), interval(...) or range(...), not {value!r}")


def search_space(
    params: Mapping[str, Any] | None, arguments: Sequence[str], label: str = "hydra.sweeper.params"
) -> tuple[dict[str, BaseDistribution], list[str]]:
    """The distributions to search and the fixed overrides every trial gets. The command
    line has the last word, as in Hydra's own Optuna sweeper: ``key=a,b`` (or any sweep)
    replaces the key's range in ``params``, and a plain ``key=value`` pins the key, which
    then leaves the search space."""
    space: dict[str, BaseDistribution] = {}
    fixed: dict[str, str] = {}
    configured = [f"{key}={value}" for key, value in (params or {}).items()]
    given = [(o, label) for o in parse_overrides(configured, label)]
    given += [(o, "command line") for o in parse_overrides(arguments, "command line")]
    for override, source in given:
        if override.is_delete():
            fixed[override.input_line or ""] = override.input_line or ""
            continue
        key = override.get_key_element()
        if override.is_sweep_override():
            space[key] = distribution(override, source)
            fixed.pop(key, None)
        else:
            space.pop(key, None)
            line = override.input_line if source == "command line" else None
            fixed[key] = line or f"{key}={override.get_value_element_as_str()}"
    return space, list(fixed.values())


def grid_points(name: str, dist: BaseDistribution) -> list[Any]:
    """Every value of a discrete distribution, for the grid sampler."""
    if isinstance(dist, CategoricalDistribution):
        return list(dist.choices)
    if isinstance(dist, IntDistribution) and not dist.log:
        return list(range(dist.low, dist.high + 1, dist.step))
    if isinstance(dist, FloatDistribution) and dist.step is not None:
        count = round((dist.high - dist.low) / dist.step) + 1
        return [dist.low + i * dist.step for i in range(count)]
    raise UserError(
        f"hydra.sweeper.params.{name}: the grid sampler needs choice(...) or range(...), "
        "not a continuous interval"
    )


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
