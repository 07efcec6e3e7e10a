#!/usr/bin/env bash
# Issue 25 item 2 on Banking77: an all-mpnet-base-v2 intent teacher (600 steps, bfloat16 on a CPU
# with bf16 units), its int8 copy, the transfer set it labels, and one seed (SEED, default 0) of
# its 3-layer student, control and distilled, with the project's defaults. One CPU job at a time;
# cached outputs make a rerun with SEED=1 or 2 skip the teacher.
set -euo pipefail
V="--vars.run mpnet --vars.teacher_model assets/all-mpnet-base-v2 --vars.eval_frequency 150 --vars.mixed_precision true --vars.seed ${SEED:-0}"
step() { echo "=== $(date -u +%H:%M:%S) $*"; }
step assets;           python -m spacy project run assets .
step encoder;          python -m spacy project run encoder-mpnet .
step data;             python -m spacy project run textcat-data . $V
step teacher;          python -m spacy project run textcat-teacher . $V
step teacher-compress; python -m spacy project run textcat-teacher-compress . $V
step transfer;         python -m spacy project run textcat-transfer . $V
step student-init;     python -m spacy project run textcat-student-init . $V
step distill;          python -m spacy project run textcat-distill . $V
step control;          python -m spacy project run textcat-control . $V
step seed-evaluate;    python -m spacy project run textcat-seed-evaluate . $V
step done
