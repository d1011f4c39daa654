#!/usr/bin/env bash
# Screenshot TensorBoard's Time Series page in headless Chromium (Debian: apt-get install chromium).
#   scripts/tensorboard_screenshot.sh LOGDIR OUT.png [TAG_REGEX] [PAGE]
# PAGE is timeseries (default), hparams, text, or scalars with its filter in the hash, e.g.
# 'scalars&tagFilter=loss&_smoothingWeight=0.6'. Starts TensorBoard on a free local port,
# waits for the page to render, writes the PNG, and stops TensorBoard again.
set -euo pipefail
if [[ $# -lt 2 || "$1" == "-h" || "$1" == "--help" ]]; then
  sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi
logdir=$1 out=$2 tags=${3:-} page=${4:-timeseries}
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
tensorboard --logdir "$logdir" --host 127.0.0.1 --port "$port" >/dev/null 2>&1 &
tb=$!
trap 'kill $tb 2>/dev/null' EXIT
for _ in $(seq 60); do curl -sf "http://127.0.0.1:$port" >/dev/null && break; sleep 0.5; done
query="darkMode=false"
[[ -n "$tags" ]] && query="$query&tagFilter=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$tags")"
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$(mktemp -d)" --window-size=1400,1000 --virtual-time-budget=20000 \
  --screenshot="$out" "http://127.0.0.1:$port/?$query#$page" 2>/dev/null
echo "wrote $out"
