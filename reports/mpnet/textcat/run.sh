#!/usr/bin/env bash
# Issue 25 item 2 on Banking77: the all-mpnet-base-v2 intent teacher (600 steps, the project's
# textcat default) and one seed of its 3-layer student (the first run stopped after the distill
# step and ran peer.sh; see ../README.md).
exec bash reports/mpnet/student_seed.sh textcat "$@"
