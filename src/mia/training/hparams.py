"""A run's settings and final metrics in TensorBoard's HParams tab, swept settings first.

TensorBoard orders the HParams table by the experiment record that the first run wrote:
settings that "differ" first, then by name, then the metrics it names. Lightning's
`log_hyperparams` marks none as differing, so a sweep's table opened on constant settings
(batch size, corpus, workers) and the swept ones were off-screen. A sweep job knows what
its sweep varies (the sweep overrides of its command line, saved by Hydra in the sweep
folder's multirun.yaml, and the sweeper's search space), so it writes the record itself:
the swept settings, then the final metrics. A single run records every setting.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as TensorBoard names (``model/dim``); values TensorBoard can show."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}/"))
        elif isinstance(value, bool | int | float | str):
            flat[name] = value
        else:  # lists, null
            flat[name] = str(value)
    return flat


def swept_settings() -> tuple[list[str], dict[str, str]]:
    """In a sweep job: the config keys its sweep varies (``optimizer.lr``, or a group such
    as ``model``), and the config-group choices of this job. Outside a sweep: none."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return [], {}
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return [], {}
    keys = [str(k) for k in (OmegaConf.select(hydra_cfg, "sweeper.params") or {})]
    saved = Path(str(hydra_cfg.sweep.dir)) / "multirun.yaml"
    if saved.is_file():
        task = OmegaConf.select(OmegaConf.load(saved), "hydra.overrides.task") or []
        parsed = OverridesParser.create().parse_overrides([str(t) for t in task])
        keys += [o.key_or_group for o in parsed if o.is_sweep_override()]
    choices = {str(k): str(v) for k, v in hydra_cfg.runtime.choices.items() if v is not None}
    return list(dict.fromkeys(keys)), choices


def log_hparams(logger: Any, params: Mapping[str, Any], metrics: Mapping[str, float]) -> None:
    """Write the HParams record of this run to a TensorBoardLogger (final metrics under
    ``hparams/``), as Lightning's log_hyperparams does but with the experiment's columns
    chosen here."""
    from tensorboard.plugins.hparams import api_pb2
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData
    from torch.utils.tensorboard.summary import hparams

    flat = flatten(params)
    swept, choices = swept_settings()
    names = [k.replace(".", "/") for k in swept]
    for group in names:  # a swept config group (model=llama,gpt): its choice is the setting
        if group not in flat and group in choices:
            flat[group] = choices[group]
    names = [n for n in names if n in flat]
    final = {f"hparams/{k}": metrics[k] for k in sorted(metrics, key=_metric_order)}
    experiment, start, end = hparams(flat, final)
    # The experiment record: the swept settings (marked as differing) in a sweep, else all.
    content = experiment.value[0].metadata.plugin_data
    data = HParamsPluginData.FromString(content.content)
    infos = [api_pb2.HParamInfo(name=n, type=_type(flat[n]), differs=True) for n in names]
    if infos:
        del data.experiment.hparam_infos[:]
        data.experiment.hparam_infos.extend(infos)
        content.content = data.SerializeToString()
    if final:
        logger.log_metrics(final)
    writer = logger.experiment._get_file_writer()  # as Lightning's log_hyperparams does
    for summary in (experiment, start, end):
        writer.add_summary(summary)


def _metric_order(key: str) -> tuple[bool, bool, str]:
    """val before test; bits per character and loss first, the columns compared most."""
    split, _, name = key.partition("/")
    return split != "val", name not in ("bpc", "loss"), name


def _type(value: Any) -> int:
    from tensorboard.plugins.hparams import api_pb2

    if isinstance(value, bool):
        return api_pb2.DATA_TYPE_BOOL
    if isinstance(value, int | float):
        return api_pb2.DATA_TYPE_FLOAT64
    return api_pb2.DATA_TYPE_STRING
