"""`spacy evaluate` for many pipelines and splits in one process (one interpreter start, not dozens).

    python scripts/evaluate.py CORPUS_DIR METRICS_DIR FOLDER=NAME ... [--splits dev,test]

Writes METRICS_DIR/<split>/<NAME>.json exactly as `python -m spacy evaluate FOLDER
CORPUS_DIR/<split>.spacy --output ...` does: it calls the same function.
"""

import argparse
import sys
from pathlib import Path

from spacy.cli.evaluate import evaluate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("corpus", type=Path)
    parser.add_argument("metrics", type=Path)
    parser.add_argument("pipelines", nargs="+", help="FOLDER=NAME pairs")
    parser.add_argument("--splits", default="dev,test")
    args = parser.parse_args()
    pairs = []
    for item in args.pipelines:
        folder, sep, name = item.rpartition("=")
        if not sep or not folder or not name:
            parser.error(f"expected FOLDER=NAME, got {item!r}")
        if not Path(folder).exists():
            parser.error(f"pipeline folder {folder} does not exist")
        pairs.append((folder, name))
    jobs = [(split, folder, name) for split in args.splits.split(",") if split for folder, name in pairs]
    for number, (split, folder, name) in enumerate(jobs, 1):
        output = args.metrics / split / f"{name}.json"
        output.parent.mkdir(parents=True, exist_ok=True)
        print(f"== [{number}/{len(jobs)}] {name} on {split}", flush=True)
        # A split is CORPUS_DIR/<split>.spacy, or a folder of .spacy files (the multi-task corpus)
        data = args.corpus / split if (args.corpus / split).is_dir() else args.corpus / f"{split}.spacy"
        evaluate(folder, data, output=output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
