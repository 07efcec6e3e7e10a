#!/usr/bin/env bash
# Issue 27 item 2, "the student distilled with it": the Banking77 teacher of the textcat workflow
# (MiniLM-L6 fine-tuned, `spacy project run textcat-teacher`), its int8 copy labelling the transfer
# set as the workflow does, then a student that is a full copy of the teacher (make-student --layers
# 6 --pick bottom) trained on the teacher's soft targets *with* a geometric retention schedule;
# the control for the schedule is the same distillation without one. Each compressed to int8.
# Then, on a quiet machine, the students against the teacher: encoders interleaved in one process
# (compare-encoders), whole pipelines each in its own process per round (benchmark --rounds), and
# the same answer alone / batched / shuffled / n_process=2 (invariance).
# One CPU job at a time; finished steps are skipped when the script runs again.
#   bash reports/word_elimination/distill.sh      # KEEPS="0.5 0.7 step2=1,0.55,0.55,0.28,0.28,0.28" STEPS=1500
set -euo pipefail
step() { echo "=== $(date -u +%H:%M:%S) $*"; }
OUT=reports/word_elimination
RUN=${RUN:-full}
C=corpus/$RUN/textcat
T=training/$RUN/textcat
D=training/exp/words-distill
STEPS=${STEPS:-1500}
KEEPS=${KEEPS:-0.5 0.7}
NAMES=${NAMES:-plain}
SEED=${SEED:-0}
MP=${MP:-true}
schedule() { python -c "from spacy_bertprod.word_elimination import geometric_retention as g; print(g(6, $1))" | tr -d ' '; }
step data; python -m spacy project run assets . && python -m spacy project run teacher-model .
python -m spacy project run textcat-data . --vars.run $RUN
step teacher; python -m spacy project run textcat-teacher . --vars.run $RUN --vars.mixed_precision $MP
step teacher-compress; python -m spacy project run textcat-teacher-compress . --vars.run $RUN
step transfer; python -m spacy project run textcat-transfer . --vars.run $RUN
[ -d $D/init ] || python -m spacy bertprod make-student $T/teacher/model-best $D/init --layers 6 --pick bottom
train() {  # NAME, schedule ("[]": none)
  [ -d $D/$1/model-best ] && return 0
  step "distil $1 with word_retention $2"
  python -m spacy train $C/config.cfg --output $D/$1 --paths.train $C/distill --paths.dev $C/dev.spacy \
    --paths.encoder $D/init --training.max_steps $STEPS --training.eval_frequency 250 --system.seed $SEED \
    --components.transformer.model.mixed_precision $MP --components.transformer.model.word_retention "$2"
}
PIPES=("$T/teacher-onnx-int8=teacher")
NAMED=()  # a KEEPS item is a geometric keep rate (0.7) or NAME=SHARES (step2=1,0.55,0.55,0.28,0.28,0.28)
for item in $KEEPS; do
  case $item in *=*) name=${item%%=*}; shares="[${item#*=}]" ;; *) name=keep$item; shares=$(schedule $item) ;; esac
  train $name-s$SEED "$shares"
  PIPES+=("$D/$name-s$SEED-int8=$name-s$SEED"); NAMED+=("$name")
done
for name in $NAMES; do
  train $name-s$SEED "[]"
  PIPES+=("$D/$name-s$SEED-int8=$name-s$SEED")
done
for pipe in "${PIPES[@]:1}"; do
  out=${pipe%%=*}; name=${pipe##*=}
  [ -d $out ] || { step "compress $name"; python -m spacy bertprod compress $D/$name/model-best $out --quantize int8 --sample $C/dev.spacy --report $OUT/compress-distilled-$name.json; }
done
step evaluate; python scripts/evaluate.py $C metrics/exp/words-distill "${PIPES[@]}"
ENTRIES=(); for pipe in "${PIPES[@]}"; do ENTRIES+=("${pipe##*=}=${pipe%%=*}"); done
step compare-encoders; python -m spacy bertprod compare-encoders "${ENTRIES[@]}" --data $C/test.spacy --rounds 7 \
  --report $OUT/encoders-distilled-s$SEED.json
step benchmark; python -m spacy bertprod benchmark $(for p in "${PIPES[@]}"; do echo ${p%%=*}; done) --data $C/test.spacy \
  --batch-size 64 --repeats 3 --rounds 3 --latency-docs 200 --report $OUT/benchmark-distilled-s$SEED.json
for name in "${NAMED[@]}"; do
  step "invariance $name"; python -m spacy bertprod invariance $D/$name-s$SEED-int8 --data $C/test.spacy \
    --n-process 2 --report $OUT/invariance-$name-s$SEED.json
done
step done
