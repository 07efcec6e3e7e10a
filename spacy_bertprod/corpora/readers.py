"""Readers for the labelled-data formats users arrive with, each returning spaCy Docs.

NER: `.spacy`; CoNLL/IOB(2) token-per-line (tab or space separated, tag in the last column,
`-DOCSTART-` lines ignored, BIO/IOB1/BIOES/BILUO tags); JSONL with Prodigy-style
`{"text", "spans": [{"start", "end", "label"}]}` or `{"text", "entities": [[start, end, label]]}`.
Textcat: `.spacy`; JSONL `{"text", "label"}`, `{"text", "labels": [...]}` or `{"text", "cats": {...}}`;
CSV/TSV with a header naming a text column and a label column.

Every problem is a `DataError` naming the file and line and how to fix it. Rows that are skipped
on purpose (Prodigy answers other than "accept", blank texts) are counted in `ReadStats`, never
dropped silently.
"""

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

from spacy.language import Language
from spacy.tokens import Doc, DocBin, Span

from ..errors import InvalidInput

NER_TEXT_SUFFIXES = {".conll", ".conllu", ".iob", ".bio", ".txt", ".tsv", ".annotated", ".tags"}
TEXT_COLUMNS = ("text", "sentence", "utterance", "query")
LABEL_COLUMNS = ("label", "labels", "category", "intent", "class")
MULTI_LABEL_SEPARATOR = "|"


class DataError(InvalidInput):
    """A problem in the user's data, with the file and line where it is."""

    def __init__(self, path: Path, line: Optional[int], problem: str, fix: str = ""):
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {problem}" + (f" {fix}" if fix else ""))


@dataclass
class ReadStats:
    format: str = ""
    docs: int = 0
    skipped: Dict[str, int] = field(default_factory=dict)
    repaired: Dict[str, int] = field(default_factory=dict)

    def skip(self, why: str) -> None:
        self.skipped[why] = self.skipped.get(why, 0) + 1

    def repair(self, what: str) -> None:
        self.repaired[what] = self.repaired.get(what, 0) + 1


