#!/usr/bin/env bash
# Issue 27 item 2, PoWER-BERT's own recipe: fine-tune first (run.sh's plain pipeline), then
# train again from that fine-tuned encoder with the retention schedule; the control is the same
# second stage without a schedule (same total steps). One CPU job at a time; finished steps skipped.
#   bash reports/word_elimination/refit.sh        # STEPS=600 KEEPS="0.8 0.7" (after run.sh)
set -euo pipefail
step() { echo "=== $(date -u +%H:%M:%S) $*"; }
OUT=reports/word_elimination
D=training/exp/words
C=corpus/full/textcat
STEPS=${STEPS:-600}
KEEPS=${KEEPS:-0.8 0.7}
SEED=${SEED:-0}
schedule() { python -c "from spacy_bertprod.word_elimination import geometric_retention as g; print(g(6, $1))" | tr -d ' '; }
[ -d $D/tuned-s$SEED ] || python -m spacy bertprod make-student $D/plain-s$SEED/model-best $D/tuned-s$SEED --layers 6 --pick bottom
train() {  # NAME, schedule ("[]": none)
  [ -d $D/$1/model-best ] && return 0
  step "train $1 from the fine-tuned encoder with word_retention $2"
  python -m spacy train $C/config.cfg --output $D/$1 --paths.train $C/train.spacy --paths.dev $C/dev.spacy \
    --paths.encoder $D/tuned-s$SEED --training.max_steps $STEPS --training.eval_frequency 100 --system.seed $SEED \
    --components.transformer.model.mixed_precision true --components.transformer.model.word_retention "$2"
}
train refit-plain-s$SEED "[]"
PIPES=("$D/refit-plain-s$SEED-int8=refit-plain-s$SEED")
for keep in $KEEPS; do
  train refit-keep$keep-s$SEED "$(schedule $keep)"
  PIPES+=("$D/refit-keep$keep-s$SEED-int8=refit-keep$keep-s$SEED")
done
for pipe in "${PIPES[@]}"; do
  out=${pipe%%=*}; name=${pipe##*=}
  [ -d $out ] || { step "compress $name"; python -m spacy bertprod compress $D/$name/model-best $out --quantize int8 --sample $C/dev.spacy --report $OUT/compress-$name.json; }
done
step evaluate; python scripts/evaluate.py $C metrics/exp/words "${PIPES[@]}"
# One benchmark run for every pipeline of both scripts, the plainly trained one first.
ALL=$D/plain-s$SEED-int8; for p in $D/*-s$SEED-int8; do [ $p = $D/plain-s$SEED-int8 ] || ALL="$ALL $p"; done
step benchmark; python -m spacy bertprod benchmark $ALL --data $C/test.spacy --batch-size 64 --repeats 3 --latency-docs 200 --report $OUT/benchmark-all-s$SEED.json
step summary; python $OUT/summary.py metrics/exp/words $OUT/benchmark-all-s$SEED.json $OUT/compress-*-s$SEED.json | tee $OUT/table-s$SEED.md
step done
