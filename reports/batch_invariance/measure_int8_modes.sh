#!/usr/bin/env bash
# int8 modes side by side on one trained pipeline: accuracy, same-text-same-answer, speed.
#
#   bash reports/batch_invariance/measure_int8_modes.sh PIPELINE DEV.spacy TEST.spacy METRICS_DIR WORK_DIR
#
# Compresses PIPELINE to fp32, int8 with dynamic activation scales and int8 with calibrated
# scales (percentile 99.99 = the default, 99.999, and min/max), calibrating on DEV; then `spacy evaluate`
# and `bertprod invariance` on TEST for each, the original pipeline included, and an interleaved
# A/B of the bare sessions. Writes eval-*.json, invariance-*.json, ab.json under METRICS_DIR;
# reports/batch_invariance/int8_modes_report.py turns them into a table. (reports/batch_invariance/ was made so.)
set -euo pipefail
[ $# -eq 5 ] || { echo "usage: $0 PIPELINE DEV.spacy TEST.spacy METRICS_DIR WORK_DIR" >&2; exit 2; }
SRC=$1; DEV=$2; TEST=$3; M=$4; W=$5
mkdir -p "$M" "$W"
variants=(fp32 int8-dynamic int8-calibrated-p9999 int8-calibrated-p99999 int8-calibrated-minmax)
args_fp32="--quantize fp32"
args_int8_dynamic="--activation-scales dynamic"
args_int8_calibrated_p9999="--calibration-percentile 99.99"
args_int8_calibrated_p99999="--calibration-percentile 99.999"
args_int8_calibrated_minmax="--calibration-percentile 100"
for v in "${variants[@]}"; do
  var="args_${v//-/_}"
  [ -d "$W/$v" ] || python -m spacy bertprod compress "$SRC" "$W/$v" --sample "$DEV" --force ${!var} > "$W/compress-$v.log" 2>&1
done
python -m spacy evaluate "$SRC" "$TEST" --output "$M/eval-original.json" > /dev/null
# spacy-transformers pipelines hang with n_process > 1 (spaCy #6662): the original runs in one process.
python -m spacy bertprod invariance "$SRC" --data "$TEST" --batch-sizes 1,16,64,256 --n-process 1 --limit 600 --report "$M/invariance-original.json" > /dev/null
for v in "${variants[@]}"; do
  python -m spacy evaluate "$W/$v" "$TEST" --output "$M/eval-$v.json" > /dev/null
  python -m spacy bertprod invariance "$W/$v" --data "$TEST" --batch-sizes 1,16,64,256 --n-process 2 --report "$M/invariance-$v.json" > /dev/null
done
python -m spacy bertprod compare-encoders "$W/int8-dynamic" "$W/int8-calibrated-p9999" "$W/int8-calibrated-minmax" "$W/fp32" --data "$TEST" --rounds 7 --report "$M/ab.json"
