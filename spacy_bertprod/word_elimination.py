"""Word-vector elimination (PoWER-BERT, Goyal et al., 2020): fewer word vectors in every layer.

For classifying a whole text, later layers need far fewer word vectors than the first: PoWER-BERT
measures each vector's *significance* (the attention it receives: summed over heads and over the
doc's queries) after a layer, and lets only the most significant ones into the next layer. A
retention schedule says, per layer, which share of the doc's wordpieces enters it: `1, 0.6, 0.3`
lets all of them into layer 1, the top 60% into layer 2 and the top 30% into layer 3 (at least
one; the first, [CLS] / <s>, always stays). Shares are of each doc's own length, and selection
is per doc, so a doc's kept vectors and its answer do not depend on its batch-mates: padding
only ever adds masked slots, and significance is summed with fixed-shape products whose result
for a row depends on that row alone (as compress/heads.py's pooling).

The encoder still returns one vector per wordpiece: a vector dropped after layer i keeps the
value layer i gave it. So listeners, reductions, heads in the graph and `doc._.trf_data` work
unchanged, and a textcat head averages the final vectors of the kept wordpieces together with
the frozen ones of the others. Meant for text classification: token-level heads (NER) would
read frozen vectors for the dropped wordpieces.

The same forward runs in training (TorchTransformer.v2's `word_retention`: the student learns
with its schedule), evaluation and torch.onnx export (`compress --word-retention`), where the
selection becomes TopK and row Gather / ScatterND nodes with per-batch shapes, and ONNX Runtime's
attention fusion still fuses every BERT-style layer (see _attention_probabilities).
"""

import math
from typing import List, Optional, Sequence, Union

import torch

from .backends.forward_wrap import wrap_forward
from .errors import InvalidInput
from .families import family_of

# Families whose layers take (hidden states, additive mask[, position bias]) and return their
# attention probabilities on request; the others' layers need rotary or disentangled positions.
ELIMINATING_FAMILIES = ("bert", "roberta", "xlm-roberta", "camembert", "electra", "mpnet")
_KEPT_FIRST = 1e9  # the first wordpiece's significance: always kept


def parse_retention(value: Union[str, Sequence[float]], n_layers: int, where: str = "The encoder") -> List[float]:
    """A schedule as a list of `n_layers` shares (text "1,0.6,0.3" or a sequence); clear errors.

    An empty value means no elimination (an empty list)."""
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(",") if p.strip()]
        try:
            shares = [float(p) for p in parts]
        except ValueError:
            raise InvalidInput(
                f"word retention '{value}' is not a comma-separated list of shares, e.g. '1,0.6,0.3'."
            ) from None
    else:
        shares = [float(s) for s in value]
    if not shares:
        return []
    shares = [round(s, 6) for s in shares]  # spaCy's config writes 0.6 back as 0.6000000000000001
    how = f"one share per layer, from 1 down, e.g. {_example(n_layers)}"
    if len(shares) != n_layers:
        raise InvalidInput(f"word retention {shares}: {where} has {n_layers} layers, so give {how}.")
    if shares[0] != 1.0 or any(not 0.0 < s <= 1.0 for s in shares):
        raise InvalidInput(f"word retention {shares}: every layer sees a share in (0, 1] and layer 1 sees all; {how}.")
    if any(b > a for a, b in zip(shares, shares[1:])):
        raise InvalidInput(f"word retention {shares}: a dropped word vector cannot come back; give {how}.")
    return shares


def _example(n_layers: int) -> str:
    return ",".join(f"{max(0.1, 1.0 - 0.3 * i):.1f}".rstrip("0").rstrip(".") for i in range(n_layers))


def geometric_retention(n_layers: int, keep: float) -> List[float]:
    """1, keep, keep^2, ...: the one-parameter family searched on dev (reports/word_elimination)."""
    return [round(keep**i, 4) for i in range(n_layers)]


def check_family(module: torch.nn.Module, where: str) -> None:
    family = family_of(module.config, where)
    if family.model_type not in ELIMINATING_FAMILIES:
        supported = ", ".join(ELIMINATING_FAMILIES)
        raise InvalidInput(
            f"{where} is a {family.label} encoder: word-vector elimination supports the families {supported}, whose "
            "layers see positions only through their inputs. Leave out word retention for this encoder, or make it "
            "faster with --depth or a shallower student (bertprod make-student)."
        )


