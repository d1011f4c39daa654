"""A real quality-against-size Pareto search on Tiny Shakespeare, and its front as files.

Runs `mia-train hparams_search=optuna_pareto` (characters, `nanogpt_baby_llama` cut to
--steps steps, validation of 20 batches) in a fresh folder, then writes the Pareto front as
docs/results/pareto_search.json (stamped with date, processor, cores and torch version)
and copies the search's pareto_front.png to docs/results/pareto_search.png.

    nice -n 5 python scripts/pareto_search.py [--n-trials 12] [--steps 200]

With --study sqlite:///<folder>/optuna.db it runs nothing and writes the front of that
study's trials so far (for a search that is still running, or was stopped).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
METRICS = ["val/bpc", "model/params"]
TINY_SHAKESPEARE = REPO.parent / "shared" / "data" / "tinyshakespeare" / "input.txt"


def run(args: argparse.Namespace) -> tuple[str, float, list[str], str]:
    """Run the search in a fresh folder; its storage, wall time, command and table."""
    folder = Path(tempfile.mkdtemp(prefix="mia-pareto-"))
    storage = f"sqlite:///{folder}/optuna.db"
    command = [
        sys.executable,
        "-m",
        "mia.cli.train",
        "hparams_search=optuna_pareto",
        "experiment=nanogpt_baby_llama",
        f"data.path={args.data}",
        f"trainer.max_steps={args.steps}",
        f"scheduler.decay_steps={args.steps}",
        "scheduler.warmup_steps=20",
        f"trainer.val_check_interval={args.steps}",
        "trainer.limit_val_batches=20",
        "test=false",
        "model.compile=false",  # each shape would compile anew: slower than it saves here
        "callbacks.progress_bar=null",
        "callbacks.model_summary=null",
        "callbacks.text_samples=null",
        f"hydra.sweeper.n_trials={args.n_trials}",
        f"hydra.sweeper.storage={storage}",
        "hydra.sweep.dir=sweep",
        *args.overrides,
    ]
    start = time.perf_counter()
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(command, cwd=folder, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"search failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    table = result.stdout[result.stdout.index("Optuna study") :]
    print(table)
    return storage, wall, command, table


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n-trials", type=int, default=12)
    p.add_argument("--steps", type=int, default=200, help="training steps per trial")
    p.add_argument("--data", type=Path, default=TINY_SHAKESPEARE, help="Tiny Shakespeare")
    p.add_argument("--out", type=Path, default=REPO / "docs" / "results")
    p.add_argument("--study", help="write the front of this study's storage; run nothing")
    p.add_argument("overrides", nargs="*", help="more mia-train overrides, e.g. model.dim=32,64")
    args = p.parse_args()
    if not args.data.is_file():
        sys.exit(f"no Tiny Shakespeare at {args.data}: pass --data")
    import optuna
    import yaml

    from mia.results import make_result, write_result
    from mia.sweeping.report import save_plots, trials_table

    if args.study:
        storage, wall, command, table = args.study, None, None, None
    else:
        storage, wall, command, table = run(args)
    (name,) = optuna.get_all_study_names(storage)
    study = optuna.load_study(study_name=name, storage=storage)
    if command is None:  # the search's command, as its first job recorded it
        first = Path(study.trials[0].user_attrs.get("run_dir", "-")) / ".hydra/overrides.yaml"
        if first.is_file():
            command = ["", "", *yaml.safe_load(first.read_text())]
    front = study.best_trials
    solutions = [{"params": t.params, "values": t.values} for t in front]
    args.out.mkdir(parents=True, exist_ok=True)
    on_front = {t.number for t in front}
    record = {
        **make_result(
            "pareto_search",
            "Pareto front of val/bpc against model/params (hparams_search=optuna_pareto)",
            ["trial", "state", "val/bpc", "parameters", "front"],
            [
                [
                    t.number,
                    t.state.name.lower(),
                    *(t.values or [None, None]),
                    "*" if t.number in on_front else "",
                ]
                for t in study.trials
            ],
            command=" ".join(command[2:]) if command else None,
        ),
        "wall_s": round(wall, 1) if wall else None,
        "finished": sum(t.state.is_finished() for t in study.trials),
        "trials": [
            {
                "number": t.number,
                "state": t.state.name.lower(),
                "params": t.params,
                "values": t.values,
                "failure": t.user_attrs.get("mia:failure"),
            }
            for t in study.trials
        ],
        "solutions": solutions,
        "table": (table or trials_table(study, METRICS)).strip().splitlines(),
    }
    write_result(record, args.out / "pareto_search.json")
    with tempfile.TemporaryDirectory() as plots:
        (png,) = save_plots(study, Path(plots), METRICS)
        shutil.copy(png, args.out / "pareto_search.png")
    print(f"wrote {args.out / 'pareto_search.json'} and pareto_search.png")


if __name__ == "__main__":
    main()
