"""Search a word-retention schedule on dev for a trained bertprod textcat pipeline (torch, no retraining).

    python reports/word_elimination/search.py PIPELINE DEV.spacy [--keep 0.9 0.8 ...] [--out search.json]

For each keep rate k, the geometric schedule 1, k, k^2, ... (word_elimination.geometric_retention)
is applied to the pipeline's encoder at inference only, and the pipeline is scored on the dev docs
with spaCy's own scorer (cats_score, the metric `spacy evaluate` reports for textcat). The share of
layer work left is counted on the dev docs' own wordpiece lengths, as the graph would keep them.
"""

import argparse
import json
import math
import time
from pathlib import Path

import spacy
from spacy.tokens import DocBin
from spacy.training import Example

from spacy_bertprod.backends.torch import hf_module
from spacy_bertprod.word_elimination import eliminate_word_vectors, geometric_retention


def _work_share(lengths, shares) -> float:
    """Vectors run through the layers with the schedule, over those without it."""
    kept = sum(min(n, max(1, math.ceil(n * s))) for n in lengths for s in shares)
    return kept / (len(shares) * sum(lengths))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("pipeline")
    parser.add_argument("dev")
    parser.add_argument("--keep", type=float, nargs="+", default=[1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    parser.add_argument("--out")
    args = parser.parse_args()
    nlp = spacy.load(args.pipeline)
    trf = nlp.get_pipe("transformer")
    module = hf_module(trf.encoder)
    n_layers = int(module.config.num_hidden_layers)
    docs = list(DocBin().from_disk(args.dev).get_docs(nlp.vocab))
    examples = [Example(nlp.make_doc(doc.text), doc) for doc in docs]
    tokenizer = trf.tokenizer
    lengths = [len(p.ids) for pieces in tokenizer.encode_spans([nlp.make_doc(d.text)[:] for d in docs]) for p in pieces]
    rows = []
    for keep in args.keep:
        shares = geometric_retention(n_layers, keep)
        eliminate_word_vectors(module, shares)
        start = time.perf_counter()
        scores = nlp.evaluate(examples)
        rows.append(
            {
                "keep": keep,
                "shares": shares,
                "dev_cats_score": round(100 * scores["cats_score"], 2),
                "layer_work_share": round(_work_share(lengths, shares), 4),
                "seconds": round(time.perf_counter() - start, 1),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps({"pipeline": args.pipeline, "dev": args.dev, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
