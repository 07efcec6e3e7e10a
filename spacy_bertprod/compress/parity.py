"""How much the compressed encoder and pipeline agree with the original, on sample texts."""

import itertools
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Union

import numpy
from spacy.language import Language
from spacy.tokens import Doc

from ..backends.onnx import OnnxSession
from ..predictions import doc_layers, layer_agreement
from ..progress import progress
from ..streaming import chunked
from ..tokenization import WordpieceTokenizer
from ..transformer_model import encoder_batches

# compress warns when int8 changes the predictions of more than this share of the sample's docs.
MAX_CHANGED_SHARE = 0.10
# ... and tries its other int8 graphs (min/max ranges, smoothed activations) when the first changes
# more than this share: a graph that passes the warning level can still move a classifier's
# decisions on one doc in twelve, and the sample, not the order of the attempts, should decide.
FALLBACK_CHANGED_SHARE = 0.02
# A textcat decision the original made by less than this (top label vs the runner-up, or a score
# this close to 0.5) is a tie, not a prediction int8 can break: on text far from the training
# data a classifier's scores are near-ties, and any noise flips them.
TIE_MARGIN = 0.05
# `invariance` compares this many texts at a time (memory: their predictions, five times over).
INVARIANCE_CHUNK = 4096
# A doc's sentence vector counts as kept when its cosine to the original's is at least this.
VECTOR_COSINE_KEPT = 0.99


def encoder_parity(
    module, reference: OnnxSession, candidate: OnnxSession, tokenizer: WordpieceTokenizer, docs: Sequence[Doc]
) -> Dict[str, float]:
    """Compare hidden states of torch, an ONNX fp32 model and a candidate on the same batches."""
    import torch

    from .export import encoder_input_names

    spans = [doc[:] for doc in docs if len(doc)]
    names = encoder_input_names(module)
    module.eval()
    max_abs_fp32, cosines_fp32, cosines = 0.0, [], []
    n_wordpieces = 0
    for batch in encoder_batches(tokenizer, spans):
        n_wordpieces += int(batch.attention_mask.sum())
        with torch.no_grad():
            feeds = {
                "input_ids": torch.from_numpy(batch.input_ids),
                "attention_mask": torch.from_numpy(batch.attention_mask),
            }
            if "token_type_ids" in names:
                feeds["token_type_ids"] = torch.zeros_like(feeds["input_ids"])
            expected = module(**feeds).last_hidden_state.float().numpy()
        mask = batch.attention_mask.astype(bool)
        ref = reference.run(batch)[mask]
        cand = candidate.run(batch)[mask]
        exp = expected[mask]
        max_abs_fp32 = max(max_abs_fp32, float(numpy.abs(ref - exp).max()))
        cosines_fp32.extend(_cosine(ref, exp))
        cosines.extend(_cosine(cand, exp))
    return {
        "n_docs": len(spans),
        "n_wordpieces": n_wordpieces,
        "fp32_max_abs_diff_vs_torch": max_abs_fp32,
        "fp32_mean_cosine_vs_torch": float(numpy.mean(cosines_fp32)) if cosines_fp32 else 1.0,
        "output_mean_cosine_vs_torch": float(numpy.mean(cosines)) if cosines else 1.0,
    }


def _cosine(a: numpy.ndarray, b: numpy.ndarray) -> List[float]:
    denom = numpy.linalg.norm(a, axis=-1) * numpy.linalg.norm(b, axis=-1)
    return list((a * b).sum(-1) / numpy.maximum(denom, 1e-12))


