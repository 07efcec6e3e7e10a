"""Stages 4 and 5 of compress: write the ONNX pipeline (the rewritten config, the original's
vocab, tokenizer and heads, the new encoder) and check it against the original on the sample."""

from pathlib import Path
from typing import Dict, List

import spacy
import srsly
from spacy import util
from spacy.language import Language
from thinc.api import Config

from ..about import __version__
from ..component import BertprodTransformer
from ..errors import InvalidInput
from ..graph_heads import python_head_of
from ..sentence_vectors import SentencePooling
from ..sentence_vectors import resolve as resolve_pooling
from ..source import to_plain_components
from ..span_getters import STOCK_SPAN_GETTERS
from .settings import CompressSettings
from .steps import Graphs, Loaded, Shrunk, Step, log

# Listeners of spacy-transformers and spacy-curated-transformers -> ours, with the same arguments
# and the same weights layout.
OUR_LISTENERS = {
    "spacy-transformers.TransformerListener.v1": "spacy_bertprod.TransformerListener.v1",
    "spacy-curated-transformers.LastTransformerLayerListener.v1": "spacy_bertprod.LastLayerListener.v1",
    "spacy-curated-transformers.ScalarWeightingListener.v1": "spacy_bertprod.ScalarWeightingListener.v1",
    "spacy-curated-transformers.ScalarWeight.v1": "spacy_bertprod.ScalarWeight.v1",
}
TORCH_LIBRARIES = ("spacy-transformers.", "spacy-curated-transformers.")


def rewrite_config(config: Config, trf_name: str, onnx_model: Dict, batching: Dict) -> Config:
    """Point the transformer at ONNX and every stock listener/span getter at our torch-free ones."""
    config = Config(config)  # copy
    old = config["components"][trf_name]
    # spacy-curated-transformers windows whole docs' pieces (pieces.py): no span getter applies.
    get_spans = dict(old["model"].get("get_spans") or {"@misc": "spacy_bertprod.doc_spans.v1"})
    config["components"][trf_name] = {
        "factory": "bertprod_transformer",
        "max_batch_items": batching["max_batch_items"],
        "pipe_batch_tokens": batching["pipe_batch_tokens"],
        "model": {"@architectures": "spacy_bertprod.OnnxTransformer.v1", "get_spans": get_spans, **onnx_model},
        **{key: old[key] for key in ("sentence_vector", "normalize_vector") if key in old},
    }

    def visit(node):
        if isinstance(node, dict):
            if node.get("@architectures") in OUR_LISTENERS:
                node["@architectures"] = OUR_LISTENERS[node["@architectures"]]
            if node.get("@span_getters") in STOCK_SPAN_GETTERS:
                node["@misc"] = STOCK_SPAN_GETTERS[node.pop("@span_getters")]
            for value in node.values():
                visit(value)

    visit(config["components"])
    to_plain_components(config["components"])
    leftovers = sorted(n for n in set(_registered_names(config["components"])) if n.startswith(TORCH_LIBRARIES))
    if leftovers:
        raise InvalidInput(
            f"The pipeline still uses {leftovers} after rewriting, which needs torch. compress handles heads "
            f"that listen to the transformer through {sorted(OUR_LISTENERS)}; other listener kinds and "
            "components with their own copy of the transformer (replace_listeners) are not supported yet."
        )
    return config


def _registered_names(node) -> List[str]:
    names = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key.startswith("@") and isinstance(value, str):
                names.append(value)
            names.extend(_registered_names(value))
    return names


TORCH_REQUIREMENTS = ("spacy-transformers", "spacy-curated-transformers", "spacy-bertprod", "onnxruntime")


def _meta(nlp: Language, quantize: str, pieces: bool) -> Dict:
    import onnxruntime

    meta = dict(nlp.meta)
    keep = [r for r in meta.get("requirements", []) if not r.lower().replace("_", "-").startswith(TORCH_REQUIREMENTS)]
    major, minor = __version__.split(".")[:2]
    ort_major, ort_minor = onnxruntime.__version__.split(".")[:2]
    meta["requirements"] = keep + [
        f"spacy_bertprod>={__version__},<{major}.{int(minor) + 1}.0",
        f"onnxruntime>={ort_major}.{ort_minor}",
    ]
    if pieces:  # converted from spacy-curated-transformers: its piece encoders, without torch
        meta["requirements"].append("curated-tokenizers>=0.0.9,<0.1")
    meta["bertprod"] = {"compressed_with": __version__, "quantize": quantize}
    return meta


def write_pipeline(loaded: Loaded, shrunk: Shrunk, graphs: Graphs, settings: CompressSettings, out: Path) -> None:
    """The ONNX pipeline: rewritten config, the original's vocab, tokenizer and heads, the new encoder."""
    onnx_model = {
        "providers": list(settings.providers),
        "intra_op_num_threads": settings.intra_op_num_threads,
        "inter_op_num_threads": settings.inter_op_num_threads,
    }
    batching = {"max_batch_items": settings.max_batch_items, "pipe_batch_tokens": settings.pipe_batch_tokens}
    nlp, name = loaded.nlp, loaded.source.name
    new_config = rewrite_config(nlp.config, name, onnx_model, batching)
    specs = _plan_graph_heads(loaded, new_config, graphs) if settings.heads_in_graph else []
    new_nlp = util.load_model_from_config(new_config, auto_fill=True, validate=True)
    new_nlp.vocab.from_bytes(nlp.vocab.to_bytes())
    new_nlp.tokenizer.from_bytes(nlp.tokenizer.to_bytes())
    in_graph = {spec.component for spec in specs}
    for other, proc in nlp.pipeline:
        if other in in_graph:  # its model now sits inside GraphHead.v1
            new_proc = new_nlp.get_pipe(other)
            new_proc.from_bytes(proc.to_bytes(exclude=["model"]), exclude=["model"])
            head = python_head_of(new_proc.model)
            data = proc.model.to_bytes()
            head.from_bytes(portable_model_bytes(data, head) if loaded.source.is_curated else data)
        elif other != name and hasattr(proc, "to_bytes"):
            data = proc.to_bytes()
            if loaded.source.is_curated:
                data = without_foreign_attrs(data, new_nlp.get_pipe(other))
            new_nlp.get_pipe(other).from_bytes(data)
    trf = new_nlp.get_pipe(name)
    trf.set_tokenizer(shrunk.tokenizer)
    model_bytes = graphs.final.read_bytes()
    if specs:
        from .heads import append_heads

        model_bytes = append_heads(model_bytes, specs)
    trf.onnx_session.set_model(model_bytes, source=str(graphs.final))
    trf.set_width(int(shrunk.module.config.hidden_size))
    trf.set_pooling(source_pooling(loaded))
    new_nlp._link_components()
    new_nlp.meta.update(_meta(nlp, settings.quantize, loaded.source.is_curated))
    new_nlp.to_disk(out)


