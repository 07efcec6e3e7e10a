"""Inference through an onnxruntime InferenceSession, wrapped as a thinc layer.

The layer keeps the ONNX model as bytes and builds the session lazily: sessions can be neither
pickled (nlp.pipe(n_process>1)) nor deep-copied (Model.copy, replace_listeners), bytes can.
The bytes are written to the pipeline folder as a real `model.onnx` file by the component,
not through thinc's msgpack serialisation (which is slow for big blobs and fails past 2 GB).
"""

import hashlib
import threading
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy
from spacy.util import registry
from thinc.api import Model

from ..errors import Errors, InvalidInput, MissingFile, MissingPackage
from .base import (
    ALL_LAYERS_OUTPUT,
    BACKEND_IO,
    HEAD_INPUTS,
    ONNX_ENCODER,
    ONNX_SESSION,
    POOL_ROWS,
    POOL_WEIGHTS,
    TOKEN_MASK,
    TOKEN_WEIGHTS,
    EncoderBatch,
    head_components,
)

ONNX_FILE = "model.onnx"
# Load-time fusions left off: ORT 1.32's SkipLayerNormalization CPU kernel is 3-5x slower than the
# Add + LayerNormalization it would replace (compress leaves it unfused too, see compress/optimize.py).
RUNTIME_FUSIONS_OFF = ["SkipLayerNormFusion"]


class OnnxSession:
    """ONNX model bytes plus a session built on first use (thread-safe)."""

    def __init__(
        self, providers: List[str], intra_op_num_threads: int, inter_op_num_threads: int, allow_spinning: bool = True
    ):
        self.providers = list(providers)
        self.intra_op_num_threads = intra_op_num_threads
        self.inter_op_num_threads = inter_op_num_threads
        self.allow_spinning = allow_spinning
        self.model_bytes: Optional[bytes] = None
        self.source = "<memory>"
        self.profile_prefix: Optional[str] = None  # ONNX Runtime's profiler (`bertprod profile-encoder`)
        self._session = None
        self._heads: Optional[List[str]] = None
        self._lock = threading.Lock()

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_session"] = None
        state["_lock"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __deepcopy__(self, memo):
        copied = OnnxSession(self.providers, self.intra_op_num_threads, self.inter_op_num_threads, self.allow_spinning)
        copied.model_bytes = self.model_bytes  # immutable: sharing is safe
        copied.source = self.source
        return copied

    def set_model(self, model_bytes: bytes, source: str = "<memory>", *, validate: bool = True) -> None:
        self.model_bytes = bytes(model_bytes)
        self.source = source
        self._session = None
        self._heads = None
        if validate:
            self.session  # fail now, naming the file, rather than on the first doc

    @property
    def head_components(self) -> List[str]:
        """Components whose scores the graph computes (compress --heads-in-graph)."""
        if self._heads is None:
            self._heads = head_components([o.name for o in self.session.get_outputs()])
        return self._heads

    @property
    def has_all_layers(self) -> bool:
        """Whether the graph also outputs every layer's hidden states (ALL_LAYERS_OUTPUT)."""
        return any(o.name == ALL_LAYERS_OUTPUT for o in self.session.get_outputs())

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.model_bytes or b"").hexdigest()

    @property
    def session_is_built(self) -> bool:
        """Whether the InferenceSession exists yet (it is built on first use, also after a copy)."""
        return self._session is not None

    @property
    def session(self):
        if self._session is None:
            with self._lock:
                if self._session is None:
                    self._session = self._build()
        return self._session

    def _build(self):
        if self.model_bytes is None:
            raise InvalidInput(
                "The ONNX encoder has no model. OnnxTransformer.v1 pipelines are created by "
                "`python -m spacy bertprod compress IN_PIPELINE OUT_PIPELINE`, not by "
                "`nlp.initialize()`: compress a trained pipeline, or load one that was compressed."
            )
        try:
            import onnxruntime
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise MissingPackage(
                Errors.E003.format(what="spacy_bertprod's ONNX backend", package="onnxruntime", install="onnxruntime")
            ) from err
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.intra_op_num_threads
        options.inter_op_num_threads = self.inter_op_num_threads
        # Spinning pool threads wait for the next run at full speed: good back to back, but they
        # burn a core while Python does spaCy's part or other processes need it.
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if self.allow_spinning else "0")
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self.profile_prefix:
            options.enable_profiling = True
            options.profile_file_prefix = self.profile_prefix
        available = onnxruntime.get_available_providers()
        missing = [p for p in self.providers if p not in available]
        if missing:
            raise InvalidInput(
                f"ONNX Runtime providers {missing} are not available here (available: {available}). "
                "Set [components.<transformer>.model.providers] to available ones, "
                'e.g. ["CPUExecutionProvider"].'
            )
        try:
            return onnxruntime.InferenceSession(
                self.model_bytes, options, providers=self.providers, disabled_optimizers=RUNTIME_FUSIONS_OFF
            )
        except Exception as err:
            raise InvalidInput(
                f"Could not load the ONNX model from {self.source}: {err}. The file is truncated, "
                "corrupted or not an ONNX model: re-create it with `python -m spacy bertprod "
                "compress`."
            ) from err

    def run(self, batch: EncoderBatch) -> numpy.ndarray:
        (hidden,) = self.run_outputs(batch, ["last_hidden_state"])
        return hidden

    def run_outputs(self, batch: EncoderBatch, output_names: List[str]) -> List[numpy.ndarray]:
        """Run on a padded batch and return the named graph outputs (calibration reads inner tensors)."""
        session = self.session
        return session.run(list(output_names), _feeds(session.get_inputs(), batch, self.source))


