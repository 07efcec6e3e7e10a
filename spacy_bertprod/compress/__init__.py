"""Turn a trained transformer pipeline into an ONNX Runtime one: export, fuse, quantise, rewrite.

Needs the `train` extra (torch, transformers, onnx); the pipelines it writes do not.
"""

from .pipeline import CompressSettings, compress_pipeline

__all__ = ["CompressSettings", "compress_pipeline"]
