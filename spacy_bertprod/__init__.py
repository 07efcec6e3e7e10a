"""spacy_bertprod: transformer pipelines for production — distil, compress (ONNX, int8), package.

Importing the package registers the `bertprod_transformer` factory, the architectures and the
span getters. Nothing here imports torch.
"""

from . import architectures, span_getters  # noqa: F401  (registers functions)
from .about import __version__
from .component import BertprodTransformer
from .data import TransformerData

__all__ = ["BertprodTransformer", "TransformerData", "__version__"]
