"""Convert a CoNLL-style NER file (token<TAB>IOB tag, blank line between sentences) to .spacy.

Usage: python scripts/convert_conll.py IN.conll OUT.spacy [--limit N]
Tags are IOB (B-x / I-x / O); an I- tag without a preceding B- starts an entity, as in conlleval.
"""
import argparse
import sys
from pathlib import Path
from typing import List, Tuple

import spacy
from spacy.tokens import DocBin, Span


def read_sentences(path: Path) -> List[List[Tuple[str, str]]]:
    sentences, current = [], []
    for number, line in enumerate(path.read_text(encoding="utf8").splitlines(), 1):
        if not line.strip():
            if current:
                sentences.append(current)
            current = []
            continue
        parts = line.split("\t")
        if len(parts) < 2:
            raise ValueError(f"{path}:{number}: expected 'token<TAB>tag', got {line!r}")
        token, tag = parts[0], parts[-1].strip()
        if tag != "O" and not tag.startswith(("B-", "I-")):
            raise ValueError(f"{path}:{number}: tag {tag!r} is not IOB (B-x, I-x or O)")
        current.append((token, tag))
    if current:
        sentences.append(current)
    return sentences


def to_doc(nlp, sentence):
    words = [w for w, _ in sentence]
    doc = spacy.tokens.Doc(nlp.vocab, words=words)
    ents, start, label = [], None, None
    for i, (_, tag) in enumerate(sentence + [("", "O")]):
        begins = tag.startswith("B-") or (tag.startswith("I-") and tag[2:] != label)
        if start is not None and (tag == "O" or begins):
            ents.append(Span(doc, start, i, label=label))
            start, label = None, None
        if begins:
            start, label = i, tag[2:]
    doc.ents = ents
    return doc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("input", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--limit", type=int, default=0, help="Keep only the first N sentences (0: all)")
    args = parser.parse_args()
    nlp = spacy.blank("en")
    sentences = read_sentences(args.input)
    if args.limit:
        sentences = sentences[: args.limit]
    docs = [to_doc(nlp, s) for s in sentences]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    DocBin(docs=docs).to_disk(args.output)
    n_ents = sum(len(d.ents) for d in docs)
    print(f"{args.input} -> {args.output}: {len(docs)} sentences, {n_ents} entities")
    return 0


if __name__ == "__main__":
    sys.exit(main())
