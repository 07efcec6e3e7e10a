#!/usr/bin/env bash
# Issue 27 item 2, word-vector elimination (PoWER-BERT) for Banking77: MiniLM-L6 textcat pipelines
# trained with geometric retention schedules (1, k, k^2, ...), against the same budget without;
# each compressed to int8 and benchmarked (bare session = the encoder alone). One seed; one CPU
# job at a time; finished steps are skipped when the script runs again.
#   bash reports/word_elimination/run.sh          # STEPS=600 KEEPS="0.7 0.6"
set -euo pipefail
step() { echo "=== $(date -u +%H:%M:%S) $*"; }
OUT=reports/word_elimination
D=training/exp/words
C=corpus/full/textcat
STEPS=${STEPS:-600}
KEEPS=${KEEPS:-0.7 0.6}
SEED=${SEED:-0}
schedule() { python -c "from spacy_bertprod.word_elimination import geometric_retention as g; print(g(6, $1))" | tr -d ' '; }
step data; python -m spacy project run assets .
           python -m spacy project run teacher-model .
           python -m spacy project run textcat-data . --vars.run full
train() {  # NAME, schedule ("[]": none)
  [ -d $D/$1/model-best ] && return 0
  step "train $1 with word_retention $2"
  python -m spacy train $C/config.cfg --output $D/$1 --paths.train $C/train.spacy --paths.dev $C/dev.spacy \
    --paths.encoder assets/minilm-l6 --training.max_steps $STEPS --training.eval_frequency 100 --system.seed $SEED \
    --components.transformer.model.mixed_precision true --components.transformer.model.word_retention "$2"
}
train plain-s$SEED "[]"
PIPES=("$D/plain-s$SEED-int8=plain-s$SEED")
for keep in $KEEPS; do
  train keep$keep-s$SEED "$(schedule $keep)"
  PIPES+=("$D/keep$keep-s$SEED-int8=keep$keep-s$SEED")
done
for pipe in "${PIPES[@]}"; do
  out=${pipe%%=*}; name=${pipe##*=}
  [ -d $out ] || { step "compress $name"; python -m spacy bertprod compress $D/$name/model-best $out --quantize int8 --sample $C/dev.spacy --report $OUT/compress-$name.json; }
done
step evaluate; python scripts/evaluate.py $C metrics/exp/words "${PIPES[@]}"
step benchmark; python -m spacy bertprod benchmark $(for p in "${PIPES[@]}"; do echo ${p%%=*}; done) --data $C/test.spacy --batch-size 64 --repeats 3 --latency-docs 200 --report $OUT/benchmark-s$SEED.json
step done
