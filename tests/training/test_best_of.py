"""mia-train best_of=<study>: a run with an Optuna study's best settings, the command line's
own settings on top, recorded in the run's config and TensorBoard's HParams; mistakes are
one line and exit status 2, and change nothing on disk."""

import optuna
import pytest
from omegaconf import OmegaConf

from mia.errors import UserError
from mia.sweeping.best_of import with_best_of

COMMON = ["debug=fast", "data=text", "tokenizer=char", "callbacks.progress_bar=null"]


@pytest.fixture
def storage(tmp_path) -> str:
    """A SQLite study 'narrow' with two complete trials; trial 1 is the best."""
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    study = optuna.create_study(study_name="narrow", storage=url, direction="minimize")
    space = {
        "optimizer.lr": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True),
        "model.dim": optuna.distributions.CategoricalDistribution([32, 48]),
        "model.n_layers": optuna.distributions.IntDistribution(1, 3),
    }
    for lr, dim, value in ((0.02, 32, 3.0), (0.004, 48, 2.0)):
        params = {"optimizer.lr": lr, "model.dim": dim, "model.n_layers": 1}
        study.add_trial(optuna.trial.create_trial(params=params, distributions=space, value=value))
    return url


def test_the_best_trial_joins_the_command_line_under_its_own_settings(storage):
    args = ["best_of=narrow", f"best_of_storage={storage}", "model.dim=32"]
    expanded = with_best_of(args)
    assert expanded[: len(args)] == args
    assert sorted(expanded[len(args) :]) == [
        "best_of_trial=1",
        "model.n_layers=1",
        "optimizer.lr=0.004",
    ]  # model.dim: the command line's 32, not the study's 48
    assert with_best_of(["model.dim=32"]) == ["model.dim=32"]


def test_a_run_from_the_best_trial_records_where_it_came_from(
    corpus, run_module, tmp_path, storage
):
    result = run_module(
        [
            "mia.cli.train",
            *COMMON,
            f"data.files=[{corpus}]",
            "best_of=narrow",
            f"best_of_storage={storage}",
            "model.dim=32",
            "trainer.max_steps=10",
            "test=false",
        ]
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "best_of=narrow: trial 1 (value 2) gives" in result.stderr
    [saved] = (tmp_path / "outputs").rglob(".hydra/config.yaml")
    cfg = OmegaConf.load(saved)
    assert (cfg.best_of, cfg.best_of_trial) == ("narrow", 1)
    assert (cfg.optimizer.lr, cfg.model.n_layers, cfg.model.dim) == (0.004, 1, 32)

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import metadata

    acc = EventAccumulator(str(saved.parent.parent / "tensorboard"))
    acc.Reload()
    content = acc.PluginTagToContent("hparams")[metadata.SESSION_START_INFO_TAG]
    hparams = metadata.parse_session_start_info_plugin_data(content).hparams
    assert hparams["best_of/study"].string_value == "narrow"
    assert hparams["best_of/trial"].number_value == 1
    assert hparams["optimizer/lr"].number_value == 0.004


@pytest.mark.parametrize(
    ("study", "where", "message"),
    [
        ("wide", "studies.db", "error: best_of=wide: no such study in sqlite:///"),
        ("narrow", "missing.db", "error: best_of=narrow: no study database at sqlite:///"),
    ],
)
def test_an_unknown_study_is_one_line_and_exit_2(
    corpus, run_module, tmp_path, storage, study, where, message
):
    before = sorted(p.name for p in tmp_path.iterdir())
    url = f"sqlite:///{tmp_path / where}"
    result = run_module(
        [
            "mia.cli.train",
            *COMMON,
            f"data.files=[{corpus}]",
            f"best_of={study}",
            f"best_of_storage={url}",
        ]
    )
    assert result.returncode == 2
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


def test_a_study_without_a_complete_trial_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    optuna.create_study(study_name="fresh", storage=url)
    with pytest.raises(UserError, match="best_of=fresh: the study has no complete trial yet"):
        with_best_of(["best_of=fresh", f"best_of_storage={url}"])


def test_best_of_must_come_from_the_command_line(train_config):
    from mia.cli.train import train

    with pytest.raises(UserError, match="best_of=narrow: give it on mia-train's command line"):
        train(train_config("best_of=narrow"))


@pytest.fixture
def pareto(tmp_path) -> str:
    """A study of two objectives as hparams_search=optuna_pareto makes it: trials 0 and 1 on
    the front (0 the smaller model, 1 the better bpc), trial 2 dominated."""
    url = f"sqlite:///{tmp_path / 'pareto.db'}"
    study = optuna.create_study(
        study_name="front", storage=url, directions=["minimize", "minimize"]
    )
    study.set_metric_names(["val/bpc", "model/params"])
    space = {"model.dim": optuna.distributions.CategoricalDistribution([32, 64, 96])}
    for dim, values in ((32, [2.5, 36000.0]), (64, [2.1, 360768.0]), (96, [2.6, 700000.0])):
        study.add_trial(
            optuna.trial.create_trial(params={"model.dim": dim}, distributions=space, values=values)
        )
    return url


def test_a_pareto_study_without_an_objective_lists_its_front_and_how_to_choose(pareto):
    with pytest.raises(UserError) as refused:
        with_best_of(["best_of=front", f"best_of_storage={pareto}"])
    line = str(refused.value)
    assert "\n" not in line
    assert line == (
        "best_of=front: the study has 2 objectives, so no single best trial; its Pareto "
        "front: trial 0 (val/bpc 2.5, model/params 36000); trial 1 (val/bpc 2.1, "
        "model/params 360768); choose by one objective with "
        "best_of_objective=<val/bpc|model/params>"
    )


@pytest.mark.parametrize(
    ("objective", "dim", "trial"), [("val/bpc", 64, 1), ("model/params", 32, 0)]
)
def test_best_of_objective_picks_the_front_trial_best_in_it(pareto, objective, dim, trial):
    args = ["best_of=front", f"best_of_storage={pareto}", f"best_of_objective={objective}"]
    assert with_best_of(args)[len(args) :] == [f"model.dim={dim}", f"best_of_trial={trial}"]


def test_best_of_objective_must_name_an_objective_of_the_study(pareto):
    with pytest.raises(UserError, match="best_of_objective=val/bpcc: study 'front' optimised"):
        with_best_of(["best_of=front", f"best_of_storage={pareto}", "best_of_objective=val/bpcc"])


def test_the_pareto_table_prints_counts_as_integers(pareto):
    from mia.sweeping.report import trials_table

    study = optuna.load_study(study_name="front", storage=pareto)
    table = trials_table(study, ["val/bpc", "model/params"])
    row = table.splitlines()[2]
    assert row.split()[:5] == ["1", "complete", "*", "2.1000", "360768"], table
