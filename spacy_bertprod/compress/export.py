"""torch.onnx export of a HF encoder with dynamic batch and sequence axes."""

import inspect
from pathlib import Path
from typing import List

import torch

from ..backends.base import ALL_LAYERS_OUTPUT

OUTPUT_NAME = "last_hidden_state"


class _EncoderOnly(torch.nn.Module):
    """Return the last hidden state as a plain tensor (HF returns a ModelOutput), and with
    `all_layers` every layer's, stacked as (batch, sequence, layers + 1, width)."""

    def __init__(self, module: torch.nn.Module, input_names: List[str], all_layers: bool = False):
        super().__init__()
        self.module = module
        self.input_names = input_names
        self.all_layers = all_layers

    def forward(self, *inputs):
        kwargs = dict(zip(self.input_names, inputs))
        output = self.module(**kwargs, return_dict=True, output_hidden_states=self.all_layers)
        if not self.all_layers:
            return output.last_hidden_state
        return output.last_hidden_state, torch.stack(output.hidden_states, dim=2)


def encoder_input_names(module: torch.nn.Module) -> List[str]:
    names = ["input_ids", "attention_mask"]
    if "token_type_ids" in inspect.signature(module.forward).parameters:
        names.append("token_type_ids")
    return names


def export_onnx(module: torch.nn.Module, path: Path, opset: int = 17, all_layers: bool = False) -> List[str]:
    """Export to `path`; returns the input names of the graph."""
    names = encoder_input_names(module)
    length = 8
    dummy = [torch.ones((2, length), dtype=torch.long) for _ in names]
    dummy[0] = torch.randint(0, int(module.config.vocab_size), (2, length), dtype=torch.long)
    if "token_type_ids" in names:
        dummy[2] = torch.zeros((2, length), dtype=torch.long)
    axes = {name: {0: "batch", 1: "sequence"} for name in names}
    outputs = [OUTPUT_NAME] + ([ALL_LAYERS_OUTPUT] if all_layers else [])
    for name in outputs:
        axes[name] = {0: "batch", 1: "sequence"}
    # eval() on the wrapper too: the exporter restores the wrapper's training flag afterwards,
    # which would otherwise switch the encoder's dropout on for everything that follows.
    wrapper = _EncoderOnly(module, names, all_layers).eval()
    with torch.no_grad():
        torch.onnx.export(
            wrapper,
            tuple(dummy),
            str(path),
            input_names=names,
            output_names=outputs,
            dynamic_axes=axes,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,  # the TorchScript exporter's graphs are what ORT's BERT fusions match
        )
    return names
