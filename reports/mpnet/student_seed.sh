#!/usr/bin/env bash
# Issue 25 item 2: the all-mpnet-base-v2 teacher for TASK (ner or textcat), its int8 copy, the
# transfer set it labels, and one seed (SEED, default 0) of its 3-layer student, control and
# distilled, with the project's defaults plus any extra --vars given. One CPU job at a time; cached
# outputs make a rerun with SEED=1 or 2 skip the teacher.
#   bash reports/mpnet/student_seed.sh TASK [--vars.NAME VALUE ...]
set -euo pipefail
TASK=${1:?usage: student_seed.sh ner|textcat [--vars.NAME VALUE ...]}; shift
V="--vars.run mpnet --vars.teacher_model assets/all-mpnet-base-v2 --vars.eval_frequency 150 --vars.mixed_precision true --vars.seed ${SEED:-0} $*"
step() { echo "=== $(date -u +%H:%M:%S) $*"; }
step assets;           python -m spacy project run assets .
step encoder;          python -m spacy project run encoder-mpnet .
for stage in data teacher teacher-compress transfer student-init distill control seed-evaluate; do
  step "$TASK-$stage"; python -m spacy project run "$TASK-$stage" . $V
done
step done
