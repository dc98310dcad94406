#!/usr/bin/env bash
# Same-session speed comparison: PyTorch / ONNX Runtime anchor scripts (from ../shared/anchors,
# not copied here) alternating with `lstm bench`, 3 repetitions; one JSON line per run in $OUT.
# Set up the anchors' venv first: bash ../shared/anchors/setup.sh
set -u
V=${ANCHORS_PYTHON:-$HOME/.cache/lstm-anchors/torch/bin/python}
A=${ANCHORS:-$(dirname "$0")/../../shared/anchors}
L=${LSTM:-$(dirname "$0")/../target/release/lstm}
OUT=${OUT:-side-by-side.jsonl}
: > "$OUT"
for rep in 1 2 3; do
  for cfg in "charlm-2x256|--task charlm --hidden 256 --layers 2" "charlm-1x512|--task charlm --hidden 512 --layers 1" \
             "charlm-1x128|--task charlm --hidden 128 --layers 1" "series-1x64|--task timeseries" "generate-2x256|--task infer"; do
    name=${cfg%%|*}; args=${cfg#*|}
    echo "{\"rep\":$rep,\"who\":\"torch\",\"name\":\"$name\",\"r\":$($V "$A/torch_lstm.py" $args --threads 2 2>/dev/null | tail -1)}" >> "$OUT"
    echo "{\"rep\":$rep,\"who\":\"lstm\",\"name\":\"$name\",\"r\":$("$L" bench --config "$name" --json --threads 2 --seconds 3)}" >> "$OUT"
  done
  echo "{\"rep\":$rep,\"who\":\"ort\",\"name\":\"generate-2x256\",\"r\":$($V "$A/ort_lstm.py" --threads 2 2>/dev/null | tail -1)}" >> "$OUT"
  # ours only: bf16 generation, recurrent dropout, a variable-length batch and its padded twin
  for name in generate-2x256-bf16 charlm-2x256-recdrop charlm-2x256-varlen charlm-2x256-t31; do
    echo "{\"rep\":$rep,\"who\":\"lstm\",\"name\":\"$name\",\"r\":$("$L" bench --config "$name" --json --threads 2 --seconds 3)}" >> "$OUT"
  done
done
