#!/usr/bin/env bash
# The README's compress example without --sample, as a new user runs it, in both situations:
#   with_dev: from the project root, where the pipeline's [paths] dev still exists
#   built_in: the same pipeline copied somewhere its corpora cannot be found
# then `spacy evaluate` and `bertprod invariance` of each on TEST (and of the original).
#
#   bash reports/int8_default/readme_command.sh PIPELINE TEST.spacy OUT_DIR WORK_DIR
# WORK_DIR must lie outside the project: compress looks for the corpora in every folder above the copy.
set -euo pipefail
[ $# -eq 4 ] || { echo "usage: $0 PIPELINE TEST.spacy OUT_DIR WORK_DIR" >&2; exit 2; }
SRC=$(realpath "$1"); TEST=$(realpath "$2"); mkdir -p "$3" "$4"; OUT=$(realpath "$3"); W=$(realpath "$4")
python -m spacy bertprod compress "$SRC" "$W/with_dev" --quantize int8 --force > "$W/with_dev.log" 2>&1
rm -rf "$W/elsewhere" && mkdir -p "$W/elsewhere" && cp -r "$SRC" "$W/elsewhere/model-best"
(cd "$W/elsewhere" && python -m spacy bertprod compress model-best "$W/built_in" --quantize int8 --force) > "$W/built_in.log" 2>&1
python -m spacy evaluate "$SRC" "$TEST" --output "$OUT/eval-original.json" > /dev/null
for v in with_dev built_in; do
  python -c "import json, sys; r = json.load(open(sys.argv[1])); print(json.dumps({'calibration': r['settings']['calibration'], 'agreement_check': r['parity']['agreement_check']}, indent=2))" "$W/$v/compress_report.json" > "$OUT/compress-$v.json"
  python -m spacy evaluate "$W/$v" "$TEST" --output "$OUT/eval-$v.json" > /dev/null
  (cd "$W" && python -m spacy bertprod invariance "$v" --data "$TEST" --batch-sizes 1,16,64,256 --n-process 2 --report "$OUT/invariance-$v.json") > /dev/null
done
grep -h '"kind"\|"source"\|"passed"' "$OUT"/compress-*.json
