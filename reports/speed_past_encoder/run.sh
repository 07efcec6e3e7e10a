#!/usr/bin/env bash
# Issue 27, items 1 and 5: heads in the graph and the spaCy CNN reference, measured.
# One CPU job at a time; each benchmarked pipeline runs in its own process.
set -euo pipefail
step() { echo "=== $(date -u +%H:%M:%S) $*"; }
OUT=reports/speed_past_encoder
PHASE=${1:-all}  # "train": data, CNN references, the student; "measure": compress and benchmarks
if [ "$PHASE" != measure ]; then
step data;        python -m spacy project run textcat-data . --vars.run full
                  python -m spacy project run ner-data . --vars.run full
step cnn;         python -m spacy project run textcat-cnn . --vars.run full
                  python -m spacy project run ner-cnn . --vars.run full
# A 3-layer MiniLM textcat student (60 steps: its speed, not its accuracy, is what is measured
# here), compressed to int8 with the head in Python and in the graph.
step student;     python -m spacy bertprod make-student assets/minilm-l6 training/exp/textcat-s3/init --layers 3 --pick spread
                  python -m spacy train corpus/full/textcat/config.cfg --output training/exp/textcat-s3/train --paths.train corpus/full/textcat/train.spacy --paths.dev corpus/full/textcat/dev.spacy --paths.encoder training/exp/textcat-s3/init --training.max_steps 60 --training.eval_frequency 60
fi
if [ "$PHASE" != train ]; then
for mode in python graph; do
  step compress-$mode; python -m spacy bertprod compress training/exp/textcat-s3/train/model-last training/exp/textcat-s3/int8-$mode --quantize int8 --sample corpus/full/textcat/dev.spacy --heads-in-$mode --force --report $OUT/compress-$mode.json
done
step bench-textcat; python -m spacy bertprod benchmark training/full/textcat/cnn/model-best training/exp/textcat-s3/int8-python training/exp/textcat-s3/int8-graph --data corpus/full/textcat/test.spacy --batch-size 64 --repeats 3 --latency-docs 200 --report $OUT/benchmark-textcat.json
step bench-ner;   python -m spacy bertprod benchmark training/full/ner/cnn/model-best training/mpnet/ner/stock/model-best training/mpnet/ner/distilled-s0-onnx-int8 training/mpnet/ner/control-s0-onnx-int8 --data corpus/full/ner/test.spacy --batch-size 64 --repeats 1 --latency-docs 100 --report $OUT/benchmark-ner.json
fi
step done
