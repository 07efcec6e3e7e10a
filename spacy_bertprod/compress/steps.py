"""What the compress stages hand each other (Loaded, Shrunk, Graphs), and how they report
progress: through the `spacy_bertprod.compress` logger (the CLI prints it; a library user decides),
with each long step timed."""

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

from spacy.language import Language

from ..source import TransformerSource
from ..tokenization import WordpieceTokenizer
from .sample import CalibrationSample

logger = logging.getLogger("spacy_bertprod.compress")


def log(message: str) -> None:
    """A progress line (INFO on the `spacy_bertprod.compress` logger)."""
    logger.info(message)


class Step:
    """Log a step and how long it took (export and quantisation take a while); the seconds go
    into `timings` under the step's label (the report's timings)."""

    def __init__(self, label: str, timings: Dict[str, float]):
        self.label, self.timings = label, timings

    def __enter__(self):
        log(f"... {self.label}")
        self.start = time.perf_counter()

    def __exit__(self, *exc):
        seconds = time.perf_counter() - self.start
        self.timings[self.label] = round(seconds, 2)
        if exc[0] is None:
            log(f"    done in {seconds:.1f}s")


@dataclass
class Loaded:
    """Stage 1: the trained pipeline, its transformer and the sample texts."""

    path: Path
    nlp: Language
    source: TransformerSource
    sample: CalibrationSample


@dataclass
class Shrunk:
    """Stage 2: the encoder and tokenizer to export, and what shrinking (cutting the depth,
    pruning, trimming the vocabulary) did (None: not asked)."""

    module: Any
    tokenizer: WordpieceTokenizer
    vocabulary: Optional[Dict] = None
    pruning: Optional[Dict] = None
    depth: Optional[Dict] = None
    word_retention: Optional[Dict] = None


@dataclass
class Graphs:
    """Stage 3: the ONNX files in the work folder, and what fusion and calibration did."""

    raw: Path
    fp32: Path
    final: Path
    fusion: Dict[str, int]
    calibration: Dict
    heads: Optional[Dict] = None  # heads in the graph and those kept in Python (why), when asked
