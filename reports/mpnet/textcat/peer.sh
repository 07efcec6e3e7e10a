#!/usr/bin/env bash
# Issue 25 item 2 on Banking77, after run.sh (seed 0, whose textcat-seed-evaluate made and scored the
# students' int8 copies): `spacy evaluate` of the teacher (torch and int8, dev and test), the stock
# spacy-transformers text classifier on the same encoder (20 steps: its speed does not depend on its
# weights), one benchmark run of them all (each pipeline in its own process; 1,000 test texts), and
# the int8 student's same-text-same-answer check on every test text.
set -euo pipefail
V="--vars.run mpnet --vars.teacher_model assets/all-mpnet-base-v2 --vars.eval_frequency 150 --vars.mixed_precision true"
T=training/mpnet/textcat
python scripts/evaluate.py corpus/mpnet/textcat metrics/mpnet/textcat $T/teacher/model-best=teacher-torch \
    $T/teacher-onnx-int8=teacher-onnx-int8
python -m spacy project run textcat-stock . $V --vars.stock_steps 20
python -m spacy bertprod benchmark $T/stock/model-best $T/teacher/model-best $T/teacher-onnx-int8 \
    $T/distilled-s0-onnx-int8 --data corpus/mpnet/textcat/test.spacy --limit 1000 --batch-size 64 --repeats 3 \
    --latency-docs 100 --report metrics/mpnet/textcat/benchmark-peer.json
python -m spacy bertprod invariance $T/distilled-s0-onnx-int8 --data corpus/mpnet/textcat/test.spacy \
    --n-process 2 --report metrics/mpnet/textcat/invariance-distilled-s0-onnx-int8.json
