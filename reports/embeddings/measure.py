"""Sentence embeddings: fidelity, STS-B quality and speed of `bertprod embedder` pipelines.

    python reports/embeddings/measure.py MODEL_DIR STSB_TEST.csv OUT.json PIPELINE [PIPELINE ...]

MODEL_DIR is the sentence-transformers folder the pipelines were built from. For each pipeline and
for sentence-transformers itself (the reference: `SentenceTransformer(MODEL_DIR).encode`):
- fidelity: cosine of doc.vector to the reference embedding on every distinct STS-B sentence;
- quality: Spearman x 100 between the cosine of each pair's vectors and the gold score;
- speed: sentences/s over the same `--speed-sentences` sentences, same batch size, each in its own
  process (this script re-runs itself with --speed), best of `--repeats` passes after a warm-up.
"""

import argparse
import csv
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy


def read_stsb(path: Path):
    with open(path, newline="", encoding="utf8") as f:
        rows = [(a, b, float(score)) for a, b, score in csv.reader(f)]
    sentences = sorted({s for a, b, _ in rows for s in (a, b)})
    return rows, sentences


def encode(kind: str, path: str, sentences, batch_size: int):
    """Vectors, one row per sentence, from sentence-transformers ('st') or a spaCy pipeline."""
    if kind == "st":
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(path, device="cpu")
        return lambda texts: model.encode(texts, batch_size=batch_size, convert_to_numpy=True)
    import spacy

    nlp = spacy.load(path)
    return lambda texts: numpy.stack([d.vector for d in nlp.pipe(texts, batch_size=batch_size)])


def speed(kind: str, path: str, sentences, batch_size: int, repeats: int) -> dict:
    run = encode(kind, path, sentences, batch_size)
    run(sentences[:256])  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run(sentences)
        times.append(time.perf_counter() - started)
    return {"sentences_per_s": len(sentences) / min(times), "seconds": times}


def spearman(a, b) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).correlation)


def quality(vectors: numpy.ndarray, sentences, rows, reference: numpy.ndarray) -> dict:
    index = {s: i for i, s in enumerate(sentences)}
    unit = vectors / numpy.maximum(numpy.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    ref = reference / numpy.maximum(numpy.linalg.norm(reference, axis=1, keepdims=True), 1e-12)
    fidelity = (unit * ref).sum(1)
    pair_cos = [float(unit[index[a]] @ unit[index[b]]) for a, b, _ in rows]
    return {
        "stsb_spearman_x100": 100 * spearman(pair_cos, [score for _, _, score in rows]),
        "cosine_to_reference_mean": float(fidelity.mean()),
        "cosine_to_reference_min": float(fidelity.min()),
        "n_sentences": len(sentences),
        "n_pairs": len(rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model_dir")
    parser.add_argument("stsb", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("pipelines", nargs="*")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--speed-sentences", type=int, default=1000, help="Sentences timed (a fixed random subset)")
    parser.add_argument(
        "--no-speed", action="store_true", help="Fidelity and quality only (e.g. while the CPU is busy)"
    )
    parser.add_argument("--speed", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    rows, sentences = read_stsb(args.stsb)
    if args.speed:
        timed = sorted(sentences, key=lambda s: hashlib.sha256(s.encode()).hexdigest())[: args.speed_sentences]
        print(json.dumps(speed(*args.speed, timed, args.batch_size, args.repeats)))
        return
    results = {
        "model_dir": args.model_dir,
        "batch_size": args.batch_size,
        "threads": os.cpu_count(),
        "speed_sentences": min(args.speed_sentences, len(sentences)),
        "runs": {},
    }
    reference = encode("st", args.model_dir, sentences, args.batch_size)(sentences)
    for kind, path in [("st", args.model_dir)] + [("spacy", p) for p in args.pipelines]:
        vectors = reference if kind == "st" else encode(kind, path, sentences, args.batch_size)(sentences)
        entry = quality(vectors, sentences, rows, reference)
        results["runs"]["sentence-transformers" if kind == "st" else path] = entry
        print(path, json.dumps(entry), flush=True)
        if args.no_speed:
            continue
        out = subprocess.run(
            [sys.executable, __file__, args.model_dir, str(args.stsb), str(args.out), "--speed", kind, path,
             "--batch-size", str(args.batch_size), "--repeats", str(args.repeats),
             "--speed-sentences", str(args.speed_sentences)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        entry.update(json.loads(out.stdout.strip().splitlines()[-1]))
        print(path, f"{entry['sentences_per_s']:.1f} sentences/s", flush=True)
    if not args.no_speed:
        base = results["runs"]["sentence-transformers"]["sentences_per_s"]
        for entry in results["runs"].values():
            entry["speed_vs_sentence_transformers"] = entry["sentences_per_s"] / base
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
