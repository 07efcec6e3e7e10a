#!/usr/bin/env bash
# Issue 25 item 2, third run: the all-mpnet-base-v2 WNUT-17 teacher again (same seed and budget
# as run 2) and one seed of its 3-layer student, control and distilled. One CPU job at a time.
set -euo pipefail
V="--vars.run mpnet --vars.teacher_model assets/all-mpnet-base-v2 --vars.ner_steps 600 --vars.eval_frequency 150 --vars.mixed_precision true --vars.seed ${SEED:-0}"
step() { echo "=== $(date -u +%H:%M:%S) $*"; }
step assets;          python -m spacy project run assets .
step encoder;         python -m spacy project run encoder-mpnet .
step data;            python -m spacy project run ner-data . $V
step teacher;         python -m spacy project run ner-teacher . $V
step teacher-compress; python -m spacy project run ner-teacher-compress . $V
step transfer;        python -m spacy project run ner-transfer . $V
step student-init;    python -m spacy project run ner-student-init . $V
step distill;         python -m spacy project run ner-distill . $V
step control;         python -m spacy project run ner-control . $V
step seed-evaluate;   python -m spacy project run ner-seed-evaluate . $V
step done
