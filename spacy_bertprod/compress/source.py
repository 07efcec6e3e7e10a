"""Find the transformer in a trained pipeline and get its torch encoder and tokenizer.

Accepts spacy-transformers' `transformer` and our own torch-backed `bertprod_transformer`.
"""
from dataclasses import dataclass
from typing import Any, Dict

from spacy.language import Language

from ..backends import TORCH_ENCODER
from ..component import BertprodTransformer
from ..tokenization import WordpieceTokenizer


@dataclass
class TransformerSource:
    name: str  # component name in the pipeline
    kind: str  # "spacy-transformers" or "bertprod"
    module: Any  # torch.nn.Module (a HF encoder)
    tokenizer: WordpieceTokenizer
    component_config: Dict


def find_transformer(nlp: Language, where: str) -> TransformerSource:
    from ..backends.torch import check_model_type, hf_module, wordpiece_tokenizer_from_hf

    found = []
    for name, proc in nlp.pipeline:
        if isinstance(proc, BertprodTransformer):
            encoder = proc.model.layers[0]
            if encoder.name != TORCH_ENCODER:
                raise ValueError(
                    f"Component '{name}' in {where} already runs on ONNX Runtime: compress the "
                    "pipeline it was made from instead."
                )
            from ..transformer_model import get_tokenizer

            found.append(("bertprod", name, hf_module(encoder), get_tokenizer(proc.model)))
        elif type(proc).__module__.startswith("spacy_transformers"):
            module = proc.model.transformer
            tokenizer = wordpiece_tokenizer_from_hf(proc.model.tokenizer, module.config, f"Component '{name}' in {where}")
            found.append(("spacy-transformers", name, module, tokenizer))
    if not found:
        raise ValueError(
            f"{where} has no transformer component (spacy-transformers `transformer` or "
            f"`bertprod_transformer`); its pipeline is {nlp.pipe_names}. Nothing to compress."
        )
    if len(found) > 1:
        raise ValueError(
            f"{where} has {len(found)} transformer components ({[f[1] for f in found]}); "
            "compress handles pipelines with one."
        )
    kind, name, module, tokenizer = found[0]
    if not hasattr(module, "config"):
        raise ValueError(f"Component '{name}' in {where} has no trained encoder (was it initialized?).")
    check_model_type(module.config, f"Component '{name}' in {where}")
    return TransformerSource(name, kind, module.eval(), tokenizer, dict(nlp.config["components"][name]))
