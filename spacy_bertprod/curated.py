"""spacy-curated-transformers pipelines (en_core_web_trf since spaCy 3.7) as input: their encoder as a
Hugging Face module, their piece encoder and strided spans as a `PieceWindowTokenizer`.

The curated encoder's parameters are mapped back to the Hugging Face model they were converted from
by running curated-transformers' own HF -> curated conversion on probe values (every element of the
HF model numbered) and reading where each number landed, so the inverse is exact for every family
that conversion knows (ALBERT, BERT, CamemBERT, RoBERTa, XLM-R) without a hand-written name map. The
converted module is then checked against the curated one on random pieces before anything is
exported. Training side only: imports torch and spacy-curated-transformers.
"""

from typing import Any, Dict, Tuple

import numpy

from .errors import InvalidInput
from .pieces import PIECE_ENCODERS, PieceSettings, PieceWindowTokenizer, TokenPieceEncoder, processor_bytes

SCT = "spacy-curated-transformers."
# Curated transformer architectures -> Hugging Face model types.
MODEL_TYPES = {
    f"{SCT}AlbertTransformer.v1": "albert",
    f"{SCT}BertTransformer.v1": "bert",
    f"{SCT}CamembertTransformer.v1": "camembert",
    f"{SCT}RobertaTransformer.v1": "roberta",
    f"{SCT}XlmrTransformer.v1": "xlm-roberta",
}
# Listeners that weight or read every layer's output: the encoder graph then outputs them all.
ALL_LAYER_LISTENERS = (f"{SCT}ScalarWeightingListener.v1", f"{SCT}TransformerLayersListener.v1")
# The largest difference between the converted module and the curated one we accept (fp32).
MAX_CONVERSION_DIFF = 1e-4


def is_curated(proc: Any) -> bool:
    return type(proc).__module__.startswith("spacy_curated_transformers")


def needs_all_layers(components: Dict) -> bool:
    """Whether any listener in a pipeline's [components] weights or reads all layers."""

    def visit(node) -> bool:
        if not isinstance(node, dict):
            return False
        return node.get("@architectures") in ALL_LAYER_LISTENERS or any(visit(v) for v in node.values())

    return visit(components)


def model_type_of(model_config: Dict, where: str) -> str:
    architecture = model_config.get("@architectures", "")
    if architecture not in MODEL_TYPES:
        raise InvalidInput(
            f"{where} uses {architecture}, which spacy_bertprod cannot read: it reads spacy-curated-transformers' "
            f"{sorted(MODEL_TYPES)}."
        )
    if model_config.get("torchscript"):
        raise InvalidInput(f"{where} holds a TorchScript encoder: compress the pipeline it was exported from.")
    return MODEL_TYPES[architecture]


def piece_tokenizer(proc, model_config: Dict, where: str) -> PieceWindowTokenizer:
    """The component's piece encoder and strided spans, torch-free."""
    architecture = model_config["piece_encoder"].get("@architectures", "")
    if architecture not in PIECE_ENCODERS:
        raise InvalidInput(
            f"{where} encodes pieces with {architecture}; spacy_bertprod reproduces {sorted(PIECE_ENCODERS)} "
            "(the character encoder of Japanese BERT is not supported)."
        )
    kind = PIECE_ENCODERS[architecture]
    piece_model = proc.model.get_ref("piece_encoder")
    if piece_model.has_ref("encoder"):  # XLM-R / CamemBERT: the SentencePiece encoder inside the adapter chain
        piece_model = piece_model.get_ref("encoder")
    attrs = piece_model.attrs
    family = "byte_bpe" if kind == "byte_bpe" else "wordpiece" if kind.endswith("wordpiece") else "sentencepiece"
    processor = attrs[f"{family}_processor"]
    settings = PieceSettings(
        bos_piece=attrs.get("bos_piece", ""),
        eos_piece=attrs.get("eos_piece", ""),
        unk_piece=attrs.get("unk_piece", ""),
        lowercase=bool(attrs.get("lowercase", False)),
        strip_accents=bool(attrs.get("strip_accents", False)),
    )
    encoder = TokenPieceEncoder(kind, processor_bytes(kind, processor), settings)
    spans = model_config["with_spans"]
    return PieceWindowTokenizer(
        encoder,
        window=int(spans.get("window", 128)),
        stride=int(spans.get("stride", 96)),
        pad_id=int(model_config.get("padding_idx", 1 if kind.endswith("sentencepiece") else 0)),
    )


def original_pieces(proc, docs) -> list:
    """What the pipeline's own piece encoder makes of `docs` (ids with BOS/EOS, per-token lengths)."""
    output, _ = proc.model.get_ref("piece_encoder")(docs, is_train=False)
    return [(numpy.asarray(r.dataXd), numpy.asarray(r.lengths)) for r in output]