def without_foreign_attrs(data: bytes, new_proc) -> bytes:
    """A component's bytes made loadable into its torch-free model (`portable_model_bytes`)."""
    msg = srsly.msgpack_loads(data)
    if "model" not in msg or not hasattr(new_proc, "model"):
        return data
    msg["model"] = portable_model_bytes(msg["model"], new_proc.model)
    return srsly.msgpack_dumps(msg)


def portable_model_bytes(model_bytes: bytes, new_model) -> bytes:
    """A thinc model's bytes for `new_model`, node by node: attrs limited to those the new nodes
    have (spacy-curated-transformers' listeners keep their listener state in attrs only it can
    read), and a torch layer's weights (ScalarWeight) moved from its shim into params."""
    model_msg = srsly.msgpack_loads(model_bytes)
    nodes = list(new_model.walk())
    if len(nodes) != len(model_msg["attrs"]):
        return model_bytes  # thinc's own error names the mismatch
    model_msg["attrs"] = [{k: v for k, v in a.items() if k in n.attrs} for a, n in zip(model_msg["attrs"], nodes)]
    for i, node in enumerate(nodes):
        if model_msg["shims"][i] and not node.shims:
            model_msg["params"][i] = _shim_params(model_msg["shims"][i][0])
            model_msg["shims"][i] = []
    return srsly.msgpack_dumps(model_msg)


def _shim_params(shim_bytes: bytes) -> Dict:
    """The state dict a thinc PyTorchShim saved, as numpy params."""
    import io

    import torch

    state = torch.load(io.BytesIO(srsly.msgpack_loads(shim_bytes)["state"]), map_location="cpu")
    return {name: value.detach().float().numpy() for name, value in state.items()}


def _plan_graph_heads(loaded: Loaded, new_config: Config, graphs: Graphs) -> list:
    """Which heads move into the graph (their model blocks rewritten in `new_config`), logged."""
    from .heads import graph_head_config, plan_heads

    specs, kept = plan_heads(loaded.nlp, new_config["components"], loaded.source.name)
    for spec in specs:
        block = new_config["components"][spec.component]
        block["model"] = graph_head_config(block["model"], spec.component)
    graphs.heads = {"in_graph": [s.component for s in specs], "in_python": kept}
    log(f"    heads in the graph: {graphs.heads['in_graph'] or 'none'}")
    for component, reason in kept.items():
        log(f"    '{component}' stays in Python: {reason}")
    return specs


def source_pooling(loaded: Loaded) -> SentencePooling:
    """The original's sentence-vector pooling; for a spacy-transformers pipeline, its encoder folder's."""
    proc = loaded.nlp.get_pipe(loaded.source.name)
    if isinstance(proc, BertprodTransformer):
        return proc.pooling
    return resolve_pooling("auto", None, str(loaded.source.component_config["model"].get("name", "")))


def check_parity(loaded: Loaded, shrunk: Shrunk, graphs: Graphs, out: Path) -> Dict:
    """The written pipeline against the original on the sample: encoder, predictions, batch invariance."""
    from ..backends.onnx import OnnxSession
    from .parity import agreement_check, batch_invariance, encoder_parity, prediction_agreement

    texts = loaded.sample.texts
    reloaded = spacy.load(out)
    reference = OnnxSession(["CPUExecutionProvider"], 0, 1)
    reference.set_model(graphs.fp32.read_bytes(), source=str(graphs.fp32))
    candidate = reloaded.get_pipe(loaded.source.name).onnx_session
    docs = [loaded.nlp.make_doc(t) for t in texts]
    parity = encoder_parity(shrunk.module, reference, candidate, shrunk.tokenizer, docs)
    parity["predictions"] = prediction_agreement(loaded.nlp, reloaded, texts)
    parity["batch_invariance"] = batch_invariance(reloaded, texts, batch_sizes=(1, 64))
    parity["agreement_check"] = agreement_check(parity["predictions"], loaded.sample)
    if graphs.heads and graphs.heads["in_graph"]:
        from .heads import head_parity

        parity["heads_in_graph"] = head_parity(reloaded, loaded.source.name, texts, graphs.heads["in_graph"])
    return parity


def write_and_check(loaded: Loaded, shrunk: Shrunk, graphs: Graphs, settings, out: Path, timings):
    """Stages 4 and 5: write the ONNX pipeline to `out`, check it against the original."""
    with Step("Writing the ONNX pipeline", timings):
        write_pipeline(loaded, shrunk, graphs, settings, out)
    with Step("Checking parity on sample texts", timings):
        parity = check_parity(loaded, shrunk, graphs, out)
    return out, parity
