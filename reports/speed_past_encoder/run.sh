#!/usr/bin/env bash
# Issue 27, items 1 and 5: heads in the graph and the spaCy CNN reference, measured.
# One CPU job at a time; each benchmarked pipeline runs in its own process.
#   bash reports/speed_past_encoder/run.sh cnn       # data and spaCy's CNN references (Banking77, WNUT-17)
#   bash reports/speed_past_encoder/run.sh textcat   # a 3-layer MiniLM textcat student, int8, head in Python / in the graph
#   bash reports/speed_past_encoder/run.sh ner       # the MPNet NER students (reports/mpnet/run3) against the CNN
#   bash reports/speed_past_encoder/run.sh narrow    # Banking77: the shipped 3-layer student, a narrower one (frontier 3:0.5),
#                                                    # stock and CNN peers in one benchmark, the free-encoder ceiling, seeds 1-2
set -euo pipefail
step() { echo "=== $(date -u +%H:%M:%S) $*"; }
OUT=reports/speed_past_encoder
S=training/exp/textcat-s3
data() {
  python -m spacy project run assets .
  python -m spacy project run teacher-model .
  python -m spacy project run textcat-data . --vars.run full
  python -m spacy project run ner-data . --vars.run full
}
case "${1:-}" in
cnn)
  step data; data
  step cnn;  python -m spacy project run textcat-cnn . --vars.run full
             python -m spacy project run ner-cnn . --vars.run full
  ;;
textcat)
  step data; data
  # 60 steps: this measures speed, which does not depend on the weights.
  step student; python -m spacy bertprod make-student assets/minilm-l6 $S/init --layers 3 --pick spread
                python -m spacy train corpus/full/textcat/config.cfg --output $S/train --paths.train corpus/full/textcat/train.spacy --paths.dev corpus/full/textcat/dev.spacy --paths.encoder $S/init --training.max_steps 60 --training.eval_frequency 60
  for mode in python graph; do
    step compress-$mode; python -m spacy bertprod compress $S/train/model-last $S/int8-$mode --quantize int8 --sample corpus/full/textcat/dev.spacy --heads-in-$mode --force --report $OUT/compress-$mode.json
  done
  # Close variants: 5 rounds, each pipeline in a fresh process per round, rotated order.
  step bench-textcat; python -m spacy bertprod benchmark $S/int8-python $S/int8-graph --data corpus/full/textcat/test.spacy --batch-size 64 --repeats 3 --rounds 5 --latency-docs 200 --report $OUT/benchmark-textcat.json
  ;;
ner)
  step bench-ner; python -m spacy bertprod benchmark training/full/ner/cnn/model-best training/mpnet/ner/stock/model-best training/mpnet/ner/distilled-s0-onnx-int8 training/mpnet/ner/control-s0-onnx-int8 --data corpus/full/ner/test.spacy --batch-size 64 --repeats 1 --latency-docs 100 --report $OUT/benchmark-ner.json
  ;;
narrow)
  T=training/full/textcat
  step data; data
  for c in textcat-teacher textcat-teacher-compress textcat-transfer textcat-student-init textcat-distill textcat-cnn textcat-stock; do
    python -m spacy project run $c . --vars.run full
  done
  python -m spacy bertprod compress $T/distilled-s0/model-best $T/distilled-s0-onnx-int8 --quantize int8 --sample corpus/full/textcat/dev.spacy --force
  python scripts/evaluate.py corpus/full/textcat metrics/full/textcat $T/distilled-s0-onnx-int8=distilled-s0-onnx-int8
  step frontier; python scripts/frontier.py textcat --run full --layers 3:0.5 --pick spread --steps 1500 --seed 0
  step bench; python -m spacy bertprod benchmark $T/stock/model-best $T/cnn/model-best $T/distilled-s0-onnx-int8 $T/frontier/frontier3-pruneffn50-s0-onnx-int8 --data corpus/full/textcat/test.spacy --batch-size 64 --repeats 3 --rounds 3 --latency-docs 200 --report $OUT/benchmark-narrow-textcat.json
  for p in distilled-s0-onnx-int8 frontier/frontier3-pruneffn50-s0-onnx-int8; do
    step ceiling-$p; python $OUT/free_encoder.py $T/$p --data corpus/full/textcat/test.spacy --report $OUT/free-encoder-$(basename $p).json
  done
  for s in 1 2; do  # the same distillation, seeds 1 and 2, for the narrower and the shipped student
    for pair in frontier/frontier3-pruneffn50-init:frontier/frontier3-pruneffn50-s$s student-init:distilled-s$s; do
      init=$T/${pair%%:*}; out=$T/${pair##*:}
      step seed-$s-$out; python -m spacy train corpus/full/textcat/config.cfg --output $out --paths.train corpus/full/textcat/distill --paths.dev corpus/full/textcat/dev.spacy --paths.encoder $init --training.max_steps 1500 --training.eval_frequency 100 --system.seed $s --gpu-id -1
      python -m spacy bertprod compress $out/model-best $out-onnx-int8 --quantize int8 --sample corpus/full/textcat/dev.spacy --force
      python scripts/evaluate.py corpus/full/textcat metrics/full/textcat $out-onnx-int8=$(basename $out)-onnx-int8
    done
  done
  ;;
*) echo "usage: $0 cnn|textcat|ner|narrow" >&2; exit 2 ;;
esac
step done
