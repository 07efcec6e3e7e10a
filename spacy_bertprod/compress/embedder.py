"""`bertprod embedder`: a sentence-embedding spaCy pipeline from a sentence-transformers model folder.

The pipeline is a tokenizer and a bertprod_transformer whose doc.vector is the model's own
sentence embedding (sentence_vectors.py), compressed like any other (fp32 or calibrated int8
ONNX); compress's parity check then compares the vectors with the torch original's.
"""

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict

import spacy

from ..errors import InvalidInput, MissingFile
from ..sentence_vectors import MODES, SentencePooling, check_setting, from_sentence_transformers
from .pipeline import CompressSettings, check_output, compress_pipeline


@dataclass
class EmbedderSettings:
    """pooling: "auto" (the folder's modules.json; refused when it has none) or a mode.
    window/stride: spaCy tokens per encoder window and the step between windows; a text longer than
    `window` tokens is pooled over its windows (sentence_vectors.py)."""

    lang: str = "en"
    pooling: str = "auto"
    normalize: bool = True
    window: int = 128
    stride: int = 96


def check_model_dir(model_dir: Path) -> None:
    if not model_dir.is_dir():
        raise MissingFile(f"{model_dir} is not a folder: pass a sentence-transformers or Hugging Face model folder.")
    missing = [name for name in ("config.json", "tokenizer.json") if not (model_dir / name).is_file()]
    if not any(model_dir.glob("*.safetensors")):
        missing.append("*.safetensors")
    if missing:
        raise MissingFile(
            f"{model_dir} has no {', '.join(missing)}: the embedder needs the model's config, its fast tokenizer and "
            "safetensors weights (a sentence-transformers folder has them at its top level)."
        )


def embedder_pooling(model_dir: Path, settings: EmbedderSettings) -> SentencePooling:
    """The model's own pooling, or the one asked for; refused before any work when neither is known."""
    check_setting(settings.pooling)
    if settings.pooling == "none":
        raise InvalidInput("--pooling none makes a pipeline without sentence vectors; choose auto, " + ", ".join(MODES))
    if settings.pooling != "auto":
        return SentencePooling(settings.pooling, settings.normalize, "--pooling")
    found = from_sentence_transformers(model_dir)  # raises for modules it cannot reproduce
    if found is None:
        raise InvalidInput(
            f"{model_dir} is not a sentence-transformers folder (no modules.json with a Pooling module), so its "
            f"pooling is unknown: pass --pooling {' or '.join(MODES)} (and --no-normalize if its vectors are not "
            "L2-normalised)."
        )
    return found


def build_embedder(model_dir: Path, output_path: Path, settings: EmbedderSettings, compress: CompressSettings) -> Dict:
    """Write the compressed embedding pipeline to output_path; returns compress's report."""
    model_dir = Path(model_dir)
    check_model_dir(model_dir)
    check_output(output_path, compress)
    if settings.window < 1 or not 0 < settings.stride <= settings.window:
        raise InvalidInput(
            f"--window ({settings.window}) must be positive and --stride ({settings.stride}) in 1..window."
        )
    pooling = embedder_pooling(model_dir, settings)
    nlp = spacy.blank(settings.lang)
    model = {
        "@architectures": "spacy_bertprod.TorchTransformer.v2",
        "name": str(model_dir.resolve()),
        "get_spans": {"@misc": "spacy_bertprod.strided_spans.v1", "window": settings.window, "stride": settings.stride},
    }
    nlp.add_pipe(
        "bertprod_transformer",
        name="transformer",
        config={"model": model, "sentence_vector": pooling.mode, "normalize_vector": pooling.normalize},
    )
    nlp.initialize()
    nlp.get_pipe("transformer").set_pooling(pooling)
    nlp.meta.update(
        {"name": f"embedder_{model_dir.name}".replace("-", "_"), "description": f"Sentence vectors: {model_dir.name}"}
    )
    with tempfile.TemporaryDirectory(prefix="bertprod-embedder-") as work:
        nlp.to_disk(Path(work) / "torch")
        return compress_pipeline(Path(work) / "torch", output_path, compress)
