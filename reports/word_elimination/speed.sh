#!/usr/bin/env bash
# Issue 27 item 2: what each retention schedule buys the int8 encoder, apart from accuracy. One
# Banking77 textcat pipeline (MiniLM-L6, a few training steps: speed does not depend on the weights,
# a doc keeps ceil(share x its wordpieces) vectors whatever they are) compressed to int8 with each
# schedule by `compress --word-retention`; the bare encoders timed interleaved in one process
# (`bertprod compare-encoders`), and where the time goes (`bertprod profile-encoder`).
# Geometric schedules (1, k, k^2, ...) drop at every layer; the step schedules keep about the
# geometric 0.7 one's layer work with 2 or 3 drops. Run it on a quiet machine.
#   bash reports/word_elimination/speed.sh        # ROUNDS=7
set -euo pipefail
OUT=reports/word_elimination
D=training/exp/wspeed
C=corpus/full/textcat
ROUNDS=${ROUNDS:-7}
python -m spacy project run assets . && python -m spacy project run teacher-model .
python -m spacy project run textcat-data . --vars.run full
[ -d $D/plain/model-best ] || python -m spacy train $C/config.cfg --output $D/plain --paths.train $C/train.spacy \
  --paths.dev $C/dev.spacy --paths.encoder assets/minilm-l6 --training.max_steps 20 --training.eval_frequency 20
SCHEDULES=(
  "none="
  "geometric-0.8=1,0.8,0.64,0.512,0.4096,0.3277"
  "geometric-0.7=1,0.7,0.49,0.343,0.2401,0.1681"
  "geometric-0.6=1,0.6,0.36,0.216,0.1296,0.0778"
  "geometric-0.5=1,0.5,0.25,0.125,0.0625,0.0313"
  "step-2-drops=1,0.55,0.55,0.28,0.28,0.28"
  "step-3-drops=1,0.6,0.6,0.35,0.35,0.04"
)
ENTRIES=()
for spec in "${SCHEDULES[@]}"; do
  name=${spec%%=*}; shares=${spec#*=}
  [ -d $D/$name ] || python -m spacy bertprod compress $D/plain/model-best $D/$name --quantize int8 \
    --sample $C/dev.spacy ${shares:+--word-retention $shares}
  ENTRIES+=("$name=$D/$name")
done
python -m spacy bertprod compare-encoders "${ENTRIES[@]}" --data $C/test.spacy --rounds $ROUNDS --report $OUT/speed-schedules.json
for name in none geometric-0.7; do
  python -m spacy bertprod profile-encoder $D/$name --data $C/test.spacy --report $OUT/profile-$name.json
done
