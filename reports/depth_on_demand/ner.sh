#!/usr/bin/env bash
# Depth on demand for NER: a 3-layer WNUT-17 student distilled with random_depth, cut by
# `compress --depth` to 3 and 2 layers, against the 2-layer student distilled directly
# (reports/distill_ablation/two_layer_attention.sh: same teacher, transfer set, steps and seed).
# Run that script first (it trains the teacher and labels the transfer set).
#   bash reports/depth_on_demand/ner.sh            # STEPS=1500 RANDOM_DEPTH=0.5
set -euo pipefail
step() { echo "=== $(date -u +%H:%M:%S) $*"; }
T=training/full/ner
E=training/exp/ner2
STEPS=${STEPS:-1500}
RANDOM_DEPTH=${RANDOM_DEPTH:-0.5}
[ -d $E/init3 ] || python -m spacy bertprod make-student $T/teacher/model-best $E/init3 --layers 3 --pick bottom
if [ ! -d $E/distill3-random/model-best ]; then
  step "train distill3-random"
  python -m spacy train corpus/full/ner/config.cfg --output $E/distill3-random --paths.train corpus/full/ner/distill \
    --paths.dev corpus/full/ner/dev.spacy --paths.encoder $E/init3 --paths.teacher $T/teacher-onnx-int8 \
    --training.max_steps $STEPS --training.eval_frequency 150 --system.seed 0 \
    --components.transformer.model.mixed_precision true --components.transformer.model.random_depth $RANDOM_DEPTH
fi
for depth in 3 2; do
  [ -d $E/distill3-random-d$depth ] || { step "compress to $depth layers"; python -m spacy bertprod compress $E/distill3-random/model-best $E/distill3-random-d$depth --quantize int8 --sample corpus/full/ner/dev.spacy --depth $depth --report reports/depth_on_demand/compress-ner-d$depth.json; }
done
step evaluate
python scripts/evaluate.py corpus/full/ner metrics/exp/ner2 $E/distill3-random-d3=distill3-random-d3 $E/distill3-random-d2=distill3-random-d2
python reports/distill_ablation/ablation.py metrics/exp/ner2 --score ents_f --baseline distill-int8 \
  teacher-int8="the 6-layer teacher, int8" distill-int8="2-layer student distilled directly, int8" \
  distill3-random-d3="3-layer student distilled with random_depth $RANDOM_DEPTH, int8, all 3 layers" \
  distill3-random-d2="the same, cut to 2 layers (compress --depth 2)" | tee reports/depth_on_demand/ner.md
step done
