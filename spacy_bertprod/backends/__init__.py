"""Encoders behind the transformer component: ONNX Runtime (serving) and torch (training).

Each backend is a thinc layer mapping an `EncoderBatch` to hidden states, plus a `BackendIO`
that saves and loads its weights as real files (never pickles). `backend_io` picks the IO by the
layer's name, importing torch only for the torch backend.
"""
from dataclasses import dataclass
from typing import Optional

import numpy
from thinc.api import Model


@dataclass
class EncoderBatch:
    """A padded batch of wordpiece sequences."""

    input_ids: numpy.ndarray  # int64 (batch, length)
    attention_mask: numpy.ndarray  # int64 (batch, length)


ONNX_ENCODER = "bertprod_onnx_encoder"
TORCH_ENCODER = "bertprod_torch_encoder"


def backend_io(encoder: Model):
    """The save/load helper for an encoder layer (see OnnxIO and TorchIO)."""
    if encoder.name == ONNX_ENCODER:
        from .onnx import OnnxIO

        return OnnxIO(encoder)
    if encoder.name == TORCH_ENCODER:
        from .torch import TorchIO

        return TorchIO(encoder)
    raise ValueError(f"Unknown bertprod encoder layer '{encoder.name}'.")


def is_trainable(encoder: Optional[Model]) -> bool:
    return encoder is not None and encoder.name == TORCH_ENCODER
