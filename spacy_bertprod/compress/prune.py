"""Structured pruning: remove the attention heads and feed-forward units that matter least.

Importance follows Michel et al. ("Are Sixteen Heads Really Better than One?", 2019): a gate of 1
multiplies every head's output (the encoder's own `head_mask` argument) and every feed-forward
unit's activation, and a gate's importance is the absolute gradient of the pipeline's *own*
training loss with respect to it, summed over batches of labelled dev examples. The loss is what
`nlp.update` computes for the heads (NER, textcat, ...) with no optimizer, so nothing is changed
and no task is special-cased. Head scores are normalised per layer (l2), as in the paper, and the
lowest are removed across layers, keeping at least one head in every layer. Feed-forward units keep
the same count in every layer (the best of each layer), because a Hugging Face config has a single
`intermediate_size`: the pruned encoder stays a loadable model.

The removal itself is the library's: `PreTrainedModel.prune_heads` and
`transformers.pytorch_utils.prune_linear_layer`. Fewer heads and units are fewer multiplications;
what that buys in speed and costs in accuracy is measured in reports/pruning.
"""

import copy
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy

from ..errors import InvalidInput, MissingFile


def _layers(module) -> Sequence[Any]:
    for path in ("encoder.layer", "transformer.layer"):  # BERT/RoBERTa/ELECTRA/MiniLM, DistilBERT
        node = module
        try:
            for part in path.split("."):
                node = getattr(node, part)
        except AttributeError:
            continue
        return node
    raise InvalidInput(
        f"Pruning supports BERT-style encoders (BERT, RoBERTa, XLM-R, DistilBERT, ELECTRA, MPNet); "
        f"{type(module).__name__} has no encoder.layer or transformer.layer. Compress without "
        "--prune-heads/--prune-ffn."
    )


def feed_forward_pairs(module) -> List[Tuple[Any, Any, str, str]]:
    """Per layer: (owner of the up-projection, owner of the down-projection, their attribute names)."""
    pairs = []
    for layer in _layers(module):
        if hasattr(layer, "intermediate") and hasattr(layer, "output"):
            pairs.append((layer.intermediate, layer.output, "dense", "dense"))
        elif hasattr(layer, "ffn"):
            pairs.append((layer.ffn, layer.ffn, "lin1", "lin2"))
        else:
            raise InvalidInput(
                f"Cannot find the feed-forward block of {type(layer).__name__}: pruning supports BERT-style layers."
            )
    return pairs


def _ffn_config_key(config) -> str:
    return "hidden_dim" if getattr(config, "model_type", "") == "distilbert" else "intermediate_size"


def measure_importance(nlp, module, examples: Iterable, batch_size: int = 8) -> Dict[str, numpy.ndarray]:
    """|dL/d gate| per head [layers, heads] and per feed-forward unit [layers, units], summed over batches.

    `module` is the live torch encoder inside `nlp`; dropout is switched off while measuring and
    everything (forward, hooks, dropout rates, gradients, train/eval mode) is restored afterwards.
    """
    import torch
    from spacy.util import minibatch

    examples = list(examples)
    if not examples:
        raise InvalidInput("Pruning needs labelled examples to measure importance (--prune-data): the file holds none.")
    config = module.config
    n_layers, n_heads = int(config.num_hidden_layers), int(config.num_attention_heads)
    if getattr(config, "pruned_heads", None):
        raise InvalidInput("This encoder already had heads pruned; prune the pipeline it was made from instead.")
    head_gate = torch.ones(n_layers, n_heads, requires_grad=True)
    pairs = feed_forward_pairs(module)
    ffn_gates = [
        torch.ones(getattr(down, down_name).in_features, requires_grad=True) for _, down, _, down_name in pairs
    ]
    hooks = [
        getattr(down, down_name).register_forward_pre_hook(
            lambda _m, inputs, gate=gate: (inputs[0] * gate,) + tuple(inputs[1:])
        )
        for (_, down, _, down_name), gate in zip(pairs, ffn_gates)
    ]
    forward = module.forward

    def gated_forward(*args, **kwargs):
        kwargs["head_mask"] = head_gate
        return forward(*args, **kwargs)

    dropouts = {m: m.p for m in module.modules() if isinstance(m, torch.nn.Dropout)}
    sdpa_rates = {m: m.dropout_prob for m in module.modules() if isinstance(getattr(m, "dropout_prob", None), float)}
    was_training = module.training
    heads = numpy.zeros((n_layers, n_heads))
    units = numpy.zeros((n_layers, ffn_gates[0].numel()))
    try:
        module.forward = gated_forward
        for m in dropouts:
            m.p = 0.0
        for m in sdpa_rates:
            m.dropout_prob = 0.0
        for batch in minibatch(examples, batch_size):
            nlp.update(batch, sgd=False, drop=0.0, losses={})
            if head_gate.grad is None:
                raise InvalidInput(
                    "The pipeline's losses do not reach the transformer (no gradient on the head gates): "
                    "pruning needs a component that listens to it and is trained (not frozen)."
                )
            heads += head_gate.grad.abs().numpy()
            units += numpy.stack([g.grad.abs().numpy() for g in ffn_gates])
            head_gate.grad = None
            for g in ffn_gates:
                g.grad = None
            module.zero_grad(set_to_none=True)
    finally:
        del module.forward
        for hook in hooks:
            hook.remove()
        for m, p in dropouts.items():
            m.p = p
        for m, rate in sdpa_rates.items():
            m.dropout_prob = rate
        module.train(was_training)
    return {"heads": heads, "ffn": units, "n_examples": len(examples)}