def prediction_agreement(original: Language, compressed: Language, texts: Sequence[str]) -> Dict[str, float]:
    """Share of docs whose predictions are identical, per annotation layer (entities, span groups,
    sentences, tags, POS, morphology, lemmas, dependencies: predictions.py), and for token layers
    the share of tokens; for categories, the decisions and the largest score difference."""
    before = list(original.pipe(texts))
    after = list(compressed.pipe(texts))
    result: Dict[str, float] = {"n_docs": len(texts)}
    result.update(layer_agreement(before, after, original.pipe_names))
    if any(d.cats for d in before):
        same_top = [max(a.cats, key=a.cats.get) == max(b.cats, key=b.cats.get) for a, b in zip(before, after)]
        same_set = [_over(a.cats) == _over(b.cats) for a, b in zip(before, after)]
        diffs = [abs(a.cats[k] - b.cats[k]) for a, b in zip(before, after) for k in a.cats]
        result["textcat_identical_top_label"] = float(numpy.mean(same_top))
        result["textcat_identical_labels_over_0.5"] = float(numpy.mean(same_set))
        result["textcat_max_abs_score_diff"] = float(max(diffs))
        result["textcat_identical_decisions"] = float(
            numpy.mean([decisions_kept(a.cats, b.cats) for a, b in zip(before, after)])
        )
    result.update(vector_agreement(before, after))
    return result


def vector_agreement(before: Sequence[Doc], after: Sequence[Doc]) -> Dict[str, float]:
    """Cosine of each doc's sentence vector (doc.vector) to the original's, where both have one."""
    pairs = [(a, b) for a, b in zip(before, after) if "vector" in a.user_hooks and a.vector_norm > 0]
    if not pairs:
        return {}
    cosines = numpy.asarray([a.similarity(b) for a, b in pairs])
    return {
        "sentence_vector_mean_cosine": float(cosines.mean()),
        "sentence_vector_min_cosine": float(cosines.min()),
        "sentence_vector_kept_docs": float((cosines >= VECTOR_COSINE_KEPT).mean()),
    }


def decisions_kept(original: Dict[str, float], compressed: Dict[str, float]) -> bool:
    """Same top label and the same labels over 0.5, except where the original's were ties."""
    ranked = sorted(original.values(), reverse=True)
    top_decided = len(ranked) < 2 or ranked[0] - ranked[1] >= TIE_MARGIN
    if top_decided and max(original, key=original.get) != max(compressed, key=compressed.get):
        return False
    decided = [label for label, score in original.items() if abs(score - 0.5) >= TIE_MARGIN]
    return all((original[label] >= 0.5) == (compressed[label] >= 0.5) for label in decided)


def agreement_check(predictions: Dict[str, float], sample, max_changed: float = MAX_CHANGED_SHARE) -> Dict:
    """Did the compressed pipeline keep the original's predictions on (nearly) every sample doc?

    The changed share is the largest over the annotation layers: for entities the share of the
    original's sentences where any changed (of docs where only that is known); for span groups the
    share of docs where any changed; for textcat the docs whose top label or set of labels over 0.5
    changed, where the original's scores were not ties (TIE_MARGIN); for token layers (tags,
    morphology, lemmas, dependencies) the share of tokens; for a pipeline without heads (an
    embedder) the docs whose sentence vector's cosine to the original's is under VECTOR_COSINE_KEPT.
    """
    keys = [key for key in predictions if key in _AGREEMENT_KEYS or key.endswith("_identical_tokens")]
    if "ner_identical_sentences" in keys:  # per sentence: a long doc's one moved entity is not a changed doc
        keys = [key for key in keys if key != "ner_identical_docs"]
    if not keys and "sentence_vector_kept_docs" in predictions:  # an embedder: its vectors are its predictions
        keys = ["sentence_vector_kept_docs"]
    shares = {key: 1.0 - predictions[key] for key in keys}
    worst = max(shares, key=shares.get) if shares else None
    changed = shares[worst] if worst else 0.0
    result = {"changed_share": changed, "max_changed_share": max_changed, "passed": changed <= max_changed}
    if worst and len(shares) > 1:
        result["changed_most"] = worst
    if not result["passed"]:
        n = int(predictions["n_docs"])
        fix = (
            "pass a few hundred in-domain texts, e.g. --sample your_dev.spacy"
            if not sample.in_domain
            else "check --calibration-percentile, try --per-tensor or --exclude-nodes, or --quantize fp32"
        )
        what = (
            f"the {worst.split('_')[0]} of {changed:.0%} of the tokens of the {n:,} sample docs"
            if worst.endswith("_identical_tokens")
            else f"the entities of {changed:.0%} of the sentences of the {n:,} sample docs"
            if worst == "ner_identical_sentences"
            else f"the predictions of {changed:.0%} of the {n:,} sample docs"
        )
        result["message"] = (
            f"The compressed pipeline changes {what} "
            f"(more than {max_changed:.0%}; calibrated on {sample.source}). Its accuracy may have dropped: {fix}, "
            "and compare with `spacy evaluate` on your dev set."
        )
    return result


