#!/usr/bin/env bash
# Same-session speed comparison: PyTorch / ONNX Runtime anchor scripts (from ../shared/anchors,
# not copied here) alternating with `lstm bench`, $REPS repetitions (3 unless set); one JSON line
# per run in $OUT. Method and current figures: docs/performance.md.
# Set up the anchors' venv first: bash ../shared/anchors/setup.sh
# A run to keep goes into its own folder: REPS=5 OUT=docs/runs/<date>-<name>/run.jsonl bash docs/side-by-side.sh,
# then a README.md beside it (commit, date, command, the summary table); keep only runs the docs cite.
# REPS=5 ONLY="charlm-2x256 generate-2x256" bash docs/side-by-side.sh: more repetitions of fewer
# configurations (ONLY set: the ours-only extras are skipped). LSTM=<binary> measures another build.
# Summarise a run: target/release/lstm bench --summarize "$OUT" (medians and ratios, Markdown).
# BF16=1 ONLY="charlm-2x256 charlm-1x512 charlm-1x128 series-1x64" bash docs/side-by-side.sh: each
# training configuration in f32 and in bf16 against PyTorch fp32 and PyTorch's bf16 autocast.
set -u
REPS=${REPS:-3}
ONLY=${ONLY:-}
V=${ANCHORS_PYTHON:-$HOME/.cache/lstm-anchors/torch/bin/python}
A=${ANCHORS:-$(dirname "$0")/../../shared/anchors}
L=${LSTM:-$(dirname "$0")/../target/release/lstm}
OUT=${OUT:-side-by-side.jsonl}
mkdir -p "$(dirname "$OUT")"
: > "$OUT"
for rep in $(seq 1 "$REPS"); do
  for cfg in "charlm-2x256|--task charlm --hidden 256 --layers 2" "charlm-1x512|--task charlm --hidden 512 --layers 1" \
             "charlm-1x128|--task charlm --hidden 128 --layers 1" "series-1x64|--task timeseries" "generate-2x256|--task infer"; do
    name=${cfg%%|*}; args=${cfg#*|}
    [ -n "$ONLY" ] && [[ " $ONLY " != *" $name "* ]] && continue
    echo "{\"rep\":$rep,\"who\":\"torch\",\"name\":\"$name\",\"r\":$($V "$A/torch_lstm.py" $args --threads 2 2>/dev/null | tail -1)}" >> "$OUT"
    echo "{\"rep\":$rep,\"who\":\"lstm\",\"name\":\"$name\",\"r\":$("$L" bench --config "$name" --json --threads 2 --seconds 3)}" >> "$OUT"
    # BF16=1: the training configurations in mixed precision too, as "<name>-bf16": ours with
    # --precision bf16 against PyTorch under torch.autocast bf16 (the series anchor has no bf16
    # mode: series-1x64-bf16 is ours alone, to set against series-1x64)
    if [ -n "${BF16:-}" ] && [ "$name" != generate-2x256 ]; then
      if [ "$name" != series-1x64 ]; then
        echo "{\"rep\":$rep,\"who\":\"torch\",\"name\":\"$name-bf16\",\"r\":$($V "$A/torch_lstm.py" $args --threads 2 --bf16 2>/dev/null | tail -1)}" >> "$OUT"
      fi
      echo "{\"rep\":$rep,\"who\":\"lstm\",\"name\":\"$name-bf16\",\"r\":$("$L" bench --config "$name" --precision bf16 --json --threads 2 --seconds 3)}" >> "$OUT"
    fi
  done
  [ -n "$ONLY" ] && [[ " $ONLY " != *" generate-2x256 "* ]] && continue
  echo "{\"rep\":$rep,\"who\":\"ort\",\"name\":\"generate-2x256\",\"r\":$($V "$A/ort_lstm.py" --threads 2 2>/dev/null | tail -1)}" >> "$OUT"
  # ours only: bf16 generation, recurrent dropout, a variable-length batch and its padded twin
  [ -n "$ONLY" ] && continue
  for name in generate-2x256-bf16 charlm-2x256-recdrop charlm-2x256-varlen charlm-2x256-t31 \
              charlm-1x512-varlen charlm-1x512-t31; do
    echo "{\"rep\":$rep,\"who\":\"lstm\",\"name\":\"$name\",\"r\":$("$L" bench --config "$name" --json --threads 2 --seconds 3)}" >> "$OUT"
    # BF16=1: the training configurations in mixed precision too, as "<name>-bf16": ours with
    # --precision bf16 against PyTorch under torch.autocast bf16 (the series anchor has no bf16
    # mode: series-1x64-bf16 is ours alone, to set against series-1x64)
    if [ -n "${BF16:-}" ] && [ "$name" != generate-2x256 ]; then
      if [ "$name" != series-1x64 ]; then
        echo "{\"rep\":$rep,\"who\":\"torch\",\"name\":\"$name-bf16\",\"r\":$($V "$A/torch_lstm.py" $args --threads 2 --bf16 2>/dev/null | tail -1)}" >> "$OUT"
      fi
      echo "{\"rep\":$rep,\"who\":\"lstm\",\"name\":\"$name-bf16\",\"r\":$("$L" bench --config "$name" --precision bf16 --json --threads 2 --seconds 3)}" >> "$OUT"
    fi
  done
done
