# Sourced by the 2-layer NER student scripts here: the MiniLM-L6 WNUT-17 teacher of the `full`
# workflow, its int8 copy, the transfer set it labels and the 2-layer student's initialisation
# (the teacher's first two layers). Each stage runs once: a later script must not retrain the
# teacher because configs/ner.cfg gained a setting since (spacy project reruns changed steps).
step() { echo "=== $(date -u +%H:%M:%S) $*"; }
V="--vars.run full --vars.mixed_precision true"
T=training/full/ner
E=training/exp/ner2
if [ ! -d $T/teacher/model-best ]; then
  step data;     python -m spacy project run assets .
                 python -m spacy project run teacher-model .
                 python -m spacy project run ner-data . $V
  step teacher;  python -m spacy project run ner-teacher . $V
fi
[ -d $T/teacher-onnx-int8 ] || { step teacher-compress; python -m spacy project run ner-teacher-compress . $V; }
[ -e corpus/full/ner/distill/_job.json ] || { step transfer; python -m spacy project run ner-transfer . $V; }
[ -d $E/init ] || python -m spacy bertprod make-student $T/teacher/model-best $E/init --layers 2 --pick bottom
mkdir -p $E
