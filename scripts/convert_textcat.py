"""Convert a text,category CSV (Banking77 layout) to .spacy docs with one-hot `cats`.

    python scripts/convert_textcat.py TRAIN.csv TEST.csv OUT_DIR [--dev-share 0.1] [--seed 0] [--limit N]

The dataset has no dev split, so a fixed, stratified share of each label's training rows becomes
dev (same seed -> same split). Writes train.spacy, dev.spacy, test.spacy and labels.json.
"""
import argparse
import csv
import json
import random
import sys
from collections import defaultdict
from pathlib import Path
from typing import List, Tuple

import spacy
from spacy.tokens import DocBin


def read_rows(path: Path) -> List[Tuple[str, str]]:
    with path.open(newline="", encoding="utf8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"text", "category"} <= set(reader.fieldnames):
            raise ValueError(f"{path} needs 'text' and 'category' columns, has {reader.fieldnames}")
        return [(row["text"], row["category"]) for row in reader]


def stratified_split(rows, share: float, seed: int):
    by_label = defaultdict(list)
    for row in rows:
        by_label[row[1]].append(row)
    rng = random.Random(seed)
    train, dev = [], []
    for label in sorted(by_label):
        items = by_label[label][:]
        rng.shuffle(items)
        n_dev = max(1, round(len(items) * share))
        dev += items[:n_dev]
        train += items[n_dev:]
    rng.shuffle(train)
    return train, dev


def limit_stratified(rows, limit: int, seed: int):
    """Keep about `limit` rows with every label represented (for smoke runs)."""
    if not limit or limit >= len(rows):
        return rows
    kept, _ = stratified_split(rows, 1 - limit / len(rows), seed)
    return kept


def write(rows, labels, path: Path, nlp) -> None:
    db = DocBin()
    for text, label in rows:
        doc = nlp.make_doc(text)
        doc.cats = {name: float(name == label) for name in labels}
        db.add(doc)
    db.to_disk(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("train", type=Path)
    parser.add_argument("test", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--dev-share", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=0, help="Keep about N training and N/4 dev/test rows (0: all)")
    args = parser.parse_args()
    train_rows, test_rows = read_rows(args.train), read_rows(args.test)
    labels = sorted({label for _, label in train_rows})
    unknown = sorted({label for _, label in test_rows} - set(labels))
    if unknown:
        raise ValueError(f"{args.test} has labels missing from {args.train}: {unknown}")
    train, dev = stratified_split(train_rows, args.dev_share, args.seed)
    if args.limit:
        train = limit_stratified(train, args.limit, args.seed)
        dev = limit_stratified(dev, max(args.limit // 4, len(labels)), args.seed)
        test_rows = limit_stratified(test_rows, max(args.limit // 4, len(labels)), args.seed)
    nlp = spacy.blank("en")
    args.output.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train", train), ("dev", dev), ("test", test_rows)):
        write(rows, labels, args.output / f"{name}.spacy", nlp)
        print(f"{name}: {len(rows)} docs")
    (args.output / "labels.json").write_text(json.dumps(labels), encoding="utf8")
    print(f"{len(labels)} labels -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
