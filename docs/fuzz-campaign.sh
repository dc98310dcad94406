#!/usr/bin/env bash
# Runs each fuzz target of crates/lstm/tests/fuzz.rs for SECONDS (default 600) of fuzzing on
# one core, in chunks of CHUNK seconds (default 90), pausing while the file $PAUSE_FILE exists
# (a speed measurement on the same machine); prints the executions of every chunk and the
# totals. Usage: [TARGETS="fuzz_text_loader ..."] bash docs/fuzz-campaign.sh [SECONDS] [CHUNK]
set -euo pipefail
SECONDS_WANTED=${1:-600}
CHUNK=${2:-90}
PAUSE_FILE=${PAUSE_FILE:-/work/quiet}
cd "$(dirname "$0")/.."
# build once and run a copy, so that editing the sources meanwhile changes nothing
exe=$(nice -n 19 cargo test --release -j 1 --test fuzz --no-run --message-format=json 2>/dev/null \
  | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
bin=$(mktemp /tmp/lstm-fuzz-XXXXXX)
cp "$exe" "$bin"
chmod +x "$bin"
for target in ${TARGETS:-fuzz_checkpoint_loader fuzz_text_loader fuzz_csv_tsv_loaders}; do
  done_s=0; execs=0; accepted=0
  while [ "$done_s" -lt "$SECONDS_WANTED" ]; do
    while [ -e "$PAUSE_FILE" ]; do sleep 15; done
    left=$((SECONDS_WANTED - done_s)); chunk=$((left < CHUNK ? left : CHUNK))
    log=$(mktemp /tmp/lstm-fuzz-log-XXXXXX)
    if ! LSTM_FUZZ_SECONDS=$chunk LSTM_FUZZ_STOP_FILE="$PAUSE_FILE" nice -n 19 taskset -c 1 \
      "$bin" "$target" --exact --nocapture --test-threads 1 >"$log" 2>&1; then
      echo "FAILED: $target (output in $log)" >&2; exit 1
    fi
    line=$(grep 'executions in' "$log"); rm -f "$log"
    echo "$(date -u +%H:%M:%S) $target chunk: $line"
    n=$(echo "$line" | sed -E 's/.*: ([0-9]+) executions in ([0-9.]+) s.*/\1/')
    t=$(echo "$line" | sed -E 's/.*: ([0-9]+) executions in ([0-9.]+) s.*/\2/')
    a=$(echo "$line" | sed -E 's/.*\(([0-9]+) accepted.*/\1/')
    execs=$((execs + n)); done_s=$((done_s + ${t%.*})); accepted=$((accepted + a))
  done
  echo "TOTAL $target: $execs executions ($accepted accepted by the loader) in $done_s s of fuzzing, no panic"
done
rm -f "$bin"
