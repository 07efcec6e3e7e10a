"""Offline graph fusion with onnxruntime.transformers.optimizer (Attention, SkipLayerNorm, ...)."""
from pathlib import Path
from typing import Any, Dict


def optimize_onnx(src: Path, dst: Path, config: Any) -> Dict[str, int]:
    """Fuse the exported graph for CPU; returns the fused-operator counts."""
    from onnxruntime.transformers.optimizer import optimize_model

    optimized = optimize_model(
        str(src),
        model_type="bert",  # the BERT fusions cover BERT, RoBERTa, DistilBERT, ALBERT, ELECTRA
        num_heads=int(config.num_attention_heads),
        hidden_size=int(config.hidden_size),
        opt_level=0,  # fusions only: ORT applies its own basic/extended passes at load time
        use_gpu=False,
    )
    optimized.save_model_to_file(str(dst))
    stats = optimized.get_fused_operator_statistics()
    return {op: int(n) for op, n in sorted(stats.items()) if n}