def _no_tokens(name: str, shape) -> numpy.ndarray:
    """A head input for a batch whose heads' scores are not wanted: tokens aligned to nothing."""
    rows, length = shape
    shapes = {TOKEN_WEIGHTS: (rows, 2, length), TOKEN_MASK: (rows, 2), POOL_WEIGHTS: (rows, len(POOL_ROWS), length)}
    return numpy.zeros(shapes[name], dtype="float32")


def _feeds(inputs, batch: EncoderBatch, source: str) -> Dict[str, numpy.ndarray]:
    feeds: Dict[str, numpy.ndarray] = {}
    for node in inputs:
        if node.name == "input_ids":
            feeds[node.name] = batch.input_ids
        elif node.name == "attention_mask":
            feeds[node.name] = batch.attention_mask
        elif node.name == "token_type_ids":
            feeds[node.name] = numpy.zeros_like(batch.input_ids)
        elif node.name in batch.extra:
            feeds[node.name] = batch.extra[node.name]
        elif node.name in HEAD_INPUTS:  # hidden states only (calibration, parity, benchmarks)
            feeds[node.name] = _no_tokens(node.name, batch.input_ids.shape)
        else:
            raise InvalidInput(
                f"The ONNX model in {source} asks for an input '{node.name}' that spacy_bertprod does not know "
                "how to feed (expected input_ids, attention_mask, token_type_ids, or token_weights, "
                "token_mask and pool_weights for heads in the graph)."
            )
    return feeds


def OnnxEncoder(
    providers: List[str], intra_op_num_threads: int = 0, inter_op_num_threads: int = 1, allow_spinning: bool = True
) -> Model[EncoderBatch, numpy.ndarray]:
    """A thinc layer running an ONNX encoder: padded wordpieces -> (batch, length, width)."""
    return Model(
        ONNX_ENCODER,
        _forward,
        attrs={ONNX_SESSION: OnnxSession(providers, intra_op_num_threads, inter_op_num_threads, allow_spinning)},
    )


def _forward(model: Model, batch: EncoderBatch, is_train: bool) -> Tuple[numpy.ndarray, callable]:
    hidden = model.attrs[ONNX_SESSION].run(batch)

    def backprop(d_hidden):
        raise InvalidInput(
            "The ONNX backend is inference-only and cannot be trained. To keep training, use "
            "the pipeline from before `compress` (spacy_bertprod.TorchTransformer.v2 or "
            "spacy-transformers), or freeze this component: [training] frozen_components = "
            '["<name>"] and annotating_components = ["<name>"].'
        )

    return hidden, backprop


@registry.misc(BACKEND_IO[ONNX_ENCODER])
class OnnxIO:
    """Saves and loads the ONNX encoder's model as a file in the component folder."""

    def __init__(self, encoder: Model):
        self.onnx: OnnxSession = encoder.attrs[ONNX_SESSION]

    def initialize(self) -> None:
        """Nothing to load (compress or from_disk put the model in): check that it is there.
        Returns no tokenizer: the component already has the one saved with the model."""
        self.onnx.session  # raises a clear error when there is no model
        return None

    def describe(self) -> Dict[str, str]:
        return {"backend": "onnx", "onnx_sha256": self.onnx.sha256}

    def save(self, folder: Path) -> None:
        if self.onnx.model_bytes is None:
            raise InvalidInput("Cannot save an ONNX transformer that has no model yet.")
        (folder / ONNX_FILE).write_bytes(self.onnx.model_bytes)

    def load(self, folder: Path, cfg: Dict) -> None:
        path = folder / ONNX_FILE
        if not path.exists():
            raise MissingFile(
                f"The ONNX model file {path} is missing. The pipeline folder is incomplete: "
                "copy it again or re-run `python -m spacy bertprod compress`."
            )
        data = path.read_bytes()
        expected = cfg.get("onnx_sha256")
        if expected and hashlib.sha256(data).hexdigest() != expected:
            raise InvalidInput(
                f"The ONNX model file {path} does not match the checksum recorded in its cfg: "
                "it is truncated or was changed after compress. Copy the pipeline again or "
                "re-run `python -m spacy bertprod compress`."
            )
        self.onnx.set_model(data, source=str(path))
        width = self.onnx.session.get_outputs()[0].shape[-1]
        if isinstance(width, int) and cfg.get("width") and width != cfg["width"]:
            raise InvalidInput(
                f"{path} produces {width}-wide vectors but this component (and the heads listening "
                f"to it) expect {cfg['width']}: the ONNX file comes from another model. Re-run "
                "`python -m spacy bertprod compress` on the pipeline the heads were trained in."
            )

    def to_bytes(self) -> bytes:
        return self.onnx.model_bytes or b""

    def from_bytes(self, data: bytes, cfg: Dict) -> None:
        self.onnx.set_model(data)
