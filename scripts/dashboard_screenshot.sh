#!/usr/bin/env bash
# Screenshot optuna-dashboard's page of a study in headless Chromium (pip install -e ".[dashboard]";
# Debian: apt-get install chromium).
#   scripts/dashboard_screenshot.sh OUT.png [STORAGE [STUDY_ID]]
# Without STORAGE it first runs a small real search on Tiny Shakespeare (12 trials of 80 steps,
# median pruning; a few minutes of CPU) into a fresh folder. STUDY_ID defaults to 1. Starts
# optuna-dashboard on a free local port, waits for the page to render, writes the PNG, stops it.
set -euo pipefail
if [[ $# -lt 1 || "$1" == "-h" || "$1" == "--help" ]]; then
  sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi
out=$(realpath "$1") storage=${2:-} study=${3:-1}
repo=$(cd "$(dirname "$0")/.." && pwd)
if [[ -z "$storage" ]]; then
  data=${TINY_SHAKESPEARE:-$repo/../shared/data/tinyshakespeare/input.txt}
  folder=$(mktemp -d)
  storage="sqlite:///$folder/optuna.db"
  echo "searching in $folder (log: $folder/search.txt)"
  (cd "$folder" && python3 -m mia.cli.train hparams_search=optuna experiment=nanogpt_baby_llama \
    data.path="$(realpath "$data")" trainer.max_steps=80 scheduler.decay_steps=80 \
    scheduler.warmup_steps=10 trainer.val_check_interval=20 trainer.limit_val_batches=10 \
    test=false model.compile=false callbacks.progress_bar=null callbacks.model_summary=null \
    callbacks.text_samples=null hydra.sweeper.n_trials=12 hydra.sweeper.pruner=median \
    hydra.sweeper.plots=false hydra.sweeper.storage="$storage" hydra.sweep.dir=sweep \
    'hydra.sweeper.params={model.dim:"choice(32,64)",model.n_layers:"choice(1,2)"}' \
    >search.txt 2>&1)
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
optuna-dashboard "$storage" --host 127.0.0.1 --port "$port" >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null' EXIT
for _ in $(seq 60); do curl -sf "http://127.0.0.1:$port/api/meta" >/dev/null && break; sleep 0.5; done
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$(mktemp -d)" --window-size=1400,1100 --virtual-time-budget=20000 \
  --screenshot="$out" "http://127.0.0.1:$port/dashboard/studies/$study" 2>/dev/null
echo "wrote $out"
