"""The encoder families spacy_bertprod trains, compresses, prunes and shrinks, and what each can do.

One table, read by every stage (training backend, export, fusion, pruning, make-student), so a
family's limits are stated once and refused with the same message everywhere, before any work.
Pure data: importing it costs nothing and needs no torch.

What differs between families, as far as we are concerned:
- where the per-layer weights live (`layer_prefix`): what make-student copies layer by layer;
- whether position ids start after the padding index (RoBERTa-style, `offset_positions`), which
  takes pad_token_id + 1 positions off the usable length;
- whether its attention heads and feed-forward units can be pruned (`prunable`: transformers'
  `prune_heads` and the BERT-style feed-forward block; `prunable_heads`: False where removing
  heads breaks the model, as MPNet's relative position bias shared by every layer's heads);
- whether ONNX Runtime's transformer optimizer has an attention pattern for its graph
  (`attention_fusion`); the others are exported unfused apart from LayerNorm/GELU and still
  quantise: compress_report.json lists the fusions that happened;
- a per-layer attention pattern a student's layers must follow (ModernBERT's global attention on
  every `global_attn_every_n_layers`-th layer, local sliding-window attention on the others).
The tokenizer kind (WordPiece, byte-level BPE, SentencePiece/Unigram) is read from each model's
own tokenizer.json, not assumed from its family.
"""

from dataclasses import dataclass
from typing import Any, List, Optional, Sequence

from .errors import InvalidInput


@dataclass(frozen=True)
class Family:
    model_type: str
    label: str
    layer_prefix: Optional[str]  # state-dict prefix of layer i is f"{layer_prefix}{i}."; None: layers shared
    offset_positions: bool = False
    prunable: bool = True
    prunable_heads: bool = True
    attention_fusion: bool = True
    global_attention_every: Optional[str] = None  # config key of an alternating attention pattern


FAMILIES = {
    family.model_type: family
    for family in (
        Family("bert", "BERT", "encoder.layer."),
        Family("roberta", "RoBERTa", "encoder.layer.", offset_positions=True),
        Family("xlm-roberta", "XLM-RoBERTa", "encoder.layer.", offset_positions=True),
        Family("camembert", "CamemBERT", "encoder.layer.", offset_positions=True),
        Family("distilbert", "DistilBERT", "transformer.layer."),
        # ALBERT shares one layer group across depth: no per-layer weights to pick or prune apart.
        Family("albert", "ALBERT", None, prunable=False),
        Family("electra", "ELECTRA", "encoder.layer."),
        # MPNet adds a relative position bias to the attention scores: no ORT attention pattern.
        # and that bias has one row per head for all layers: heads cannot go, feed-forward units can.
        Family("mpnet", "MPNet", "encoder.layer.", offset_positions=True, attention_fusion=False, prunable_heads=False),
        # DeBERTa's disentangled attention: no prune_heads in transformers, no ORT attention pattern.
        Family("deberta", "DeBERTa", "encoder.layer.", prunable=False, attention_fusion=False),
        Family("deberta-v2", "DeBERTa-v2/v3", "encoder.layer.", prunable=False, attention_fusion=False),
        # ModernBERT: rotary positions, alternating global/local attention, GeGLU feed-forward.
        Family(
            "modernbert",
            "ModernBERT",
            "layers.",
            prunable=False,
            attention_fusion=False,
            global_attention_every="global_attn_every_n_layers",
        ),
    )
}
SUPPORTED_MODEL_TYPES = tuple(FAMILIES)


def family_of(config: Any, where: str) -> Family:
    """The family of a HF config; a clear error for the model types we do not handle."""
    model_type = getattr(config, "model_type", None)
    if model_type not in FAMILIES:
        raise InvalidInput(
            f"{where} is a '{model_type}' model, which spacy_bertprod does not support. Supported encoder families: "
            f"{', '.join(f.label for f in FAMILIES.values())} (model types {', '.join(SUPPORTED_MODEL_TYPES)}). "
            "Fine-tune one of those, or keep this pipeline on spacy-transformers."
        )
    return FAMILIES[model_type]


def refuse_pruning(config: Any, where: str, heads: bool = True) -> None:
    """Refuse pruning (`heads`: attention heads too) where the family cannot take it."""
    family = family_of(config, where)
    if heads and family.prunable and not family.prunable_heads:
        raise InvalidInput(
            f"{where} is a {family.label} encoder, whose relative position bias is shared by every layer's attention "
            "heads: removing heads breaks it. Leave out --prune-heads; --prune-ffn (feed-forward units) works."
        )
    if not family.prunable:
        raise InvalidInput(
            f"{where} is a {family.label} encoder, and transformers cannot remove its attention heads "
            f"({family.label} has no prune_heads). Leave out --prune-heads/--prune-ffn: distil a shallower student "
            "(make-student --layers N) to make it smaller, or trim its vocabulary (--trim-vocab)."
        )


def global_layers(config: Any, n_layers: int) -> List[bool]:
    """Per layer of a model with `n_layers` layers of this config: does it attend globally?
    All True for families without an alternating pattern."""
    family = family_of(config, "The encoder")
    if family.global_attention_every is None:
        return [True] * n_layers
    every = int(getattr(config, family.global_attention_every))
    return [i % every == 0 for i in range(n_layers)]


def check_layer_pattern(config: Any, layer_map: Sequence[int]) -> None:
    """A student's layer i is global/local by its own position: the teacher layer it starts from
    must be of the same kind, or its weights meet attention spans they were never trained on."""
    teacher = global_layers(config, int(config.num_hidden_layers))
    student = global_layers(config, len(layer_map))
    wrong = [i for i, t in enumerate(layer_map) if teacher[t] != student[i]]
    if wrong:
        family = family_of(config, "The encoder")
        every = getattr(config, family.global_attention_every)
        raise InvalidInput(
            f"layer map {list(layer_map)} does not keep {family.label}'s attention pattern (global attention on every "
            f"{every}th layer, from layer 0): student layer(s) {wrong} would start from teacher layers of the other "
            "kind. Use --pick bottom or spread (both follow the pattern), or a map whose layer i is global exactly "
            f"when i % {every} == 0."
        )


def pattern_layer_map(config: Any, targets: Sequence[int]) -> List[int]:
    """The nearest layers to `targets` (increasing, distinct) that keep the attention pattern."""
    teacher = global_layers(config, int(config.num_hidden_layers))
    student = global_layers(config, len(targets))
    chosen: List[int] = []
    for i, target in enumerate(targets):
        low = chosen[-1] + 1 if chosen else 0
        room = len(targets) - i - 1  # layers still to place above this one
        candidates = [t for t in range(low, len(teacher) - room) if teacher[t] == student[i]]
        if not candidates:
            raise InvalidInput(
                f"No {len(targets)}-layer subset of this {family_of(config, 'encoder').label} keeps its attention "
                "pattern: use --pick bottom."
            )
        chosen.append(min(candidates, key=lambda t: (abs(t - target), -t)))
    return chosen