def hf_config(model_config: Dict, model_type: str):
    """The Hugging Face config of the curated encoder described by `model_config`."""
    from transformers import AutoConfig

    c = model_config
    kwargs = dict(
        vocab_size=c["vocab_size"],
        hidden_size=c.get("hidden_width", 768),
        intermediate_size=c.get("intermediate_width", 3072),
        num_attention_heads=c.get("num_attention_heads", 12),
        num_hidden_layers=c.get("num_hidden_layers", 12),
        hidden_act=c.get("hidden_act", "gelu_new" if model_type == "albert" else "gelu"),
        layer_norm_eps=c.get("layer_norm_eps", 1e-12 if model_type in ("bert", "albert") else 1e-5),
        max_position_embeddings=c.get("max_position_embeddings", 512 if model_type in ("bert", "albert") else 514),
        type_vocab_size=c.get("type_vocab_size", 2 if model_type in ("bert", "albert") else 1),
        pad_token_id=c.get("padding_idx", 0 if model_type in ("bert", "albert") else 1),
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    if model_type == "albert":
        kwargs.update(
            embedding_size=c.get("embedding_width", 128),
            num_hidden_groups=c.get("num_hidden_groups", 1),
            inner_group_num=1,
        )
    return AutoConfig.for_model(model_type, **kwargs)


def hf_module(proc, model_config: Dict, where: str):
    """The curated encoder as a Hugging Face module with the same weights, checked on random pieces."""
    from curated_transformers.models.hf_util import convert_hf_pretrained_model_parameters
    from transformers import AutoModel

    from .backends.torch import hf_module as torch_module

    model_type = model_type_of(model_config, where)
    transformer = proc.model.get_ref("transformer")
    if not transformer.shims:
        raise InvalidInput(f"{where} has no torch encoder (TorchScript?): compress the pipeline it was built from.")
    curated = torch_module(transformer).eval()
    hf = AutoModel.from_config(hf_config(model_config, model_type), add_pooling_layer=False).eval()
    _load_inverse(hf, curated.state_dict(), convert_hf_pretrained_model_parameters, where)
    hf = hf.float().eval()
    _check_conversion(curated, hf, model_config, where)
    return hf


def _load_inverse(hf, state: Dict, convert, where: str) -> None:
    """Give `hf` the curated `state`: number every HF element, convert the numbers with
    curated-transformers' own HF -> curated `convert`, and read where each number went."""
    import torch

    sizes = [p.numel() for _, p in hf.named_parameters()]
    starts = numpy.concatenate([[0], numpy.cumsum(sizes)]).astype("int64")
    with torch.no_grad():
        for (_, param), start in zip(hf.named_parameters(), starts):
            param.data = torch.arange(start, start + param.numel(), dtype=torch.float64).reshape(param.shape)
        flat = numpy.zeros(int(starts[-1]), dtype="float32")
        covered = numpy.zeros(int(starts[-1]), dtype=bool)
        for key, probe in convert(hf).items():
            if key not in state:
                raise InvalidInput(f"{where}: the curated encoder has no parameter {key}; cannot convert it.")
            index = probe.reshape(-1).numpy().astype("int64")
            flat[index] = state[key].reshape(-1).float().numpy()
            covered[index] = True
        for (name, param), start, size in zip(hf.named_parameters(), starts[:-1], sizes):
            if not covered[start : start + size].all():
                raise InvalidInput(f"{where}: no curated parameter holds the Hugging Face {name}; cannot convert.")
            param.data = torch.from_numpy(flat[start : start + size].copy()).reshape(param.shape)


def _check_conversion(curated, hf, model_config: Dict, where: str) -> None:
    import torch

    pad = hf.config.pad_token_id
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, hf.config.vocab_size, (3, 40), generator=generator)
    ids[ids == pad] = (pad + 1) % hf.config.vocab_size
    ids[1, 30:] = pad  # a padded row: curated masks pad ids, we pass the mask
    mask = (ids != pad).long()
    with torch.no_grad():
        expected = curated(ids).last_hidden_layer_states
        got = hf(input_ids=ids, attention_mask=mask).last_hidden_state
    diff = float((expected - got)[mask.bool()].abs().max())
    if diff > MAX_CONVERSION_DIFF:
        raise InvalidInput(
            f"{where}: the encoder converted to Hugging Face differs from the curated one by {diff:.2e} "
            f"(more than {MAX_CONVERSION_DIFF}); its architecture is not one spacy_bertprod can convert exactly."
        )


def curated_source(proc, model_config: Dict, where: str) -> Tuple[Any, PieceWindowTokenizer]:
    """(Hugging Face module, piece tokenizer) of a curated transformer component."""
    return hf_module(proc, model_config, where), piece_tokenizer(proc, model_config, where)


def check_pieces(proc, tokenizer: PieceWindowTokenizer, docs) -> int:
    """Refuse when our pieces differ from the pipeline's own piece encoder on any doc; returns the
    number of docs compared."""
    for doc, (ids, lengths) in zip(docs, original_pieces(proc, docs)):
        ours, our_lengths = tokenizer.encoder.encode_doc(doc)
        if not (numpy.array_equal(ours, ids) and numpy.array_equal(our_lengths, lengths[1:-1])):
            raise InvalidInput(
                f"spacy_bertprod's {tokenizer.encoder.kind} pieces differ from the pipeline's own piece encoder on "
                f"{doc.text[:80]!r}: converting it would change its predictions. Please report this text."
            )
    return len(docs)


def keep_first_curated_layers(proc, depth: int, where: str) -> None:
    """Cut the curated encoder itself to its first `depth` layers, as compress --depth cuts the
    converted one, so that parity compares the cut pipelines."""
    from .backends.torch import hf_module as torch_module

    encoder = torch_module(proc.model.get_ref("transformer")).curated_encoder
    if not hasattr(encoder, "layers"):
        raise InvalidInput(f"{where}: ALBERT shares one set of layer weights across its depth; --depth cannot cut it.")
    encoder.layers = encoder.layers[:depth]
