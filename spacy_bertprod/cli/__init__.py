"""`python -m spacy bertprod ...`: registered through spaCy's `spacy_cli` entry point group.

One module per domain (compress, distill, data, measure, serving, annotate); `_util.py` holds what they
share. Kept import-light: spaCy imports this package for every CLI call, so torch is imported
only inside the commands that need it.
"""

from . import annotate, compress, data, distill, measure, serving  # noqa: F401  (register the commands)
from ._util import bertprod_cli

__all__ = ["bertprod_cli"]