def eliminate_word_vectors(module: torch.nn.Module, retention: Sequence[float], where: str = "The encoder") -> None:
    """Make every forward pass of `module` (training, inference, export) follow `retention`."""
    check_family(module, where)
    shares = parse_retention(retention, int(module.config.num_hidden_layers), where)
    if not shares or all(s == 1.0 for s in shares):
        if retention_of(module):  # already eliminating: now every layer sees every vector
            module._bertprod_word_retention = [1.0] * int(module.config.num_hidden_layers)
        return
    if not retention_of(module):  # a second call only changes the schedule
        wrap_forward(module, _forward_eliminating, "word_retention")
    module._bertprod_word_retention = list(shares)


def retention_of(module: torch.nn.Module) -> List[float]:
    """The schedule `module` runs with (empty: every layer sees every word vector)."""
    return list(getattr(module, "_bertprod_word_retention", None) or [])


def _forward_eliminating(
    module, inner, input_ids=None, attention_mask=None, token_type_ids=None, return_dict=True, **kwargs
):
    """The encoder's forward with the schedule stored on the module (a deep copy carries its own)."""
    from transformers.modeling_outputs import BaseModelOutput

    if kwargs.get("output_hidden_states") or kwargs.get("output_attentions") or kwargs.get("head_mask") is not None:
        raise InvalidInput(
            "An encoder with word retention returns only its last hidden state and takes no head mask: layer "
            "distillation and head pruning cannot run through it. Distil or prune first, then add word retention."
        )
    shares = retention_of(module)
    mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
    hidden = _embed(module, input_ids, token_type_ids)
    hidden = _run_layers(module, shares, hidden, mask.to(hidden.dtype))
    return BaseModelOutput(last_hidden_state=hidden)


def _embed(module, input_ids, token_type_ids) -> torch.Tensor:
    if module.config.model_type == "mpnet" or token_type_ids is None:
        hidden = module.embeddings(input_ids=input_ids)
    else:
        hidden = module.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
    if hasattr(module, "embeddings_project"):  # ELECTRA with narrower embeddings
        hidden = module.embeddings_project(hidden)
    return hidden


