#!/usr/bin/env bash
# Issue 27 item 4: one recipe for the 2-layer WNUT-17 NER student, one run per seed: the same
# teacher, initialisation and transfer set as two_layer_attention.sh (two_layer_setup.sh), STEPS
# distillation steps, and any config overrides after the arm's NAME. Runs are NAME-s<seed>, their
# int8 copies NAME-s<seed>-int8; all are evaluated with the teacher at the end. One CPU job at a
# time; a finished run is skipped when the script runs again.
#   SEEDS="0 1 2" STEPS=3000 bash reports/distill_ablation/two_layer_seeds.sh distill-3000
#   SEEDS="0 1 2" STEPS=1500 bash reports/distill_ablation/two_layer_seeds.sh upper128-1500 \
#     --components.ner.model.use_upper true --components.ner.model.hidden_width 128
# CONFIG names another training config (default: the workflow's corpus/full/ner/config.cfg), INIT
# another student initialisation (default: the teacher's first two layers, two_layer_setup.sh).
set -euo pipefail
NAME=${1:?usage: two_layer_seeds.sh NAME [config overrides]}
shift
STEPS=${STEPS:-1500}
SEEDS=${SEEDS:-0 1 2}
CONFIG=${CONFIG:-corpus/full/ner/config.cfg}
source "$(dirname "$0")/two_layer_setup.sh"
INIT=${INIT:-$E/init}
PIPES=("$T/teacher/model-best=teacher" "$T/teacher-onnx-int8=teacher-int8")
for seed in $SEEDS; do
  run=$NAME-s$seed
  if [ ! -d $E/$run/model-best ]; then
    step "train $run"
    python -m spacy train $CONFIG --output $E/$run --paths.train corpus/full/ner/distill \
      --paths.dev corpus/full/ner/dev.spacy --paths.encoder $INIT --paths.teacher $T/teacher-onnx-int8 \
      --training.max_steps $STEPS --training.eval_frequency 150 --system.seed $seed \
      --components.transformer.model.mixed_precision true "$@" 2>&1 | tee $E/$run.log
  fi
  [ -d $E/$run-int8 ] || python -m spacy bertprod compress $E/$run/model-best $E/$run-int8 --quantize int8 \
    --sample corpus/full/ner/dev.spacy --force
  PIPES+=("$E/$run/model-best=$run" "$E/$run-int8=$run-int8")
done
step evaluate
python scripts/evaluate.py corpus/full/ner metrics/exp/ner2 "${PIPES[@]}"
step done
