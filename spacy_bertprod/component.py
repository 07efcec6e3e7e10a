"""The `bertprod_transformer` pipeline component (torch-free unless its backend is torch).

Like spacy-transformers' `transformer`: it writes `doc._.trf_data` and feeds listeners in
downstream ner/textcat heads during training. Unlike it, the encoder can be ONNX Runtime, and the
weights are saved as real files (model.onnx, or config.json + model.safetensors) next to a
`tokenizer.json`; nothing in the folder is ever unpickled.
"""

from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Union

import srsly
from spacy import util
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc
from spacy.training import Example, validate_examples
from spacy.vocab import Vocab
from thinc.api import Config, Model

from .about import FORMAT_VERSION, __version__
from .backends import EncoderBatch, backend_io, is_trainable, pop_extra_losses, pretrained_folder
from .data import TransformerData, install_trf_data_extension
from .errors import Errors, InvalidInput, MissingFile
from .listener import TransformerListener
from .sentence_vectors import SentencePooling, install_hooks, install_sentence_vector_extension, resolve
from .tokenizer_files import Tokenizer, file_name, load_tokenizer, tokenizer_cfg, tokenizer_data
from .transformer_model import (
    encode_windows,
    encoder_of,
    get_tokenizer,
    max_batch_items_of,
    onnx_session_of,
    pad_batch,
    plan_buckets,
    set_max_batch_items,
    set_tokenizer,
)

DEFAULT_CONFIG_STR = """
[model]
@architectures = "spacy_bertprod.TorchTransformer.v2"
name = ""

[model.get_spans]
@misc = "spacy_bertprod.strided_spans.v1"
window = 128
stride = 96
"""
DEFAULT_CONFIG = Config().from_str(DEFAULT_CONFIG_STR)


@Language.factory(
    "bertprod_transformer",
    assigns=["doc._.trf_data"],
    default_config={
        "model": DEFAULT_CONFIG["model"],
        "max_batch_items": 2048,
        "pipe_batch_tokens": 8192,
        "sentence_vector": "auto",
        "normalize_vector": None,
    },
)
def make_bertprod_transformer(
    nlp: Language,
    name: str,
    model: Model,
    max_batch_items: int,
    pipe_batch_tokens: int,
    sentence_vector: str,
    normalize_vector: Optional[bool],
) -> "BertprodTransformer":
    """max_batch_items: most padded wordpieces per encoder call (windows are sorted by length
    and bucketed; 2048 measured fastest for MiniLM on 2 cores). pipe_batch_tokens: nlp.pipe()
    gathers docs until they hold this many tokens, so that many windows are length-sorted
    together; memory stays bounded by tokens, not by doc count. sentence_vector: how doc.vector,
    span.vector and doc.similarity pool the encoder's output ("auto": a sentence-transformers
    folder's own pooling, else the mean; "mean", "cls", "max"; "none": spaCy's defaults);
    normalize_vector: L2-normalise them (null: as the folder says; see sentence_vectors.py)."""
    return BertprodTransformer(
        nlp.vocab,
        model,
        name=name,
        max_batch_items=max_batch_items,
        pipe_batch_tokens=pipe_batch_tokens,
        sentence_vector=sentence_vector,
        normalize_vector=normalize_vector,
    )


