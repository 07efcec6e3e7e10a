#!/usr/bin/env bash
# Issue 25 item 2 on Banking77: the all-mpnet-base-v2 intent teacher (600 steps, the project's
# textcat default) and one seed (SEED) of its 3-layer student, control and distilled; then peer.sh
# for the speed peer, benchmark and invariance (see ../README.md).
exec bash reports/mpnet/student_seed.sh textcat "$@"
