#!/usr/bin/env bash
# Issue 25 item 2, fourth run: the WNUT-17 seed study of the all-mpnet-base-v2 3-layer students.
# The teacher is trained again (same seed and 600-step budget as runs 2 and 3: those outputs were on
# another machine), evaluated as torch, fp32 and int8, then seeds 1, 2 and 0 of the control and the
# distilled student (cached outputs make a rerun skip what is done). One CPU job at a time;
# ~3.5 hours on 2 cores, so it spans sessions. The JSON is copied here by `collect`.
#   bash reports/mpnet/run4/run.sh [collect]
set -euo pipefail
OUT=reports/mpnet/run4
collect() {
  mkdir -p $OUT/dev $OUT/test
  for split in dev test; do cp metrics/mpnet/ner/$split/{teacher,control,distilled}-*.json $OUT/$split/ 2>/dev/null || true; done
  cp metrics/mpnet/ner/transfer.json metrics/mpnet/ner/teacher-label.json $OUT/ 2>/dev/null || true
  grep '"ner-' metrics/mpnet/timings.jsonl > $OUT/timings.jsonl || true
  for d in training/mpnet/ner/*-onnx-int8; do
    name=$(basename $d -onnx-int8); [ -f $d/compress_report.json ] && cp $d/compress_report.json $OUT/compress-$name-int8.json
  done
  true
}
if [ "${1:-}" = collect ]; then collect; exit 0; fi
for seed in 1 2 0; do
  SEED=$seed bash reports/mpnet/student_seed.sh ner --vars.ner_steps 600
  [ -f metrics/mpnet/ner/test/teacher-torch.json ] || python scripts/evaluate.py corpus/mpnet/ner metrics/mpnet/ner \
    training/mpnet/ner/teacher/model-best=teacher-torch training/mpnet/ner/teacher-onnx-fp32=teacher-onnx-fp32 \
    training/mpnet/ner/teacher-onnx-int8=teacher-onnx-int8
done
collect