class BertprodTransformer(TrainablePipe):
    """Run a transformer encoder over docs and share its output with listening components."""

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str = "transformer",
        *,
        max_batch_items: int = 2048,
        pipe_batch_tokens: int = 8192,
        sentence_vector: str = "auto",
        normalize_vector: Optional[bool] = None,
    ):
        install_trf_data_extension()
        install_sentence_vector_extension()
        if max_batch_items < 1 or pipe_batch_tokens < 1:
            raise InvalidInput(
                f"max_batch_items ({max_batch_items}) and pipe_batch_tokens ({pipe_batch_tokens}) must be positive."
            )
        self._vector_settings = (sentence_vector, normalize_vector)
        self.pooling = resolve(sentence_vector, normalize_vector, None)  # refuses an unknown setting
        self.vocab = vocab
        self.model = model
        self.name = name
        set_max_batch_items(self.model, max_batch_items)
        self.cfg: Dict = {"max_batch_items": max_batch_items, "pipe_batch_tokens": pipe_batch_tokens}
        self.listener_map: Dict[str, List[TransformerListener]] = {}

    # -- the encoder, for compress, distillation and measurement ------------------------------
    @property
    def encoder(self) -> Model:
        """The encoder layer: ONNX Runtime (inference) or torch (training)."""
        return encoder_of(self.model)

    @property
    def is_trainable(self) -> bool:
        return is_trainable(self.encoder)

    @property
    def backend(self):
        """The encoder's saving/loading helper (backends' OnnxIO or TorchIO)."""
        return backend_io(self.encoder)

    @property
    def tokenizer(self) -> Tokenizer:
        return get_tokenizer(self.model)

    @property
    def onnx_session(self):
        """The ONNX Runtime session (backends/onnx.py's OnnxSession); None for a torch encoder."""
        return onnx_session_of(self.encoder)

    def encoder_batches(self, docs: Iterable[Doc], planner=None) -> Iterator[EncoderBatch]:
        """The padded wordpiece batches the encoder runs on `docs`, exactly as `pipe` builds them
        (benchmarks time the session on them). `planner(lengths, max_items)` replaces the length
        bucketing (`bertprod compare-encoders` compares planners)."""
        planner = planner or plan_buckets
        pad_id = self.tokenizer.pad_id
        for chunk in self.token_batches(docs):
            sequences = encode_windows(self.model, chunk).sequences
            for bucket in planner([len(s.ids) for s in sequences], max_batch_items_of(self.model)):
                yield pad_batch([sequences[i] for i in bucket], pad_id)

    # -- listeners (as in spacy-transformers / spaCy's tok2vec) --------------------------------
    @property
    def listeners(self) -> List[TransformerListener]:
        return [m for c in self.listening_components for m in self.listener_map[c]]

    @property
    def listening_components(self) -> List[str]:
        return list(self.listener_map.keys())

    def add_listener(self, listener: TransformerListener, component_name: str) -> None:
        if self.model.has_dim("nO"):
            width = self.model.get_dim("nO")
            if listener.has_dim("nO") is None:
                listener.set_dim("nO", width)
            elif listener.get_dim("nO") != width:
                raise InvalidInput(
                    f"Component '{component_name}' was trained on {listener.get_dim('nO')}-wide transformer "
                    f"vectors but '{self.name}' produces {width}-wide ones: the encoder and the heads "
                    "come from different pipelines. Re-train the heads on this encoder, or put back "
                    "the encoder they were trained with."
                )
        self.listener_map.setdefault(component_name, [])
        if listener not in self.listener_map[component_name]:
            self.listener_map[component_name].append(listener)

    def remove_listener(self, listener: TransformerListener, component_name: str) -> bool:
        if listener in self.listener_map.get(component_name, []):
            self.listener_map[component_name].remove(listener)
            if not self.listener_map[component_name]:
                del self.listener_map[component_name]
            return True
        return False

    def find_listeners(self, component) -> None:
        """Register the listeners in `component` whose upstream is '*' or this component's name."""
        names = ("*", self.name)
        if isinstance(getattr(component, "model", None), Model):
            for node in component.model.walk():
                if isinstance(node, TransformerListener) and node.upstream_name in names:
                    self.add_listener(node, component.name)

    # -- prediction ------------------------------------------------------------------------------
    def __call__(self, doc: Doc) -> Doc:
        self.set_annotations([doc], self.predict([doc]))
        return doc

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        for batch in self.token_batches(stream):
            self.set_annotations(batch, self.predict(batch))
            yield from batch

    def token_batches(self, stream: Iterable[Doc]) -> Iterator[List[Doc]]:
        """Batches holding about `pipe_batch_tokens` tokens each.

        Counting tokens rather than docs keeps memory bounded for long docs and gives short docs
        (tweets, queries) enough company to fill well-sorted length buckets; spaCy's doc-count
        `batch_size` is deliberately not used here.
        """
        batch: List[Doc] = []
        n_tokens = 0
        for doc in stream:
            batch.append(doc)
            n_tokens += len(doc)
            if n_tokens >= self.cfg["pipe_batch_tokens"]:
                yield batch
                batch, n_tokens = [], 0
        if batch:
            yield batch

    def predict(self, docs: Iterable[Doc]) -> List[TransformerData]:
        docs = list(docs)
        if not docs:
            return []
        return self.model.predict(docs)

    def set_annotations(self, docs: Iterable[Doc], outputs: List[TransformerData]) -> None:
        tag = self.pooling.tag
        for doc, data in zip(docs, outputs):
            data.pooling = tag
            doc._.trf_data = data
            if self.pooling.mode != "none":
                install_hooks(doc)

    def set_pooling(self, pooling: SentencePooling) -> None:
        """How sentence vectors are pooled (initialize, from_disk, or compress from the original)."""
        self.pooling = pooling

    # -- training --------------------------------------------------------------------------------
    def update(self, examples: Iterable[Example], *, drop: float = 0.0, sgd=None, losses=None) -> Dict[str, float]:
        """Run the encoder and hand its output to the listeners; the last one triggers backprop."""
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, "BertprodTransformer.update")
        if not self.is_trainable:
            raise InvalidInput(
                f"Component '{self.name}' runs on ONNX Runtime, which is inference-only. Train the "
                "pipeline from before `compress`, or freeze this component: "
                f'[training] frozen_components = ["{self.name}"] and '
                f'annotating_components = ["{self.name}"].'
            )
        docs = [eg.predicted for eg in examples]
        outputs, backprop = self.model.begin_update(docs)
        for loss_name, value in pop_extra_losses(self.encoder).items():  # e.g. layer distillation
            losses[f"{self.name}_{loss_name}"] = losses.get(f"{self.name}_{loss_name}", 0.0) + value
        d_hiddens: Optional[list] = None

        def accumulate_gradient(d_outputs):
            nonlocal d_hiddens
            for d in d_outputs:
                losses[self.name] += float((d**2).sum())
            if d_hiddens is None:
                d_hiddens = [d.copy() for d in d_outputs]
            else:
                for total, d in zip(d_hiddens, d_outputs):
                    total += d
            # The docs get no gradient; a list (as spaCy's Tok2Vec returns) lets a layer that
            # combines the listener with others (concatenate.v1) add theirs to it.
            return []

        def backprop_all(d_outputs):
            nonlocal d_hiddens
            accumulate_gradient(d_outputs)
            backprop(d_hiddens)
            if sgd is not None:
                self.finish_update(sgd)
            d_hiddens = None
            return docs

        batch_id = TransformerListener.get_batch_id(docs)
        for listener in self.listeners[:-1]:
            listener.receive(batch_id, outputs, accumulate_gradient)
        if self.listeners:
            self.listeners[-1].receive(batch_id, outputs, backprop_all)
        return losses

    def get_loss(self, examples, scores) -> None:
        pass

    def initialize(self, get_examples: Callable[[], Iterable[Example]], *, nlp: Optional[Language] = None) -> None:
        """Load the pretrained encoder (torch backend) and connect listeners."""
        tokenizer = self.backend.initialize()
        if tokenizer is not None:
            self.set_tokenizer(tokenizer)
        encoder_dir = pretrained_folder(self.encoder)
        self.set_pooling(resolve(*self._vector_settings, encoder_dir))
        get_tokenizer(self.model)  # raises a clear error when there is none
        self.sync_width()
        if nlp is not None:
            for i, (name, proc) in enumerate(nlp.pipeline):
                if proc is self:
                    for _, downstream in nlp.pipeline[i:]:
                        self.find_listeners(downstream)
                    break

    def set_tokenizer(self, tokenizer: Tokenizer) -> None:
        """Install the tokenizer (initialize, from_disk, or compress after trimming)."""
        set_tokenizer(self.model, tokenizer)

    def set_width(self, width: int) -> None:
        """The width of the vectors the encoder produces (compress: the exported model's)."""
        self.cfg["width"] = int(width)
        self.sync_width()

    def sync_width(self) -> None:
        """Give the model and every listener the encoder's width; refuse listeners of another width."""
        encoder = self.encoder
        width = self.cfg.get("width") or (encoder.get_dim("nO") if encoder.has_dim("nO") else None)
        if width:
            self.cfg["width"] = int(width)
            self.model.set_dim("nO", int(width), force=True)
            for component, listeners in self.listener_map.items():
                for listener in listeners:
                    if listener.has_dim("nO") and listener.get_dim("nO") != int(width):
                        self.add_listener(listener, component)  # raises with a clear message

    # -- serialization ---------------------------------------------------------------------------
    def _cfg_to_save(self) -> Dict:
        tokenizer = get_tokenizer(self.model)
        cfg = dict(self.cfg)
        cfg.update(
            format_version=FORMAT_VERSION,
            bertprod_version=__version__,
            **tokenizer_cfg(tokenizer),
            sentence_pooling=self.pooling.to_cfg(),
            **self.backend.describe(),
        )
        return cfg

    def _check_cfg(self, cfg: Dict, where: str) -> None:
        version = cfg.get("format_version")
        if version is None or version > FORMAT_VERSION:
            raise InvalidInput(
                Errors.E002.format(
                    where=where,
                    saved_version=cfg.get("bertprod_version", "?"),
                    format=version,
                    version=__version__,
                    expected=FORMAT_VERSION,
                )
            )
        expected = "torch" if self.is_trainable else "onnx"
        if cfg.get("backend") != expected:
            raise InvalidInput(
                f"{where} holds a {cfg.get('backend')} encoder but the config asks for {expected}: "
                "the config.cfg and the component folder do not belong together."
            )

    def _load_cfg(self, cfg: Dict, tokenizer_data) -> None:
        self.cfg.update({k: v for k, v in cfg.items() if k in ("width",)})
        self.set_pooling(resolve(*self._vector_settings, None, cfg.get("sentence_pooling")))
        self.set_tokenizer(load_tokenizer(cfg, tokenizer_data))

    def to_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> None:
        path = util.ensure_path(path)
        cfg = self._cfg_to_save()
        name, data = tokenizer_data(get_tokenizer(self.model))
        serialize = {
            "cfg": lambda p: srsly.write_json(p, cfg),
            name: lambda p: p.write_bytes(data) if isinstance(data, bytes) else p.write_text(data, encoding="utf8"),
            "model": lambda p: self.model.to_disk(p),
            "weights": lambda p: self.backend.save(path),
        }
        util.to_disk(path, serialize, exclude)

    def from_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> "BertprodTransformer":
        path = util.ensure_path(path)
        cfg_path = path / "cfg"
        if not cfg_path.exists():
            raise MissingFile(f"{cfg_path} is missing: {path} is not a saved bertprod_transformer.")
        cfg = srsly.read_json(cfg_path)
        self._check_cfg(cfg, str(path))
        tok_path = path / file_name(cfg)
        if not tok_path.exists():
            raise MissingFile(
                f"{tok_path} is missing: the pipeline folder is incomplete. Copy it again, or "
                "re-create it with `python -m spacy bertprod compress`."
            )
        try:
            self._load_cfg(cfg, tok_path.read_bytes())
        except Exception as err:
            raise InvalidInput(f"Could not load the tokenizer from {tok_path}: {err}") from err
        self.model.from_disk(path / "model")
        self.backend.load(path, cfg)
        self.sync_width()
        return self

    def to_bytes(self, *, exclude: Iterable[str] = tuple()) -> bytes:
        name, data = tokenizer_data(get_tokenizer(self.model))
        msg = {
            "cfg": self._cfg_to_save(),
            name: data,
            "model": self.model.to_bytes(),
            "weights": self.backend.to_bytes(),
        }
        return srsly.msgpack_dumps(msg)

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()) -> "BertprodTransformer":
        msg = srsly.msgpack_loads(bytes_data)
        self._check_cfg(msg["cfg"], "These bytes")
        self._load_cfg(msg["cfg"], msg[file_name(msg["cfg"])])
        self.model.from_bytes(msg["model"])
        self.backend.from_bytes(msg["weights"], msg["cfg"])
        self.sync_width()
        return self