def choose_heads(scores: numpy.ndarray, fraction: float) -> Dict[int, List[int]]:
    """Heads to remove per layer: the lowest layer-normalised scores, at least one head left per layer."""
    n_layers, n_heads = scores.shape
    norms = numpy.linalg.norm(scores, axis=1, keepdims=True)
    normalised = scores / numpy.where(norms > 0, norms, 1.0)
    n_remove = min(int(round(fraction * n_layers * n_heads)), n_layers * (n_heads - 1))
    remove: Dict[int, List[int]] = {}
    for flat in numpy.argsort(normalised, axis=None, kind="stable"):
        if n_remove == 0:
            break
        layer, head = divmod(int(flat), n_heads)
        if len(remove.get(layer, [])) < n_heads - 1:
            remove.setdefault(layer, []).append(head)
            n_remove -= 1
    return {layer: sorted(h) for layer, h in sorted(remove.items())}


def check_shares(heads_fraction: float, ffn_fraction: float) -> None:
    """Refuse shares outside [0, 1) before any importance is measured."""
    for name, value in (("--prune-heads", heads_fraction), ("--prune-ffn", ffn_fraction)):
        if not 0.0 <= value < 1.0:
            raise InvalidInput(f"{name} is the share of units to remove: a number in [0, 1), not {value}.")


def check_request(heads_fraction: float, ffn_fraction: float, data: Optional[Path]) -> None:
    """Refuse a pruning request that cannot run (bad shares, no labelled data) before any work."""
    check_shares(heads_fraction, ffn_fraction)
    if data is None:
        raise InvalidInput(
            "--prune-heads/--prune-ffn rank heads and units by their importance on labelled examples: "
            "pass --prune-data with a .spacy file of annotated docs (e.g. the dev set)."
        )
    if not Path(data).exists():
        raise MissingFile(f"--prune-data {data} does not exist.")


def prune_pipeline_encoder(nlp, module, heads_fraction: float, ffn_fraction: float, data: Path):
    """(pruned copy of the pipeline's encoder `module`, report), importance measured on the `data` docs."""
    from spacy.training import Corpus

    from ..families import refuse_pruning

    refuse_pruning(module.config, "The pipeline's transformer", heads=bool(heads_fraction))
    check_request(heads_fraction, ffn_fraction, data)
    importance = measure_importance(nlp, module, Corpus(str(data))(nlp))
    return prune_encoder(module, importance, heads_fraction, ffn_fraction)


def prune_encoder(module, importance: Dict[str, numpy.ndarray], heads_fraction: float, ffn_fraction: float):
    """(pruned copy of `module`, report): remove `heads_fraction` of the heads and of the feed-forward units."""
    import torch
    from transformers.pytorch_utils import prune_linear_layer

    check_shares(heads_fraction, ffn_fraction)
    pruned = copy.deepcopy(module)
    params_before = sum(p.numel() for p in pruned.parameters())
    n_heads = int(pruned.config.num_attention_heads)
    removed_heads = choose_heads(importance["heads"], heads_fraction) if heads_fraction else {}
    if removed_heads:
        pruned.prune_heads(removed_heads)
    units = importance["ffn"]
    n_units = units.shape[1]
    keep_units = n_units - int(round(ffn_fraction * n_units))
    if keep_units < n_units:
        for (up, down, up_name, down_name), scores in zip(feed_forward_pairs(pruned), units):
            keep = torch.as_tensor(numpy.sort(numpy.argsort(-scores, kind="stable")[:keep_units]), dtype=torch.long)
            setattr(up, up_name, prune_linear_layer(getattr(up, up_name), keep, dim=0))
            setattr(down, down_name, prune_linear_layer(getattr(down, down_name), keep, dim=1))
        setattr(pruned.config, _ffn_config_key(pruned.config), keep_units)
    heads_kept = [n_heads - len(removed_heads.get(layer, [])) for layer in range(importance["heads"].shape[0])]
    report = {
        "importance": "Michel et al. 2019: |dL/d gate| of the pipeline's own loss, summed over batches of labelled "
        "examples",
        "n_examples": int(importance["n_examples"]),
        "heads_fraction": heads_fraction,
        "ffn_fraction": ffn_fraction,
        "heads_kept_per_layer": heads_kept,
        "heads_removed": {str(layer): heads for layer, heads in removed_heads.items()},
        "ffn_units_kept_per_layer": keep_units,
        "ffn_units_original": n_units,
        "parameters_before": int(params_before),
        "parameters_after": int(sum(p.numel() for p in pruned.parameters())),
    }
    return pruned.eval(), report
