#!/usr/bin/env bash
# Run the test suite of Hydra's own Optuna sweeper against MIA's sweeper.
#
#   scripts/official_optuna_suite.sh <hydra checkout> [scratch folder] [pytest args...]
#
# <hydra checkout> is a clone of facebookresearch/hydra. Its plugins/hydra_optuna_sweeper
# tests and example apps are copied to the scratch folder (default: a new temporary one,
# never inside this repository) and changed only where they must be to test another sweeper:
#   - hydra/sweeper=optuna (and `override hydra/sweeper: optuna`) name mia_optuna;
#   - each test gets its own SQLite study (hydra.sweeper.storage=sqlite:///<tmpdir>/...),
#     since MIA keeps every study in a database (storage: null is MIA's default file);
#   - the import of the official sweeper class names MIA's; the unit tests of the official
#     plugin's private functions (_impl.*, MOTPESamplerConfig) are left out: they test that
#     plugin's internals, not a sweeper's behaviour;
#   - the example apps name version_base=None in @hydra.main: this environment's Hydra 1.3
#     warns without it, and the suite runs them with -Werror (Hydra's HEAD does not warn).
# Then pytest runs them with this venv's Python. Nothing is written into the repository.
set -euo pipefail
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" || $# -lt 1 ]]; then
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
fi
checkout=$(cd "$1" && pwd)
plugin="$checkout/plugins/hydra_optuna_sweeper"
[[ -d "$plugin/tests" ]] || { echo "error: $plugin/tests not found" >&2; exit 2; }
scratch=${2:-$(mktemp -d /tmp/mia-official-optuna.XXXXXX)}
shift $(( $# >= 2 ? 2 : 1 ))
mkdir -p "$scratch"
rm -rf "$scratch/plugin"
mkdir -p "$scratch/plugin"
cp -r "$plugin/tests" "$plugin/example" "$scratch/plugin/"
# Hydra's chdir_plugin_root() looks for setup.py in the folder it runs from.
touch "$scratch/plugin/setup.py"
cd "$scratch/plugin"
sed -i 's/override hydra\/sweeper: optuna/override hydra\/sweeper: mia_optuna/' \
    example/conf/config.yaml example/custom-search-space/config.yaml \
    example/multi-objective-conf/config.yaml tests/conf/*.yaml
sed -i 's/@hydra.main(config_path=/@hydra.main(version_base=None, config_path=/' example/*.py
python - tests/test_optuna_sweeper_plugin.py <<'PY'
import sys

path = sys.argv[1]
text = open(path).read()
text = text.replace('"hydra/sweeper=optuna"', '"hydra/sweeper=mia_optuna"')
text = text.replace(
    "from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper",
    "from hydra_plugins.mia_optuna_sweeper.sweeper import MiaOptunaSweeper as OptunaSweeper",
)
text = text.replace("from hydra_plugins.hydra_optuna_sweeper import _impl\n", "")
text = text.replace(
    "from hydra_plugins.hydra_optuna_sweeper.config import MOTPESamplerConfig\n", ""
)
# A study of its own for each test: a storage override after each sweep's first override.
text = text.replace(
    '"hydra.sweep.dir=" + str(tmpdir),\n',
    '"hydra.sweep.dir=" + str(tmpdir),\n'
    '        "hydra.sweeper.storage=sqlite:///" + os.path.join(str(tmpdir), "own.db"),\n',
)
text = text.replace(
    '"hydra.sweeper.n_jobs=3",\n',
    '"hydra.sweeper.n_jobs=3",\n            "hydra.sweeper.storage=sqlite:///"'
    ' + os.path.join(str(tmp_path), "own.db"),\n',
)
text = text.replace(
    "def test_launch_jobs(hydra_sweep_runner: TSweepRunner) -> None:",
    "def test_launch_jobs(hydra_sweep_runner: TSweepRunner, tmp_path: Path) -> None:",
)
# Left out: unit tests of the official plugin's private functions.
chunks = text.split("\n\n\n")
left_out = (
    "def test_create_optuna_distribution_from_override(",
    "def test_create_params_from_overrides(",
    "def test_motpe_sampler_removed(",
)
text = "\n\n\n".join(c for c in chunks if not any(name in c for name in left_out))
open(path, "w").write(text)
PY
echo "adapted suite in $scratch/plugin"
python -m pytest -p no:cacheprovider -p no:xdist -q tests "$@"
