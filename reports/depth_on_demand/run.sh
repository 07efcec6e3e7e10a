#!/usr/bin/env bash
# Issue 27 item 3, depth on demand: one Banking77 MiniLM-L6 textcat pipeline trained with
# random_depth, cut by `compress --depth` to 6, 4, 3, 2 and 1 layers, against the same pipeline
# trained without it and cut the same way. One seed; one CPU job at a time; finished steps are
# skipped when the script runs again.
#   bash reports/depth_on_demand/run.sh            # STEPS=600 RANDOM_DEPTH=0.5 DEPTHS="6 4 3 2 1"
set -euo pipefail
step() { echo "=== $(date -u +%H:%M:%S) $*"; }
OUT=reports/depth_on_demand
D=training/exp/depth
C=corpus/full/textcat
STEPS=${STEPS:-600}
RANDOM_DEPTH=${RANDOM_DEPTH:-0.5}
DEPTHS=${DEPTHS:-6 4 3 2 1}
step data; python -m spacy project run assets .
           python -m spacy project run teacher-model .
           python -m spacy project run textcat-data . --vars.run full
train() {  # NAME, random_depth
  [ -d $D/$1/model-best ] && return 0
  step "train $1"
  python -m spacy train $C/config.cfg --output $D/$1 --paths.train $C/train.spacy --paths.dev $C/dev.spacy \
    --paths.encoder assets/minilm-l6 --training.max_steps $STEPS --training.eval_frequency 100 --system.seed 0 \
    --components.transformer.model.mixed_precision true --components.transformer.model.random_depth $2
}
train plain 0.0
train random $RANDOM_DEPTH
PIPES=()
for name in plain random; do
  for depth in $DEPTHS; do
    [ -d $D/$name-d$depth ] || { step "compress $name to $depth layers"; python -m spacy bertprod compress $D/$name/model-best $D/$name-d$depth --quantize int8 --sample $C/dev.spacy --depth $depth --report $OUT/compress-$name-d$depth.json; }
    PIPES+=("$D/$name-d$depth=$name-d$depth")
  done
done
step evaluate; python scripts/evaluate.py $C metrics/exp/depth "${PIPES[@]}"
step benchmark; python -m spacy bertprod benchmark $(for depth in $DEPTHS; do echo $D/random-d$depth; done) --data $C/test.spacy --batch-size 64 --repeats 3 --latency-docs 200 --report $OUT/benchmark.json
step summary; python $OUT/summary.py metrics/exp/depth $OUT/benchmark.json --depths "$DEPTHS" | tee $OUT/table.md
step done
