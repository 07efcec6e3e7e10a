"""spaCy's own training config for the same task: the CNN reference, or with --stock the stock transformer peer.

    python scripts/spacy_config.py ner|textcat|trf CORPUS_DIR OUT.cfg [--lang en] [--stock ENCODER]

Exactly what `python -m spacy init config OUT.cfg --pipeline ner|textcat|textcat_multilabel
--optimize efficiency` writes (spaCy's default budget included), with the text classifier chosen
to match the corpus: textcat_multilabel when `bertprod data` made the corpus multi-label; for trf,
the components of the corpus's multi-task config (tagger, morphologizer, trainable_lemmatizer,
parser, ner) on spaCy's shared CNN tok2vec. With `--stock ENCODER`: what `spacy init config --gpu
--optimize accuracy` writes for the same components (spacy-transformers, the pipeline users already
have) with its encoder set to ENCODER, so the peer differs from ours only in the library.
"""

import argparse
import sys
from pathlib import Path

from spacy.cli.init_config import init_config
from thinc.api import Config


def components_for(task: str, corpus: Path) -> list:
    if task == "ner":
        return ["ner"]
    config = Config().from_disk(corpus / "config.cfg", interpolate=False)
    if task == "trf":
        return [name for name in config["nlp"]["pipeline"] if name != "transformer"]
    factory = config["components"]["textcat"]["factory"]
    return ["textcat_multilabel" if "multilabel" in factory else "textcat"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("task", choices=["ner", "textcat", "trf"])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--lang", default="en")
    parser.add_argument("--stock", default=None, help="encoder of spaCy's spacy-transformers accuracy pipeline")
    args = parser.parse_args()
    if not (args.corpus / "config.cfg").exists():
        parser.error(f"{args.corpus}/config.cfg is missing: run the {args.task}-data command first")
    components = components_for(args.task, args.corpus)
    optimize = "accuracy" if args.stock else "efficiency"
    config = init_config(lang=args.lang, pipeline=components, optimize=optimize, gpu=bool(args.stock))
    if args.stock:
        config["components"]["transformer"]["model"]["name"] = str(args.stock)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    config.to_disk(args.output)
    print(f"{args.output}: spaCy's {optimize} pipeline {components} ({args.lang}, {args.stock or 'CNN'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