_AGREEMENT_KEYS = (
    "ner_identical_sentences", "ner_identical_docs", "spans_identical_docs", "textcat_identical_decisions",
)  # fmt: skip


def _over(cats: Dict[str, float]):
    return sorted(k for k, v in cats.items() if v >= 0.5)


def _prediction(doc: Doc):
    return doc_layers(doc), dict(doc.cats)


def _same(a, b, cats_tolerance: float) -> bool:
    if a[0] != b[0] or a[1].keys() != b[1].keys():
        return False
    return all(abs(a[1][k] - b[1][k]) <= cats_tolerance for k in a[1])


def batch_invariance(
    nlp: Language,
    texts: Union[Sequence[str], Callable[[], Iterable[str]]],
    batch_sizes: Sequence[int] = (64,),
    n_process: int = 1,
    cats_tolerance: float = 1e-4,
    seed: int = 0,
    chunk_size: int = INVARIANCE_CHUNK,
    total: Optional[int] = None,
) -> Dict[str, float]:
    """Share of docs whose predictions (every layer of predictions.py; cats within `cats_tolerance`) equal the ones
    they get alone (`nlp(text)`): in `nlp.pipe` at each batch size, in a shuffled order, and
    (n_process > 1) in worker processes.

    `texts` is a list, or a function that returns a fresh iterator over them (a file read again),
    which keeps memory flat however many texts there are: they are compared `chunk_size` at a
    time (shuffled within the chunk), and the worker processes read their own pass of the texts.
    """
    sizes = list(batch_sizes)
    size = max(sizes)
    stream = texts if callable(texts) else lambda: texts
    keys = [f"identical_batch_{s}" for s in sizes] + [f"identical_shuffled_batch_{size}"]
    workers = None
    if n_process > 1:
        keys.append(f"identical_n_process_{n_process}")
        workers = iter(nlp.pipe(stream(), batch_size=size, n_process=n_process))
    same = dict.fromkeys(keys, 0)
    rng = numpy.random.default_rng(seed)
    n = 0
    for chunk in chunked(progress(stream(), desc="invariance", unit="text", total=total), chunk_size):
        with nlp.memory_zone():  # the chunk's strings and lexemes are freed after it
            compared, alone = _compare_chunk(nlp, chunk, sizes, rng, workers)
        for key, predictions in zip(keys, compared):
            same[key] += sum(_same(a, b, cats_tolerance) for a, b in zip(predictions, alone))
        n += len(chunk)
    result: Dict[str, float] = {"n_docs": n, "cats_tolerance": cats_tolerance}
    result.update({key: same[key] / n if n else 1.0 for key in keys})
    result["identical_all"] = min(result[key] for key in keys)
    return result


def _compare_chunk(nlp: Language, chunk: List[str], sizes: List[int], rng, workers):
    """The chunk's predictions alone, and in each of the other ways (batch sizes, shuffled, workers)."""
    size = max(sizes)
    alone = [_prediction(nlp(t)) for t in chunk]
    compared = [[_prediction(d) for d in nlp.pipe(chunk, batch_size=s)] for s in sizes]
    order = rng.permutation(len(chunk))
    shuffled: List = [None] * len(chunk)
    for i, doc in zip(order, nlp.pipe([chunk[i] for i in order], batch_size=size)):
        shuffled[i] = _prediction(doc)
    compared.append(shuffled)
    if workers is not None:
        compared.append([_prediction(d) for d in itertools.islice(workers, len(chunk))])
    return compared, alone
