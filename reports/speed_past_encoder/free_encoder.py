"""How fast could this ONNX pipeline be with an encoder that cost nothing?

    python reports/speed_past_encoder/free_encoder.py PIPELINE --data test.spacy [--report out.json]

Times `nlp.pipe` over the texts twice in one process, interleaved over rounds: as shipped, and
with the ONNX session's run replaced by zeros of the shapes it returns (hidden states and any
in-graph head scores), so everything else (spaCy's tokenizer, wordpiece tokenization, alignment,
bucketing, heads, set_annotations) runs exactly as before. The second figure is the ceiling that
no smaller, narrower or sparser encoder can pass: the spaCy-side work alone. `bertprod benchmark`'s
bare-session figure is the complement (the encoder alone).
"""

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy
import spacy
from spacy.tokens import DocBin

from spacy_bertprod.backends.onnx import OnnxSession


def free_run(real_run):
    """A stand-in for OnnxSession.run_outputs: zeros shaped like the real outputs (learned on the first call)."""
    trailing = {}

    def run_outputs(self, batch, names):
        if not trailing:
            for name, out in zip(names, real_run(self, batch, names)):
                trailing[name] = out.shape[2:] if name == "last_hidden_state" else out.shape[1:]
        rows, length = batch.input_ids.shape
        return [
            numpy.zeros((rows, length, *trailing[n]) if n == "last_hidden_state" else (rows, *trailing[n]), "float32")
            for n in names
        ]

    return run_outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pipeline", type=Path)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--report", type=Path)
    args = parser.parse_args()
    nlp = spacy.load(args.pipeline)
    texts = [doc.text for doc in DocBin().from_disk(args.data).get_docs(nlp.vocab)]
    n_words = sum(len(nlp.make_doc(t)) for t in texts)
    real, free = OnnxSession.run_outputs, free_run(OnnxSession.run_outputs)
    seconds = {"shipped": [], "free encoder": []}
    for mode, run in (("shipped", real), ("free encoder", free)):  # warm-up
        OnnxSession.run_outputs = run
        list(nlp.pipe(texts[:500], batch_size=args.batch_size))
    for _ in range(args.rounds):
        for mode, run in (("shipped", real), ("free encoder", free)):
            OnnxSession.run_outputs = run
            start = time.perf_counter()
            list(nlp.pipe(texts, batch_size=args.batch_size))
            seconds[mode].append(time.perf_counter() - start)
    OnnxSession.run_outputs = real
    result = {
        "pipeline": str(args.pipeline),
        "texts": len(texts),
        "words": n_words,
        **{mode: {"words_per_s": n_words / statistics.median(s), "seconds": s} for mode, s in seconds.items()},
    }
    for mode in seconds:
        print(f"{mode:14s} {result[mode]['words_per_s']:>10,.0f} words/s")
    if args.report:
        args.report.write_text(json.dumps(result, indent=2), encoding="utf8")


if __name__ == "__main__":
    main()
