"""Seconds per training step of a spaCy config, on its own training corpus and batcher.

    python reports/step_time/step_time.py CONFIG [--steps 30] [--warmup 5] [--output step_time.json] [--key value ...]

Initialises the pipeline exactly as `spacy train` would (init_nlp, same corpus, same batcher),
then times `nlp.update` over the first batches: forward, backward and optimizer step, with no
evaluation. Extra `--section.key value` arguments override the config as on spacy's CLI. Used
to compare the bertprod torch backend with stock spacy-transformers at the same batch size.
"""

import argparse
import json
import statistics
import sys
import time
from itertools import islice
from pathlib import Path

from spacy import util
from spacy.cli._util import parse_config_overrides
from spacy.training.initialize import init_nlp
from thinc.api import fix_random_seed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--output", type=Path)
    args, rest = parser.parse_known_args()
    overrides = parse_config_overrides(rest)
    config = util.load_config(args.config, overrides=overrides, interpolate=False)
    fix_random_seed(config.interpolate()["training"]["seed"])
    nlp = init_nlp(config)
    resolved = nlp.config.interpolate()  # as `spacy train` does after init_nlp
    T = util.registry.resolve(resolved["training"], schema=None)
    (corpus,) = util.resolve_dot_names(resolved, [T["train_corpus"]])
    optimizer = T["optimizer"]
    batches = islice(T["batcher"](corpus(nlp)), args.warmup + args.steps)
    times, words = [], []
    for i, batch in enumerate(batches):
        start = time.perf_counter()
        nlp.update(batch, sgd=optimizer, drop=T["dropout"], losses={})
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
            words.append(sum(len(eg.reference) for eg in batch))
    if not times:
        sys.exit("The corpus gave fewer batches than --warmup + 1: lower --warmup or use more data.")
    result = {
        "config": str(args.config),
        "overrides": {k: str(v) for k, v in overrides.items()},
        "steps_timed": len(times),
        "seconds_per_step_median": statistics.median(times),
        "seconds_per_step_mean": statistics.mean(times),
        "words_per_step_mean": statistics.mean(words),
        "words_per_s": sum(words) / sum(times),
    }
    print(json.dumps(result, indent=2))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2), encoding="utf8")


if __name__ == "__main__":
    main()
