"""CoNLL-U treebanks (UD English EWT or any other) -> spaCy Docs, checked line by line first.

Conversion is spaCy's own (`spacy.training.converters.conllu_to_docs`, as `spacy convert` does):
multiword-token ranges (`4-5`) keep their syntactic words as tokens with no space between them,
empty nodes (`8.1`) are left out, `root` becomes `ROOT`. What that converter would crash on or
silently turn into a wrong tree is refused here with FILE:LINE and how to fix it: a line without
10 tab-separated columns, an ID that is not a number, a range or a decimal, IDs out of order, a
HEAD that is not a number or points outside its sentence, a cycle in a sentence's tree, a sentence
without a root.
"""

from pathlib import Path
from typing import Dict, List, Tuple

from spacy.language import Language
from spacy.tokens import Doc, DocBin

from .readers import DataError, ReadStats, read_lines

N_COLUMNS = 10
CONLLU_SUFFIXES = {".conllu", ".conll", ".conllx"}


def _sentences(lines: List[str]) -> List[List[Tuple[int, str]]]:
    """(line number, line) of each sentence's token lines; comments dropped."""
    sentences, current = [], []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            if current:
                sentences.append(current)
            current = []
        elif not line.startswith("#"):
            current.append((number, line))
    if current:
        sentences.append(current)
    return sentences


def _check_sentence(path: Path, sentence: List[Tuple[int, str]]) -> None:
    heads: Dict[int, Tuple[int, int]] = {}  # word id -> (head, line)
    for number, line in sentence:
        parts = line.split("\t")
        if len(parts) != N_COLUMNS:
            raise DataError(
                path, number, f"has {len(parts)} tab-separated columns; CoNLL-U has {N_COLUMNS}.",
                "Separate ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC with tabs ('_' for an empty field).",
            )  # fmt: skip
        id_, head = parts[0], parts[6]
        if "-" in id_ or "." in id_:
            if not all(p.isdigit() for p in id_.replace("-", ".").split(".")):
                raise DataError(path, number, f"has ID '{id_}', neither a range (4-5) nor an empty node (8.1).")
            continue
        if not id_.isdigit() or int(id_) != len(heads) + 1:
            raise DataError(path, number, f"has ID '{id_}' where word {len(heads) + 1} was expected.")
        if not head.isdigit():
            raise DataError(path, number, f"has HEAD '{head}'; a word's HEAD is 0 (the root) or a word ID.")
        heads[int(id_)] = (int(head), number)
    _check_tree(path, heads, sentence[0][0])


def _check_tree(path: Path, heads: Dict[int, Tuple[int, int]], first_line: int) -> None:
    for word, (head, number) in heads.items():
        if head > len(heads):
            raise DataError(path, number, f"has HEAD {head}, but its sentence has {len(heads)} words.")
    if heads and not any(head == 0 for head, _ in heads.values()):
        raise DataError(path, first_line, "starts a sentence with no root (no word has HEAD 0).")
    for word in heads:
        seen, current = set(), word
        while current != 0:
            if current in seen:
                raise DataError(path, heads[word][1], f"is in a cycle of HEADs (word {word} never reaches the root).")
            seen.add(current)
            current = heads[current][0]


def read_conllu(path: Path, nlp: Language, n_sents: int = 10) -> Tuple[List[Doc], ReadStats]:
    """Docs of `n_sents` sentences each (as `spacy convert -n`), in `nlp`'s vocab."""
    from spacy.training.converters import conllu_to_docs

    path = Path(path)
    lines = read_lines(path)
    sentences = _sentences(lines)
    if not sentences:
        raise DataError(path, None, "has no token lines.", "Is it a CoNLL-U file?")
    for sentence in sentences:
        _check_sentence(path, sentence)
    stats = ReadStats(format="CoNLL-U")
    multiword = sum(1 for s in sentences for _, line in s if "-" in line.split("\t", 1)[0])
    empty = sum(1 for s in sentences for _, line in s if "." in line.split("\t", 1)[0])
    if multiword:
        stats.repaired["multiword tokens kept as their words"] = multiword
    if empty:
        stats.skipped["empty nodes (enhanced dependencies only)"] = empty
    docs = list(conllu_to_docs("\n".join(lines), n_sents=n_sents, no_print=True))
    docs = list(DocBin(docs=docs).get_docs(nlp.vocab))  # the converter makes its own vocab
    stats.docs = len(docs)
    return docs, stats


def is_conllu(path: Path) -> bool:
    return Path(path).suffix.lower() in CONLLU_SUFFIXES
