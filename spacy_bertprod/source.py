"""The trained pipelines the training-side workflows start from (compress, make-student, distil).

One place that finds the transformer component in a pipeline (ours or spacy-transformers'), gets
its torch encoder and tokenizer, loads a teacher, and knows which components exist only for
training (what a served pipeline drops or writes back as spaCy's own factory).
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Tuple

from spacy.language import Language

from .backends import TORCH_ENCODER
from .component import BertprodTransformer
from .errors import Errors, InvalidInput
from .tokenization import WordpieceTokenizer
from .tokenizer_files import Tokenizer

# Components that only train (a teacher's loss): a served pipeline removes them.
TRAINING_ONLY_FACTORIES = ("bertprod_hidden_distiller",)
# Training-time variants of spaCy's heads -> the plain factory a served pipeline uses, and the
# config keys only the variant has. Same model and weights; only how they are trained differs.
PLAIN_FACTORIES = {
    "bertprod_soft_textcat": ("textcat", ()),
    "bertprod_soft_textcat_multilabel": ("textcat_multilabel", ()),
    "bertprod_distill_ner": ("ner", ("teacher", "teacher_component", "temperature")),
    "bertprod_distill_tagger": ("tagger", ("teacher", "teacher_component")),
    "bertprod_distill_morphologizer": ("morphologizer", ("teacher", "teacher_component")),
    "bertprod_distill_senter": ("senter", ("teacher", "teacher_component")),
    "bertprod_distill_lemmatizer": ("trainable_lemmatizer", ("teacher", "teacher_component")),
    "bertprod_distill_parser": ("parser", ("teacher", "teacher_component")),
}


@dataclass
class TransformerSource:
    """A pipeline's transformer, whatever library made it: one description compress and
    distillation work from. `tokenizer` is a WordpieceTokenizer (windows of text) or, for
    spacy-curated-transformers, a PieceWindowTokenizer (pieces per token, strided windows)."""

    name: str  # component name in the pipeline
    kind: str  # "spacy-transformers", "spacy-curated-transformers" or "bertprod"
    module: Any  # torch.nn.Module (a HF encoder)
    tokenizer: Tokenizer
    component_config: Dict
    all_layers: bool = False  # a listener weights or reads every layer's output (curated pipelines)

    @property
    def is_curated(self) -> bool:
        return self.kind == CURATED


CURATED = "spacy-curated-transformers"


def is_transformer(proc: Any) -> bool:
    module = type(proc).__module__
    if module.startswith("spacy_curated_transformers"):
        return type(proc).__name__ == "CuratedTransformer"
    return isinstance(proc, BertprodTransformer) or module.startswith("spacy_transformers")


def find_transformer_component(nlp: Language, where: str) -> Tuple[str, Any]:
    """(name, component) of the one transformer in `nlp`, on any backend."""
    found = [(name, proc) for name, proc in nlp.pipeline if is_transformer(proc)]
    if not found:
        raise InvalidInput(Errors.E001.format(where=where, pipe_names=nlp.pipe_names))
    if len(found) > 1:
        raise InvalidInput(
            f"{where} has {len(found)} transformer components ({[name for name, _ in found]}); "
            "spacy_bertprod handles pipelines with one."
        )
    return found[0]


def find_transformer(nlp: Language, where: str) -> TransformerSource:
    """The transformer of a trainable pipeline, with its torch encoder and tokenizer."""
    from .backends.hf_folder import check_model_type, wordpiece_tokenizer_from_hf
    from .backends.torch import hf_module

    name, proc = find_transformer_component(nlp, where)
    all_layers = False
    if isinstance(proc, BertprodTransformer):
        encoder = proc.encoder
        if encoder.name != TORCH_ENCODER:
            raise InvalidInput(
                f"Component '{name}' in {where} already runs on ONNX Runtime: use the pipeline it "
                "was compressed from instead."
            )
        kind, module, tokenizer = "bertprod", hf_module(encoder), proc.tokenizer
    elif type(proc).__module__.startswith("spacy_curated_transformers"):
        from .curated import curated_source, needs_all_layers

        module, tokenizer = curated_source(proc, nlp.config["components"][name]["model"], f"'{name}' in {where}")
        kind = CURATED
        all_layers = needs_all_layers(nlp.config["components"])
    else:
        module = proc.model.transformer
        tokenizer = wordpiece_tokenizer_from_hf(proc.model.tokenizer, module.config, f"Component '{name}' in {where}")
        kind = "spacy-transformers"
    if not hasattr(module, "config"):
        raise InvalidInput(f"Component '{name}' in {where} has no trained encoder (was it initialized?).")
    check_model_type(module.config, f"Component '{name}' in {where}")
    component_config = dict(nlp.config["components"][name])
    return TransformerSource(name, kind, module.eval(), tokenizer, component_config, all_layers)


def load_teacher(path: Path) -> Tuple[Any, WordpieceTokenizer]:
    """(HF module, WordpieceTokenizer) from a model directory or a trained spaCy pipeline."""
    path = Path(path)
    if (path / "config.cfg").exists():
        import spacy

        source = refuse_curated_teacher(find_transformer(spacy.load(path), str(path)), path)
        return source.module, source.tokenizer
    from .backends.hf_folder import load_pretrained

    return load_pretrained(str(path))


def refuse_curated_teacher(source: TransformerSource, path: Path) -> TransformerSource:
    if source.is_curated:
        raise InvalidInput(
            f"{path} is a spacy-curated-transformers pipeline: students are made from spacy-transformers and "
            "bertprod teachers so far. Compress it (bertprod compress) to serve it faster, or train a bertprod "
            "teacher on the same data and distil that."
        )
    return source


def strip_training_components(nlp: Language) -> List[str]:
    """Remove the training-only components from `nlp`; returns their names."""
    names = [name for name in nlp.pipe_names if nlp.get_pipe_meta(name).factory in TRAINING_ONLY_FACTORIES]
    for name in names:
        nlp.remove_pipe(name)
    return names


def to_plain_components(components: dict) -> None:
    """Rewrite a config's [components] in place: training variants -> spaCy's own factories."""
    for block in components.values():
        if block.get("factory") in PLAIN_FACTORIES:
            block["factory"], training_only = PLAIN_FACTORIES[block["factory"]]
            for key in training_only:
                block.pop(key, None)
