#!/usr/bin/env bash
# Issue 25 item 2, third run: the all-mpnet-base-v2 WNUT-17 teacher again (same seed and budget
# as run 2: 600 steps) and one seed of its 3-layer student, control and distilled.
exec bash reports/mpnet/student_seed.sh ner --vars.ner_steps 600 "$@"
