"""Intermediate-layer distillation (TinyBERT's hidden-state loss), inside the torch encoder.

Student hidden state m (m = 0: the embeddings, 1..S: its layers) learns the teacher's hidden
state g(m) = m * T / S (TinyBERT, Jiao et al. 2020, §3.1), the very layers `make-student --pick
spread` copied (whatever the student was initialised from), so the student keeps what those
layers did while its upper part adapts. The teacher is
the fine-tuned torch teacher (a trained pipeline or a model directory) with the student's
vocabulary and width; it runs without gradient on the same padded batch, and the loss — the
squared error over the hidden dimensions (mean) and real wordpieces (sum, like spaCy's task
losses), summed over layers, times `weight` — joins the heads' gradient in one backward pass.

With `layer_attention_weight` > 0, student layer i's attention maps also learn teacher layer
g(i)'s (TinyBERT §3.1's attention loss, as MiniLM's KL between the distributions rather than
squared error): summed over heads and real query positions, averaged over heads when the counts
differ (a pruned student). Both encoders then run eager attention to return the maps.

Turned on by the torch transformer's `layer_teacher` setting (`configs/*.cfg`: `paths.layer_teacher`),
which builds `LayerDistillation` through the registered `spacy_bertprod.layer_distillation.v1`
and hands it to the torch backend as an extra loss; empty, the encoder trains exactly as before.
Inference never loads the teacher.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence

import torch
from spacy.util import registry

from ..backends.base import EncoderBatch
from ..backends.torch import LAYER_DISTILLATION, accepts_token_type_ids
from ..errors import InvalidInput, MissingFile
from ..source import load_teacher
from .student import default_layer_map

_TEACHERS: Dict[str, torch.nn.Module] = {}


def teacher_module(path: str, device: torch.device) -> torch.nn.Module:
    """The teacher's HF encoder, loaded once per process, frozen, in eval mode."""
    if path not in _TEACHERS:
        if not Path(path).exists():
            raise MissingFile(
                f"layer_teacher {path} does not exist: point it at the fine-tuned teacher pipeline "
                "(training/.../teacher/model-best) or its model directory."
            )
        module, _ = load_teacher(Path(path))
        module.eval()
        for parameter in module.parameters():
            parameter.requires_grad_(False)
        _TEACHERS[path] = module
    module = _TEACHERS[path]
    if next(module.parameters()).device != device:
        module.to(device)
    return module


def check_compatible(teacher: torch.nn.Module, student: torch.nn.Module, path: str) -> None:
    """Layer distillation compares hidden states position by position: same vocabulary and width."""
    t, s = teacher.config, student.config
    if t.hidden_size != s.hidden_size or t.vocab_size != s.vocab_size:
        raise InvalidInput(
            f"layer_teacher {path} has width {t.hidden_size} and {t.vocab_size} wordpieces, the student "
            f"{s.hidden_size} and {s.vocab_size}: layer distillation needs a student made from this "
            "teacher (`bertprod make-student`), with its tokenizer and width."
        )
    if s.num_hidden_layers > t.num_hidden_layers:
        raise InvalidInput(
            f"The student has {s.num_hidden_layers} layers and its layer_teacher {path} only "
            f"{t.num_hidden_layers}: a student cannot be deeper than its teacher."
        )


def hidden_state_map(n_teacher: int, n_student: int) -> List[int]:
    """For each student hidden state (embeddings first), the teacher hidden state it learns."""
    return [0] + [layer + 1 for layer in default_layer_map(n_teacher, n_student)]


def layer_loss(
    student_states: Sequence[torch.Tensor],
    teacher_states: Sequence[torch.Tensor],
    attention_mask: torch.Tensor,
    weight: float,
) -> torch.Tensor:
    """weight * sum over mapped layers and real wordpieces of mean-over-dims squared error."""
    mapping = hidden_state_map(len(teacher_states) - 1, len(student_states) - 1)
    mask = attention_mask.to(student_states[0].dtype).unsqueeze(-1)
    total = student_states[0].new_zeros(())
    for m, g in enumerate(mapping):
        diff = (student_states[m] - teacher_states[g].to(student_states[m].dtype)) * mask
        total = total + (diff**2).mean(dim=-1).sum()
    return total * weight


def attention_loss(
    student_maps: Sequence[torch.Tensor], teacher_maps: Sequence[torch.Tensor], attention_mask: torch.Tensor, weight
) -> torch.Tensor:
    """weight * sum over mapped layers, heads and real query positions of KL(teacher || student)."""
    mapping = [g - 1 for g in hidden_state_map(len(teacher_maps), len(student_maps))[1:]]
    query_mask = attention_mask.to(torch.float32)[:, None, :]  # (batch, 1, query)
    total = student_maps[0].new_zeros((), dtype=torch.float32)
    for s_map, t_map in zip(student_maps, (teacher_maps[g] for g in mapping)):
        s_map, t_map = s_map.float(), t_map.float()
        if s_map.shape[1] != t_map.shape[1]:
            s_map, t_map = s_map.mean(1, keepdim=True), t_map.mean(1, keepdim=True)
        kl = (t_map * (torch.log(t_map.clamp_min(1e-12)) - torch.log(s_map.clamp_min(1e-12)))).sum(-1)
        total = total + (kl * query_mask).sum()
    return total * weight


def teacher_layer_loss(
    path: str, weight: float, student: torch.nn.Module, batch, student_states, attention_weight=0.0, student_maps=None
) -> torch.Tensor:
    """The layer loss of one training batch (the student's padded `EncoderBatch`)."""
    device = student_states[0].device
    teacher = teacher_module(path, device)
    check_compatible(teacher, student, path)
    input_ids = torch.as_tensor(batch.input_ids, device=device)
    attention_mask = torch.as_tensor(batch.attention_mask, device=device)
    kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
    if accepts_token_type_ids(teacher):
        kwargs["token_type_ids"] = torch.zeros_like(input_ids)
    maps = attention_weight > 0 and student_maps is not None
    with torch.no_grad():
        output = teacher(**kwargs, output_hidden_states=True, output_attentions=maps)
    loss = layer_loss(student_states, output.hidden_states, attention_mask, weight)
    if maps:
        loss = loss + attention_loss(student_maps, output.attentions, attention_mask, attention_weight)
    return loss


@dataclass(frozen=True)
class LayerDistillation:
    """The torch backend's extra loss for intermediate-layer distillation (see the module docstring).

    Holds only the teacher's path and the weight: cheap to copy and pickle; the teacher itself is
    loaded once per process, on first use.
    """

    teacher: str
    weight: float
    attention_weight: float = 0.0
    name: str = "layers"

    @property
    def needs_attentions(self) -> bool:
        return self.attention_weight > 0

    def check(self, student: torch.nn.Module) -> None:
        check_compatible(teacher_module(self.teacher, next(student.parameters()).device), student, self.teacher)

    def __call__(self, student: torch.nn.Module, batch: EncoderBatch, hidden_states, attentions=None) -> torch.Tensor:
        return teacher_layer_loss(
            self.teacher, self.weight, student, batch, hidden_states, self.attention_weight, attentions
        )


@registry.misc(LAYER_DISTILLATION)
def create_layer_distillation(teacher: str, weight: float = 1.0, attention_weight: float = 0.0) -> LayerDistillation:
    return LayerDistillation(str(teacher), float(weight), float(attention_weight))
