#!/usr/bin/env bash
# Issue 27 item 4: does the 2-layer WNUT-17 NER student gain from more passes over the transfer set
# (STEPS distillation steps instead of the recipe's 1500), as the 3-layer student did from 600 to
# 1500? Same teacher, initialisation (the teacher's first two layers) and transfer set as
# two_layer_attention.sh; one run per seed in SEEDS. One CPU job at a time; a finished step is
# skipped when the script runs again.
#   SEEDS="0 1 2" STEPS=3000 bash reports/distill_ablation/two_layer_steps.sh
set -euo pipefail
step() { echo "=== $(date -u +%H:%M:%S) $*"; }
V="--vars.run full --vars.mixed_precision true"
T=training/full/ner
E=training/exp/ner2
STEPS=${STEPS:-3000}
SEEDS=${SEEDS:-0 1 2}
if [ ! -d $T/teacher/model-best ]; then
  step data;     python -m spacy project run assets .
                 python -m spacy project run teacher-model .
                 python -m spacy project run ner-data . $V
  step teacher;  python -m spacy project run ner-teacher . $V
fi
[ -d $T/teacher-onnx-int8 ] || { step teacher-compress; python -m spacy project run ner-teacher-compress . $V; }
[ -e corpus/full/ner/distill/train.spacy ] || { step transfer; python -m spacy project run ner-transfer . $V; }
[ -d $E/init ] || python -m spacy bertprod make-student $T/teacher/model-best $E/init --layers 2 --pick bottom
mkdir -p $E
PIPES=("$T/teacher/model-best=teacher" "$T/teacher-onnx-int8=teacher-int8")
for seed in $SEEDS; do
  name=distill-$STEPS-s$seed
  if [ ! -d $E/$name/model-best ]; then
    step "train $name"
    python -m spacy train corpus/full/ner/config.cfg --output $E/$name --paths.train corpus/full/ner/distill \
      --paths.dev corpus/full/ner/dev.spacy --paths.encoder $E/init --paths.teacher $T/teacher-onnx-int8 \
      --training.max_steps $STEPS --training.eval_frequency 150 --system.seed $seed \
      --components.transformer.model.mixed_precision true 2>&1 | tee $E/$name.log
  fi
  [ -d $E/$name-int8 ] || python -m spacy bertprod compress $E/$name/model-best $E/$name-int8 --quantize int8 \
    --sample corpus/full/ner/dev.spacy --force
  PIPES+=("$E/$name/model-best=$name" "$E/$name-int8=$name-int8")
done
step evaluate
python scripts/evaluate.py corpus/full/ner metrics/exp/ner2 "${PIPES[@]}"
step done
