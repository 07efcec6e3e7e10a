"""Stream many docs through a pipeline and report memory over time (bounded memory check).

    python scripts/stress.py PIPELINE [--docs 20000] [--batch-size 64] [--output stress.json]

Texts mix tweet-length sentences, empty strings, long paragraphs, emoji/CJK/RTL and control
characters, so every code path runs. RSS is sampled every 1,000 docs; after a warm-up of 2,000
docs the growth should stay small (no unbounded caches).
"""
import argparse
import json
import random
import time

import psutil
import spacy

PIECES = ["Alice flew to Paris", "my card was declined at the ATM", "😀🎉 東京 مرحبا", "\x00\x07 ctrl",
          "New York-based co-founders", "e\u0301\u200d", "https://example.com/a?b=c", ""]


def make_text(rng: random.Random, i: int) -> str:
    kind = i % 100
    if kind == 0:
        return ""
    if kind == 1:
        return " ".join(rng.choice(PIECES) for _ in range(400))  # long paragraph
    return f"{rng.choice(PIECES)} {i} {rng.choice(PIECES)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("pipeline")
    parser.add_argument("--docs", type=int, default=20000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--output")
    args = parser.parse_args()
    nlp = spacy.load(args.pipeline)
    rng = random.Random(0)
    process = psutil.Process()
    samples = []
    start = time.perf_counter()
    texts = (make_text(rng, i) for i in range(args.docs))
    for n, doc in enumerate(nlp.pipe(texts, batch_size=args.batch_size), 1):
        if n % 1000 == 0:
            samples.append({"docs": n, "rss_mb": process.memory_info().rss / 1e6, "seconds": time.perf_counter() - start})
            print(samples[-1], flush=True)
    after_warmup = [s for s in samples if s["docs"] >= 2000]
    result = {
        "pipeline": args.pipeline,
        "docs": args.docs,
        "samples": samples,
        "rss_growth_after_warmup_mb": after_warmup[-1]["rss_mb"] - after_warmup[0]["rss_mb"] if after_warmup else None,
        "peak_rss_mb": max(s["rss_mb"] for s in samples) if samples else None,
    }
    print(json.dumps({k: v for k, v in result.items() if k != "samples"}, indent=2))
    if args.output:
        with open(args.output, "w", encoding="utf8") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