def _run_layers(module, shares, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The layers on ever fewer vectors; returns (batch, length, width) with each wordpiece's last vector."""
    batch, length, width = hidden.shape
    layers = module.encoder.layer
    bias = module.encoder.compute_position_bias(hidden) if module.config.model_type == "mpnet" else None
    positions = torch.arange(length, device=hidden.device).unsqueeze(0).expand(batch, length)
    n_words = mask.sum(dim=1)  # each doc's own length: shares are of it
    # Row (doc, position) of the output, flat; each doc's row `length` is where padding slots write.
    final = hidden.new_zeros((batch * (length + 1), width))
    for i, layer in enumerate(layers):
        share = shares[i + 1] if i + 1 < len(layers) else None
        drops = share is not None and share < shares[i]
        hidden, probabilities = _layer(layer, hidden, mask, bias, drops)
        if drops:
            final = _record(final, hidden, positions, mask, length)
            kept, mask = _select(probabilities, mask, n_words, share)
            hidden = _take_rows(hidden, kept)
            positions = torch.gather(positions, 1, kept)
            bias = _gather_bias(bias, kept)
    final = _record(final, hidden, positions, mask, length)
    return final.reshape(batch, length + 1, width)[:, :length]


def _take_rows(hidden: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
    """hidden[b, kept[b, j]] as (batch, kept, width): one row Gather over the flattened batch (ONNX
    Runtime copies whole rows; GatherElements would index every element)."""
    batch, n, width = hidden.shape
    offsets = torch.arange(batch, device=kept.device).unsqueeze(1) * n
    return hidden.reshape(batch * n, width).index_select(0, (kept + offsets).reshape(-1)).reshape(batch, -1, width)


def _layer(layer, hidden, mask, bias: Optional[torch.Tensor], significance: bool):
    """(the layer's output, its attention probabilities when `significance` is asked, else None).

    BERT-style layers run without output_attentions and the probabilities are recomputed from their
    query and key projections: ONNX Runtime's attention fusion then still fuses every layer (it
    cannot when a layer's own softmax output is read elsewhere). MPNet's attention is never fused."""
    additive = (1.0 - mask[:, None, None, :]) * torch.finfo(hidden.dtype).min
    if bias is not None:
        outputs = layer(hidden, additive, None, position_bias=bias, output_attentions=significance)
        return outputs[0], (outputs[1] if significance else None)
    probabilities = _attention_probabilities(layer.attention.self, hidden, additive) if significance else None
    return layer(hidden, additive)[0], probabilities


def _attention_probabilities(attention, hidden: torch.Tensor, additive: torch.Tensor) -> torch.Tensor:
    """softmax(QK^T / sqrt(d) + mask) of a BERT-style self-attention, (batch, heads, queries, keys)."""
    batch, length, _ = hidden.shape
    heads, size = attention.num_attention_heads, attention.attention_head_size
    # On the flattened rows, not through the Linear modules: the exporter would merge a second call
    # of the layer's own Linear into the first (and the fusion then remove it), and the fusion only
    # matches a layer input read by exactly three MatMuls (query, key, value).
    rows = hidden.reshape(batch * length, -1)
    query = torch.matmul(rows, attention.query.weight.t()) + attention.query.bias
    key = torch.matmul(rows, attention.key.weight.t()) + attention.key.bias
    query = query.view(batch, length, heads, size).transpose(1, 2)
    key = key.view(batch, length, heads, size).transpose(1, 2)
    scores = torch.matmul(query, key.transpose(-1, -2)) / (size**0.5)
    return torch.softmax(scores + additive, dim=-1)


def _record(final, hidden, positions, mask, length: int) -> torch.Tensor:
    """`final` (flat rows) with the current vectors written at their wordpieces' rows (a row
    ScatterND in ONNX); padding slots write to their doc's spare row."""
    batch, n, width = hidden.shape
    where = torch.where(mask > 0, positions, torch.full_like(positions, length))
    rows = where + torch.arange(batch, device=where.device).unsqueeze(1) * (length + 1)
    return final.index_put((rows.reshape(-1),), hidden.reshape(batch * n, width))


def _select(attention: torch.Tensor, mask: torch.Tensor, n_words: torch.Tensor, share: float):
    """Indices (into the current vectors, in their order) of each doc's most significant ones, and their mask.

    Significance: attention received, summed over heads, then over the doc's own queries as a
    2-row product (padding rows weigh 0; a 1-row product takes another, not row-exact, code path)."""
    per_query = attention.sum(dim=1)  # (batch, queries, keys)
    rows = torch.stack([mask, mask], dim=1)  # (batch, 2, queries)
    significance = torch.matmul(rows, per_query)[:, 0]  # (batch, keys)
    significance = torch.where(mask > 0, significance, torch.full_like(significance, -1.0))
    first = torch.full_like(significance[:, :1], _KEPT_FIRST)
    significance = torch.cat([first, significance[:, 1:]], dim=1)
    n_keep = torch.clamp(torch.ceil(n_words * share), min=1.0)
    n_keep = torch.minimum(n_keep, mask.sum(dim=1)).to(torch.int64)  # (batch,)
    ranked = torch.topk(significance, n_keep.max(), dim=1).indices  # best first, ties: lower index
    slots = torch.arange(ranked.shape[1], device=ranked.device).unsqueeze(0)
    valid = slots < n_keep.unsqueeze(1)
    past_end = torch.full_like(ranked, mask.shape[1])
    kept = torch.sort(torch.where(valid, ranked, past_end), dim=1).values  # back in text order
    new_mask = (kept < mask.shape[1]).to(mask.dtype)
    return torch.where(new_mask > 0, kept, torch.zeros_like(kept)), new_mask


def _gather_bias(bias: Optional[torch.Tensor], kept: torch.Tensor) -> Optional[torch.Tensor]:
    """MPNet's (batch, heads, queries, keys) relative position bias, for the kept vectors only."""
    if bias is None:
        return None
    batch, heads, length, _ = bias.shape
    if bias.shape[0] != kept.shape[0]:
        bias = bias.expand(kept.shape[0], -1, -1, -1)
    n = kept.shape[1]
    rows = torch.gather(bias, 2, kept[:, None, :, None].expand(-1, heads, n, length))
    return torch.gather(rows, 3, kept[:, None, None, :].expand(-1, heads, n, n))


def speedup_bound(shares: Sequence[float]) -> float:
    """Layers over layer-equivalents run: the most the schedule can give the encoder's layers."""
    return len(shares) / math.fsum(shares) if shares else 1.0
