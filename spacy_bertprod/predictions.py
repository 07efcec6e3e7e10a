"""What a pipeline predicted on a doc, layer by layer: what compress's parity check and
`invariance` compare, for every head a pipeline can have (not only entities and categories).

Document layers change as a whole (an entity, a span group, a sentence boundary moved); token
layers (tags, POS, morphology, lemmas, dependencies) are also compared token by token, because one
changed arc in a 40-token sentence is not a changed sentence's worth of damage. Entities are also
compared sentence by sentence (the original's sentences): one moved entity in a ten-sentence doc
is one changed sentence, not a changed doc, whatever length the user's docs have.
"""

from typing import Any, Callable, Dict, List, Sequence, Tuple

from spacy.tokens import Doc

# Token layers: spaCy's annotation flag (Doc.has_annotation) and what each token predicts.
TOKEN_LAYERS: Dict[str, Tuple[str, Callable]] = {
    "tags": ("TAG", lambda t: t.tag_),
    "pos": ("POS", lambda t: t.pos_),
    "morphs": ("MORPH", lambda t: str(t.morph)),
    "lemmas": ("LEMMA", lambda t: t.lemma_),
    "deps": ("DEP", lambda t: (t.head.i, t.dep_)),
}


def _ents(doc: Doc) -> List[Tuple[int, int, str]]:
    return [(e.start_char, e.end_char, e.label_) for e in doc.ents]


def _sents(doc: Doc) -> List[int]:
    return [t.i for t in doc if t.is_sent_start] if doc.has_annotation("SENT_START") else []


def _spans(doc: Doc) -> Dict[str, List[Tuple[int, int, str]]]:
    return {key: [(s.start, s.end, s.label_) for s in group] for key, group in sorted(doc.spans.items())}


def doc_layers(doc: Doc) -> Dict[str, Any]:
    """Every layer the doc carries, by name: 'ents', 'sents', 'spans', the token layers; cats apart."""
    layers: Dict[str, Any] = {"ents": _ents(doc), "sents": _sents(doc), "spans": _spans(doc)}
    for name, (flag, value) in TOKEN_LAYERS.items():
        if doc.has_annotation(flag):
            layers[name] = [value(t) for t in doc]
    return layers


def predicted_layers(docs: Sequence[Dict[str, Any]], pipe_names: Sequence[str] = ()) -> List[str]:
    """The layers worth comparing: those any doc (its `doc_layers`) has, or whose component
    exists (ner: a doc without entities is a prediction too)."""
    found = {name for layers in docs for name, value in layers.items() if value}
    if "ner" in pipe_names:
        found.add("ents")
    return sorted(found)


def layer_agreement(before: Sequence[Doc], after: Sequence[Doc], pipe_names: Sequence[str] = ()) -> Dict[str, float]:
    """Per layer the original predicts: the share of docs with identical predictions, and for token
    layers the share of tokens (over all docs) with identical predictions."""
    result: Dict[str, float] = {}
    pairs = [(doc_layers(a), doc_layers(b)) for a, b in zip(before, after)]
    for layer in predicted_layers([a for a, _ in pairs], pipe_names):
        same = [a.get(layer) == b.get(layer) for a, b in pairs]
        result[f"{_key(layer)}_identical_docs"] = sum(same) / len(same) if same else 1.0
        if layer == "ents":
            result["ner_identical_sentences"] = _sentences_with_same_ents(before, after)
        if layer in TOKEN_LAYERS:
            tokens = [(x, y) for a, b in pairs for x, y in zip(a.get(layer, []), b.get(layer, []))]
            result[f"{layer}_identical_tokens"] = sum(x == y for x, y in tokens) / len(tokens) if tokens else 1.0
    return result


def _sentences_with_same_ents(before: Sequence[Doc], after: Sequence[Doc]) -> float:
    """Share of the original's sentences (a doc without sentence boundaries: the doc) whose entities
    are identical in both."""
    same = []
    for a, b in zip(before, after):
        ents_a, ents_b = _ents(a), _ents(b)
        ranges = [(s.start_char, s.end_char) for s in a.sents] if a.has_annotation("SENT_START") else [(0, len(a.text))]
        for start, end in ranges:
            same.append([e for e in ents_a if start <= e[0] < end] == [e for e in ents_b if start <= e[0] < end])
    return sum(same) / len(same) if same else 1.0


def _key(layer: str) -> str:
    return "ner" if layer == "ents" else layer
