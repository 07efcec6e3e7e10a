"""Wrappers around a torch module's forward (bfloat16 autocast, random depth, word retention).

A wrapper is bound to the module and reaches the forward it wraps through the module, not
through a closure: `copy.deepcopy(module)` (pruning, vocabulary trimming in compress) then
gives a copy whose forward runs the copy. A closure over the original would make the copy run,
and torch.onnx export, the original's weights.
"""

import types
from typing import Callable


def wrap_forward(module, wrapper: Callable, key: str) -> None:
    """module.forward(*args, **kwargs) becomes wrapper(module, inner, *args, **kwargs), where
    inner is the forward before this call (the class's, or an earlier wrapper)."""
    inner_attr = f"_bertprod_forward_before_{key}"
    setattr(module, inner_attr, module.forward)

    def forward(self, *args, **kwargs):
        return wrapper(self, getattr(self, inner_attr), *args, **kwargs)

    module.forward = types.MethodType(forward, module)
