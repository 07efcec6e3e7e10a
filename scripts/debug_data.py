"""Run `spacy debug data` on converted data and keep its output for the report.

    python scripts/debug_data.py CORPUS_DIR OUT.txt --encoder MODEL_DIR

CORPUS_DIR is what `bertprod data` wrote (config.cfg, train.spacy, dev.spacy). spaCy's checks
look for components by factory name (`ner`, `textcat`), so the config's training-time variants
(bertprod_distill_ner, bertprod_soft_textcat) are mapped back to spaCy's own for the check. Its
warnings and errors are findings for the report, not a stop: our own data checks already ran.
"""

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from spacy.util import get_lang_class
from thinc.api import Config

from spacy_bertprod.source import to_plain_components


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("corpus", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--encoder", required=True)
    args = parser.parse_args()
    config = Config().from_disk(args.corpus / "config.cfg", interpolate=False)
    # spacy train fills unset defaults itself; debug data validates the file as it is.
    config["paths"].update(
        train=str(args.corpus / "train.spacy"), dev=str(args.corpus / "dev.spacy"), encoder=args.encoder
    )
    config = Config(get_lang_class(config["nlp"]["lang"]).default_config).merge(config).interpolate()
    to_plain_components(config["components"])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.cfg"
        config.to_disk(path)
        result = subprocess.run(
            [sys.executable, "-m", "spacy", "debug", "data", str(path)],
            capture_output=True,
            text=True,
            env={**os.environ, "ANSI_COLORS_DISABLED": "1"},
        )
    output = result.stdout + result.stderr
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(output, encoding="utf8")
    print(output)
    print(f"spacy debug data exited with {result.returncode}; its output is in {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