def read_lines(path: Path) -> List[str]:
    """Lines of a UTF-8 file; a byte that is not UTF-8 is reported with its line."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, None, "does not exist.", "Check the path given in the project vars.")
    raw = path.read_bytes()
    if not raw.strip():
        raise DataError(path, None, "is empty.", "Point the var at a file with data in it.")
    lines = []
    for number, chunk in enumerate(raw.split(b"\n"), 1):
        try:
            lines.append(chunk.decode("utf8").rstrip("\r"))
        except UnicodeDecodeError as err:
            raise DataError(
                path,
                number,
                f"is not valid UTF-8 (byte {chunk[err.start : err.start + 1]!r} at column {err.start + 1}).",
                "Re-save the file as UTF-8 (e.g. iconv -f latin1 -t utf8).",
            ) from None
    if lines and lines[0].startswith("\ufeff"):
        lines[0] = lines[0][1:]
    return lines


# --- NER -------------------------------------------------------------------------------------


def read_ner(path: Path, nlp: Language) -> Tuple[List[Doc], ReadStats]:
    path = Path(path)
    if path.suffix == ".spacy":
        return _read_docbin(path, nlp, "ner")
    if path.suffix == ".jsonl":
        return _read_ner_jsonl(path, nlp)
    if path.suffix in NER_TEXT_SUFFIXES or not path.suffix:
        return _read_conll(path, nlp)
    raise DataError(
        path,
        None,
        f"has an extension ({path.suffix}) that names no NER format we read.",
        "Use .spacy, CoNLL/IOB token-per-line (.conll, .iob, .bio, .tsv, .txt) or .jsonl with spans.",
    )


def _read_conll(path: Path, nlp: Language) -> Tuple[List[Doc], ReadStats]:
    stats = ReadStats(format="conll")
    docs: List[Doc] = []
    sentence: List[Tuple[str, str, int]] = []
    for number, line in enumerate(read_lines(path) + [""], 1):
        stripped = line.strip()
        if stripped.startswith("-DOCSTART-"):
            continue
        if not stripped:
            if sentence:
                docs.append(_iob_doc(nlp, sentence, path, stats))
            sentence = []
            continue
        parts = stripped.split("\t") if "\t" in stripped else stripped.split()
        if len(parts) < 2:
            raise DataError(
                path,
                number,
                f"expected 'token<TAB>tag' (or space separated), got {line!r}.",
                "Each non-blank line needs a token and its IOB tag; separate sentences with a blank line.",
            )
        sentence.append((parts[0], parts[-1], number))
    if not docs:
        raise DataError(path, None, "holds no sentences.", "CoNLL files need token and tag columns.")
    stats.docs = len(docs)
    return docs, stats


def _iob_doc(nlp: Language, sentence: List[Tuple[str, str, int]], path: Path, stats: ReadStats) -> Doc:
    doc = Doc(nlp.vocab, words=[w for w, _, _ in sentence])
    ents, start, label = [], None, None
    for i, (_, tag, number) in enumerate(sentence + [("", "O", 0)]):
        prefix, _, name = tag.partition("-")
        prefix = prefix.upper()
        if tag == "O" or prefix == "O":
            prefix = "O"
        elif prefix not in {"B", "I", "E", "S", "L", "U"} or not name:
            raise DataError(
                path,
                number,
                f"tag {tag!r} is not an IOB/BIOES tag (B-X, I-X, E-X, S-X, O).",
                "Fix the tag, or convert the file to IOB2.",
            )
        if prefix in {"I", "E", "L"} and name != label:
            stats.repair("I- tag without a B- before it (started an entity, as conlleval does)")
        begins = prefix in {"B", "S", "U"} or (prefix in {"I", "E", "L"} and name != label)
        if start is not None and (prefix == "O" or begins):
            ents.append(Span(doc, start, i, label=label))
            start, label = None, None
        if begins:
            start, label = i, name
        if prefix in {"E", "L", "S", "U"} and start is not None:
            ents.append(Span(doc, start, i + 1, label=label))
            start, label = None, None
    doc.ents = ents
    return doc


def _read_ner_jsonl(path: Path, nlp: Language) -> Tuple[List[Doc], ReadStats]:
    stats = ReadStats(format="jsonl")
    docs = []
    for number, row in _jsonl_rows(path):
        if _skip_prodigy_answer(row, stats):
            continue
        text = _text_field(row, path, number)
        if not text.strip():
            stats.skip("blank text")
            continue
        doc = nlp.make_doc(text)
        raw = row.get("spans", row.get("entities", []))
        if not isinstance(raw, list):
            raise DataError(path, number, "'spans' must be a list of {start, end, label}.")
        spans = []
        for item in raw:
            if isinstance(item, dict):
                start, end, label = item.get("start"), item.get("end"), item.get("label")
            elif isinstance(item, (list, tuple)) and len(item) == 3:
                start, end, label = item
            else:
                raise DataError(
                    path, number, f"span {item!r} is neither {{start, end, label}} nor [start, end, label]."
                )
            if not isinstance(start, int) or not isinstance(end, int) or not isinstance(label, str) or not label:
                raise DataError(path, number, f"span {item!r} needs integer start/end and a label.")
            if not 0 <= start < end <= len(text):
                raise DataError(path, number, f"span {item!r} lies outside the text ({len(text)} characters).")
            span = doc.char_span(start, end, label=label)
            if span is None:
                raise DataError(
                    path,
                    number,
                    f"span {text[start:end]!r} ({start}-{end}, {label}) does not start and end on token boundaries "
                    "of spaCy's tokenizer (tokens: "
                    f"{[t.text for t in doc.char_span(start, end, alignment_mode='expand') or []]}).",
                    "Fix the offsets (no leading/trailing spaces or partial words), or pre-tokenise the data as CoNLL.",
                )
            spans.append(span)
        spans.sort(key=lambda s: (s.start, s.end))
        for a, b in zip(spans, spans[1:]):
            if b.start < a.end:
                raise DataError(
                    path,
                    number,
                    f"spans {a.text!r} ({a.label_}) and {b.text!r} ({b.label_}) overlap.",
                    "Named entities cannot overlap: keep one of them.",
                )
        doc.ents = spans
        docs.append(doc)
    stats.docs = len(docs)
    return docs, stats


# --- Text classification ------------------------------------------------------------------


def read_textcat(path: Path, nlp: Language) -> Tuple[List[Tuple[Doc, List[str]]], ReadStats]:
    """(doc, labels of the doc) pairs; cats are set later, once every label is known."""
    path = Path(path)
    if path.suffix == ".spacy":
        docs, stats = _read_docbin(path, nlp, "textcat")
        return [(d, sorted(k for k, v in d.cats.items() if v >= 0.5)) for d in docs], stats
    if path.suffix == ".jsonl":
        return _read_textcat_jsonl(path, nlp)
    if path.suffix in {".csv", ".tsv"}:
        return _read_textcat_csv(path, nlp)
    raise DataError(
        path,
        None,
        f"has an extension ({path.suffix}) that names no text-classification format we read.",
        'Use .spacy, .jsonl ({"text", "label"} or {"text", "labels"}) or .csv/.tsv with text and label columns.',
    )


def _read_textcat_jsonl(path: Path, nlp: Language):
    stats = ReadStats(format="jsonl")
    rows = []
    for number, row in _jsonl_rows(path):
        if _skip_prodigy_answer(row, stats):
            continue
        text = _text_field(row, path, number)
        if "label" in row:
            labels = [row["label"]]
        elif "labels" in row:
            labels = row["labels"]
        elif "accept" in row:  # Prodigy choice interface
            labels = row["accept"]
        elif "cats" in row and isinstance(row["cats"], dict):
            labels = [k for k, v in row["cats"].items() if v >= 0.5]
        else:
            raise DataError(
                path,
                number,
                f"has no 'label', 'labels' or 'cats' field (fields: {sorted(row)}).",
                'Give each line its class: {"text": ..., "label": ...}.',
            )
        if not isinstance(labels, list) or not all(isinstance(x, str) and x for x in labels):
            raise DataError(path, number, f"labels must be non-empty strings, got {labels!r}.")
        if not text.strip():
            stats.skip("blank text")
            continue
        rows.append((nlp.make_doc(text), sorted(set(labels)), number))
    stats.docs = len(rows)
    return [(doc, labels) for doc, labels, _ in rows], stats


def _read_textcat_csv(path: Path, nlp: Language):
    stats = ReadStats(format="csv" if path.suffix == ".csv" else "tsv")
    text = "\n".join(read_lines(path))
    reader = csv.reader(io.StringIO(text), delimiter="," if path.suffix == ".csv" else "\t")
    header = next(reader, None)
    if not header:
        raise DataError(path, 1, "has no header row.", "The first row must name the columns, e.g. text,label.")
    names = [h.strip().lower() for h in header]
    text_col = next((names.index(c) for c in TEXT_COLUMNS if c in names), None)
    label_col = next((names.index(c) for c in LABEL_COLUMNS if c in names), None)
    if text_col is None:
        raise DataError(
            path, 1, f"has no text column (columns: {header}).", f"Name the text column one of {list(TEXT_COLUMNS)}."
        )
    if label_col is None:
        raise DataError(
            path, 1, f"has no label column (columns: {header}).", f"Name the label column one of {list(LABEL_COLUMNS)}."
        )
    rows = []
    for number, record in enumerate(reader, 2):
        if not any(cell.strip() for cell in record):
            continue
        if len(record) != len(header):
            raise DataError(
                path,
                number,
                f"has {len(record)} fields, the header {len(header)}.",
                "Quote fields that contain the delimiter.",
            )
        value = record[label_col].strip()
        labels = [x.strip() for x in value.split(MULTI_LABEL_SEPARATOR) if x.strip()]
        if not labels:
            raise DataError(
                path, number, "has an empty label.", "Every row needs a label (several: separate them with '|')."
            )
        if not record[text_col].strip():
            stats.skip("blank text")
            continue
        rows.append((nlp.make_doc(record[text_col]), sorted(set(labels))))
    stats.docs = len(rows)
    if not rows:
        raise DataError(path, None, "holds no rows under its header.")
    return rows, stats


# --- Shared -------------------------------------------------------------------------------


def _read_docbin(path: Path, nlp: Language, task: str) -> Tuple[List[Doc], ReadStats]:
    try:
        docs = list(DocBin().from_disk(path).get_docs(nlp.vocab))
    except Exception as err:  # srsly/msgpack errors carry no file name
        raise DataError(path, None, f"is not a readable .spacy DocBin ({type(err).__name__}: {err}).") from None
    if not docs:
        raise DataError(path, None, "holds no docs.")
    if task == "ner" and not any(d.has_annotation("ENT_IOB") for d in docs):
        raise DataError(path, None, "has no entity annotation on any doc.", "Is this a text-classification file?")
    if task == "textcat":
        for i, doc in enumerate(docs, 1):
            if not doc.cats:
                raise DataError(
                    path,
                    None,
                    f"doc {i} ({doc.text[:40]!r}) has no cats.",
                    "Every doc needs doc.cats for text classification.",
                )
    return docs, ReadStats(format="spacy", docs=len(docs))


def _jsonl_rows(path: Path) -> Iterator[Tuple[int, dict]]:
    found = False
    for number, line in enumerate(read_lines(path), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(path, number, f"is not valid JSON ({err.msg} at column {err.colno}).") from None
        if not isinstance(row, dict):
            raise DataError(path, number, "is not a JSON object.")
        found = True
        yield number, row
    if not found:
        raise DataError(path, None, "holds no JSON lines.")


def _text_field(row: dict, path: Path, number: int) -> str:
    text = row.get("text")
    if not isinstance(text, str):
        raise DataError(
            path, number, f"has no 'text' string (fields: {sorted(row)}).", 'Every line needs a "text" field.'
        )
    return text


def _skip_prodigy_answer(row: dict, stats: ReadStats) -> bool:
    answer = row.get("answer")
    if answer is not None and answer != "accept":
        stats.skip(f"Prodigy answer '{answer}'")
        return True
    return False
