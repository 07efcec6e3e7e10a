"""Encoders behind the transformer component: ONNX Runtime (`onnx.py`, serving) and torch
(`torch.py`, training). This package imports neither: see `base.py`."""

from .base import (
    ONNX_ENCODER,
    TORCH_ENCODER,
    EncoderBatch,
    backend_io,
    is_trainable,
    pop_extra_losses,
    pretrained_folder,
)

__all__ = [
    "ONNX_ENCODER",
    "TORCH_ENCODER",
    "EncoderBatch",
    "backend_io",
    "is_trainable",
    "pop_extra_losses",
    "pretrained_folder",
]
