"""A multi-label dataset the size of the one whose workflow was killed (28 labels; 43,410 train /
5,426 dev / 5,427 test texts, JSONL {"text", "labels"}), built from the shipped Banking77 data.

    python reports/scale_memory/multilabel_data.py OUT_FOLDER

Each of Banking77's 77 intents maps to one of 28 labels (intent number mod 28). A record is one
Banking77 text (one label) or, for every second record, two texts joined (the union of their
labels: one or two). Train records come from Banking77's train split, dev and test records from
its test split, so no text is in both. Deterministic (seed 0). Then:

    spacy project run textcat . --vars.run multilabel --vars.textcat_multilabel true \\
        --vars.textcat_train OUT/train.jsonl --vars.textcat_dev OUT/dev.jsonl --vars.textcat_test OUT/test.jsonl
"""

import argparse
import csv
import json
import random
from pathlib import Path
from typing import Dict, List, Tuple

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "banking77"
SIZES = {"train": 43_410, "dev": 5_426, "test": 5_427}
N_LABELS = 28


def labelled(split: str) -> List[Tuple[str, str]]:
    intents = json.loads((DATA / "categories.json").read_text(encoding="utf8"))
    label = {intent: f"L{i % N_LABELS:02d}" for i, intent in enumerate(intents)}
    with (DATA / f"{split}.csv").open(encoding="utf8") as f:
        return [(row["text"], label[row["category"]]) for row in csv.DictReader(f)]


def records(rows: List[Tuple[str, str]], n: int, rng: random.Random) -> List[Dict]:
    out = []
    for i in range(n):
        first = rows[rng.randrange(len(rows))]
        if i % 2 == 0:
            out.append({"text": first[0], "labels": [first[1]]})
            continue
        second = rows[rng.randrange(len(rows))]
        out.append({"text": f"{first[0]} {second[0]}", "labels": sorted({first[1], second[1]})})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", type=Path)
    args = parser.parse_args()
    rng = random.Random(0)
    args.output.mkdir(parents=True, exist_ok=True)
    sources = {"train": labelled("train"), "dev": labelled("test"), "test": labelled("test")}
    for split, n in SIZES.items():
        with (args.output / f"{split}.jsonl").open("w", encoding="utf8") as f:
            for record in records(sources[split], n, rng):
                f.write(json.dumps(record) + "\n")
        print(f"{args.output / split}.jsonl: {n:,} records")


if __name__ == "__main__":
    main()
