"""Offline graph fusion with onnxruntime.transformers.optimizer (Attention, Gelu, LayerNorm, ...).

SkipLayerNormalization is deliberately not fused: on x86 CPUs its ONNX Runtime kernel (1.32) runs
3-5x slower than the Add + LayerNormalization it replaces, and it was a fifth of a 3-layer int8
student's session time (reports/speed/README.md). The ONNX Runtime session is told not to fuse it
back at load time either (backends/onnx.py).

The BERT fusions also match RoBERTa, XLM-R, CamemBERT, DistilBERT, ALBERT and ELECTRA graphs. MPNet
(relative position bias), DeBERTa (disentangled attention) and ModernBERT (rotary, local/global
attention, GeGLU) have no attention pattern in ONNX Runtime's optimizer: their graphs get the
LayerNorm/GELU fusions only, run unfused attention and still quantise. `fusion_summary` says which
happened, for compress_report.json.
"""

from pathlib import Path
from typing import Any, Dict

from ..families import family_of

# Fused operators that replace a whole attention block.
ATTENTION_OPS = ("Attention", "MultiHeadAttention")


def optimize_onnx(src: Path, dst: Path, config: Any) -> Dict[str, int]:
    """Fuse the exported graph for CPU; returns the fused-operator counts."""
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions("bert")
    options.enable_skip_layer_norm = False
    options.enable_bias_skip_layer_norm = False
    # A pruned encoder (compress/prune.py) has its own head count per layer: 0 lets the fusion read
    # each layer's from the graph.
    pruned = bool(getattr(config, "pruned_heads", None))
    optimized = optimize_model(
        str(src),
        model_type="bert",  # the BERT fusions cover BERT, RoBERTa, DistilBERT, ALBERT, ELECTRA
        num_heads=0 if pruned else int(config.num_attention_heads),
        hidden_size=0 if pruned else int(config.hidden_size),
        optimization_options=options,
        opt_level=0,  # fusions only: ORT applies its own basic/extended passes at load time
        use_gpu=False,
    )
    optimized.save_model_to_file(str(dst))
    stats = optimized.get_fused_operator_statistics()
    return {op: int(n) for op, n in sorted(stats.items()) if n}


def fusion_summary(config: Any, stats: Dict[str, int]) -> Dict[str, Any]:
    """Whether attention was fused, and why not when it was not."""
    family = family_of(config, "The encoder")
    fused = sum(stats.get(op, 0) for op in ATTENTION_OPS)
    if fused:
        note = f"attention fused in {fused} of {int(config.num_hidden_layers)} layers"
    elif family.attention_fusion:
        note = f"attention not fused: ONNX Runtime's BERT pattern did not match this {family.label} graph"
    else:
        note = f"attention unfused: ONNX Runtime's optimizer has no attention pattern for {family.label}"
    return {"family": family.label, "attention_fused_layers": fused, "operators": dict(stats), "note": note}
