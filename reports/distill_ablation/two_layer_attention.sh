#!/usr/bin/env bash
# Issue 27 item 4: intermediate-layer distillation (hidden states + attention maps, TinyBERT) for
# the 2-layer WNUT-17 NER student, against plain distillation of the same student. One seed; each
# arm trains from the same initialisation on the same teacher-labelled transfer set. One CPU job at
# a time; a finished step is skipped when the script runs again.
#   bash reports/distill_ablation/two_layer_attention.sh
set -euo pipefail
STEPS=${STEPS:-1500}
source "$(dirname "$0")/two_layer_setup.sh"
train() {  # NAME, extra overrides
  local name=$1; shift
  [ -d $E/$name/model-best ] && return 0
  step "train $name"
  python -m spacy train corpus/full/ner/config.cfg --output $E/$name --paths.train corpus/full/ner/distill \
    --paths.dev corpus/full/ner/dev.spacy --paths.encoder $E/init --paths.teacher $T/teacher-onnx-int8 \
    --training.max_steps $STEPS --training.eval_frequency 150 --system.seed 0 \
    --components.transformer.model.mixed_precision true "$@" 2>&1 | tee $E/$name.log
  python -m spacy bertprod compress $E/$name/model-best $E/$name-int8 --quantize int8 --sample corpus/full/ner/dev.spacy --force
}
train distill
train distill-att-only --paths.layer_teacher $T/teacher/model-best --components.transformer.model.layer_weight 0.0 --components.transformer.model.layer_attention_weight 1.0
[ -n "${ATT_ONLY:-}" ] || train distill-layers-att --paths.layer_teacher $T/teacher/model-best --components.transformer.model.layer_attention_weight 1.0
step evaluate
declare -A WHAT=(
  [distill]="2-layer student (teacher layers 0, 1), distilled $STEPS steps"
  [distill-att-only]="+ attention maps of teacher layers 3, 6 (KL, weight 1)"
  [distill-layers-att]="+ hidden states and attention maps of teacher layers 3, 6 (weights 1, 1)"
)
PIPES=("$T/teacher/model-best=teacher" "$T/teacher-onnx-int8=teacher-int8")
ROWS=(teacher="the 6-layer MiniLM teacher (torch)" teacher-int8="the teacher, int8")
for arm in distill distill-att-only distill-layers-att; do
  [ -d $E/$arm-int8 ] || continue
  PIPES+=("$E/$arm/model-best=$arm" "$E/$arm-int8=$arm-int8")
  ROWS+=("$arm=${WHAT[$arm]} (torch)" "$arm-int8=the same, int8")
done
python scripts/evaluate.py corpus/full/ner metrics/exp/ner2 "${PIPES[@]}"
python reports/distill_ablation/ablation.py metrics/exp/ner2 --score ents_f --baseline distill "${ROWS[@]}" \
  | tee reports/distill_ablation/two_layer_attention.md
step done
