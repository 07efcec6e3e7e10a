"""Depth on demand: train an encoder so that its first k layers work alone, then cut it to k.

`random_depth` (TorchTransformer.v2) makes a share of the training steps run only a prefix of
the encoder, of a depth drawn uniformly from 1 to L-1, so the heads learn to read the output of
any prefix, and the prefix layers learn to produce something readable. `compress --depth K`
then keeps the first K layers of the trained pipeline, with no retraining: one training run
gives the whole accuracy/speed curve, and the depth is chosen at compress time for the budget at
hand. Prefixes rather than LayerDrop's (Fan et al., 2019) independent layer skips, because a
prefix is exactly the sub-network the cut leaves, and because students made of a teacher's first
layers ("bottom", distill/student.py) are the ones that distilled best here.

A cut changes the model, so compress's int8 agreement check compares the int8 copy with the cut
torch pipeline, and what the cut costs is measured by `spacy evaluate` on the result.
"""

import functools
from typing import Any, Tuple

import torch

from .backends.forward_wrap import wrap_forward
from .errors import InvalidInput
from .families import family_of


def layer_list(module: torch.nn.Module, where: str) -> Tuple[str, str, torch.nn.ModuleList]:
    """(path of the parent module, attribute name, the ModuleList of the encoder's layers)."""
    family = family_of(module.config, where)
    if family.layer_prefix is None:
        raise InvalidInput(
            f"{where}: {family.label} shares one set of layer weights across its depth, so it has no separate layers "
            "to keep or drop. Use another family, or a student with fewer layers (bertprod make-student)."
        )
    path = family.layer_prefix.rstrip(".")
    parent_path, _, name = path.rpartition(".")
    layers = getattr(module.get_submodule(parent_path), name, None)
    if not isinstance(layers, torch.nn.ModuleList):
        raise InvalidInput(f"{where}: no layer list at '{path}' in this {family.label} model.")
    return parent_path, name, layers


def _set_depth_in_config(config: Any, depth: int) -> None:
    config.num_hidden_layers = depth
    if hasattr(config, "n_layers"):  # DistilBERT
        config.n_layers = depth


def keep_first_layers(module: torch.nn.Module, depth: int, where: str) -> int:
    """Cut `module` (in place) to its first `depth` layers; returns the depth it had."""
    parent_path, name, layers = layer_list(module, where)
    n_layers = len(layers)
    if not 1 <= depth <= n_layers:
        raise InvalidInput(f"--depth {depth}: {where} has {n_layers} layers; keep between 1 and {n_layers} of them.")
    setattr(module.get_submodule(parent_path), name, torch.nn.ModuleList(list(layers)[:depth]))
    _set_depth_in_config(module.config, depth)
    return n_layers


def train_at_random_depth(module: torch.nn.Module, probability: float, where: str = "The encoder") -> None:
    """Make `probability` of the module's training forward passes run a random prefix of its layers.

    The depth is drawn from torch's generator (seeded by spaCy's `system.seed`), uniformly from
    1 to L-1; evaluation, inference and export always run every layer.
    """
    if not 0.0 <= probability <= 1.0:
        raise InvalidInput(f"random_depth must be between 0 and 1, not {probability}.")
    parent_path, name, layers = layer_list(module, where)
    if probability == 0.0 or len(layers) < 2:
        return
    wrap_forward(module, functools.partial(_forward_at_random_depth, probability, parent_path, name), "random_depth")


def _forward_at_random_depth(probability: float, parent_path: str, name: str, module, inner, *args, **kwargs):
    if not (module.training and torch.is_grad_enabled()) or float(torch.rand(())) >= probability:
        return inner(*args, **kwargs)
    parent = module.get_submodule(parent_path)  # this module's own layers, also in a deep copy
    full = getattr(parent, name)
    depth = int(torch.randint(1, len(full), ()))
    setattr(parent, name, torch.nn.ModuleList(list(full)[:depth]))
    try:
        return inner(*args, **kwargs)
    finally:
        setattr(parent, name, full)
