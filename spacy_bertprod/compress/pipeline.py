"""`compress`: rewrite a trained transformer pipeline onto ONNX Runtime, heads untouched.

In named stages, each a function below: check the request → load the pipeline and strip its
training-only components → shrink the encoder (cut its depth, prune, trim the vocabulary) → export, fuse,
quantise and calibrate → write the ONNX pipeline → check parity → report. Output is written to a
temporary folder next to OUT and renamed into place only when complete, so an interrupted run
never leaves a half-written pipeline that looks valid.
"""

import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import spacy
from spacy import util
from spacy.language import Language
from thinc.api import Config

from ..about import __version__
from ..component import BertprodTransformer
from ..families import family_of
from ..graph_heads import python_head_of
from ..sentence_vectors import SentencePooling
from ..sentence_vectors import resolve as resolve_pooling
from ..source import TransformerSource, find_transformer, strip_training_components, to_plain_components
from ..span_getters import STOCK_SPAN_GETTERS
from ..tokenization import WordpieceTokenizer
from ..transformer_model import encoder_batches
from .optimize import fusion_summary
from .parity import FALLBACK_CHANGED_SHARE
from .quantize import QuantizeSettings
from .sample import CalibrationSample, choose_sample

REPORT_FILE = "compress_report.json"
STOCK_LISTENER = "spacy-transformers.TransformerListener.v1"
OUR_LISTENER = "spacy_bertprod.TransformerListener.v1"


@dataclass
class CompressSettings:
    quantize: str = "int8"  # "int8" or "fp32"
    optimize: bool = True
    quantization: QuantizeSettings = field(default_factory=QuantizeSettings)
    providers: List[str] = field(default_factory=lambda: ["CPUExecutionProvider"])
    intra_op_num_threads: int = 0
    inter_op_num_threads: int = 1
    opset: int = 17
    # Batching of the output pipeline (see the bertprod_transformer factory); the defaults were
    # the fastest measured for MiniLM on 2 cores.
    max_batch_items: int = 2048
    pipe_batch_tokens: int = 8192
    force: bool = False
    # Calibration/parity texts (None: the pipeline's own corpora or the built-in set, see sample.py).
    sample_texts: Optional[List[str]] = None
    sample_source: str = "--sample"
    # ... or a file of them (.spacy, .jsonl, lines), read in constant memory and thinned (sample.py).
    sample_path: Optional[Path] = None
    # Vocabulary trimming (compress/vocab.py): keep the wordpieces these texts use (None: keep all).
    vocab_texts: Optional[List[str]] = None
    vocab_min_count: int = 1
    vocab_characters: str = "all"  # single characters kept: "all" or those the corpus uses ("corpus")
    # Structured pruning (compress/prune.py): shares of attention heads and feed-forward units to
    # remove, ranked by importance on labelled examples (a .spacy file, e.g. the dev set).
    prune_heads: float = 0.0
    prune_ffn: float = 0.0
    prune_data: Optional[Path] = None
    # Text-classification heads as ONNX nodes after the encoder (compress/heads.py).
    heads_in_graph: bool = True
    # Keep only the encoder's first `depth` layers (0: all; depth.py).
    depth: int = 0
    # Per layer, the share of each doc's word vectors it sees ("1,0.6,0.3"; empty: what the
    # pipeline was trained with, if anything; word_elimination.py). Text classification only.
    word_retention: str = ""


def _log(message: str) -> None:
    print(message, flush=True)


class _Step:
    """Print a step and how long it took (export and quantisation take a while)."""

    def __init__(self, label: str, timings: Dict[str, float]):
        self.label, self.timings = label, timings

    def __enter__(self):
        _log(f"... {self.label}")
        self.start = time.perf_counter()

    def __exit__(self, *exc):
        seconds = time.perf_counter() - self.start
        self.timings[self.label] = round(seconds, 2)
        if exc[0] is None:
            _log(f"    done in {seconds:.1f}s")


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def rewrite_config(config: Config, trf_name: str, onnx_model: Dict, batching: Dict) -> Config:
    """Point the transformer at ONNX and every stock listener/span getter at our torch-free ones."""
    config = Config(config)  # copy
    old = config["components"][trf_name]
    get_spans = dict(old["model"]["get_spans"])
    config["components"][trf_name] = {
        "factory": "bertprod_transformer",
        "max_batch_items": batching["max_batch_items"],
        "pipe_batch_tokens": batching["pipe_batch_tokens"],
        "model": {"@architectures": "spacy_bertprod.OnnxTransformer.v1", "get_spans": get_spans, **onnx_model},
        **{key: old[key] for key in ("sentence_vector", "normalize_vector") if key in old},
    }

    def visit(node):
        if isinstance(node, dict):
            if node.get("@architectures") == STOCK_LISTENER:
                node["@architectures"] = OUR_LISTENER
            if node.get("@span_getters") in STOCK_SPAN_GETTERS:
                node["@misc"] = STOCK_SPAN_GETTERS[node.pop("@span_getters")]
            for value in node.values():
                visit(value)

    visit(config["components"])
    to_plain_components(config["components"])
    leftovers = sorted(set(_registered_names(config["components"])) - {OUR_LISTENER})
    leftovers = [n for n in leftovers if n.startswith("spacy-transformers.")]
    if leftovers:
        raise ValueError(
            f"The pipeline still uses {leftovers} after rewriting, which needs torch. compress "
            "handles heads that listen to the transformer (TransformerListener.v1); a component "
            "with its own copy of the transformer (replace_listeners) is not supported yet."
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


def _meta(nlp: Language, quantize: str) -> Dict:
    import onnxruntime

    meta = dict(nlp.meta)
    keep = [
        r
        for r in meta.get("requirements", [])
        if not r.lower().startswith(("spacy-transformers", "spacy_transformers", "spacy_bertprod", "onnxruntime"))
    ]
    major, minor = __version__.split(".")[:2]
    ort_major, ort_minor = onnxruntime.__version__.split(".")[:2]
    meta["requirements"] = keep + [
        f"spacy_bertprod>={__version__},<{major}.{int(minor) + 1}.0",
        f"onnxruntime>={ort_major}.{ort_minor}",
    ]
    meta["bertprod"] = {"compressed_with": __version__, "quantize": quantize}
    return meta


def _log_sample(sample: CalibrationSample, settings: CompressSettings) -> None:
    int8 = settings.quantize == "int8" and settings.quantization.activation_scales == "calibrated"
    use = "int8 calibration and the parity check" if int8 else "the parity check"
    if sample.in_domain:
        how = sample.thinned or "evenly spaced"
        thinned = f" ({how}, of {sample.n_available:,})" if sample.n_available > len(sample.texts) else ""
        _log(f"    {use}: {len(sample.texts):,} docs{thinned} from {sample.source}")
    elif int8:
        _log(
            "!!! No --sample, and the pipeline's config names no training corpus that exists here ([paths] "
            "dev/train): "
            f"int8 activation ranges are calibrated on {sample.source}. For the best accuracy pass in-domain text, "
            "e.g. --sample your_dev.spacy."
        )
    else:
        _log(f"    {use}: {sample.source}")


@dataclass
class Loaded:
    """Stage 1: the trained pipeline, its transformer and the sample texts."""

    path: Path
    nlp: Language
    source: TransformerSource
    sample: CalibrationSample


@dataclass
class Shrunk:
    """Stage 2: the encoder and tokenizer to export, and what shrinking (cutting the depth,
    pruning, trimming the vocabulary) did (None: not asked)."""

    module: Any
    tokenizer: WordpieceTokenizer
    vocabulary: Optional[Dict] = None
    pruning: Optional[Dict] = None
    depth: Optional[Dict] = None
    word_retention: Optional[Dict] = None


@dataclass
class Graphs:
    """Stage 3: the ONNX files in the work folder, and what fusion and calibration did."""

    raw: Path
    fp32: Path
    final: Path
    fusion: Dict[str, int]
    calibration: Dict
    heads: Optional[Dict] = None  # heads in the graph and those kept in Python (why), when asked


def check_request(input_path: Path, output_path: Path, settings: CompressSettings) -> None:
    """Refuse what cannot work before any long work starts."""
    if not input_path.is_dir() or not (input_path / "config.cfg").exists():
        raise ValueError(f"{input_path} is not a saved spaCy pipeline (no config.cfg in it).")
    check_output(output_path, settings)
    if settings.sample_path is not None and not Path(settings.sample_path).exists():
        raise FileNotFoundError(f"The --sample file {settings.sample_path} does not exist.")
    if settings.depth < 0:
        raise ValueError(f"--depth must be 0 (keep every layer) or a number of layers to keep, not {settings.depth}.")
    if settings.prune_heads or settings.prune_ffn:
        from .prune import check_request as check_pruning

        check_pruning(settings.prune_heads, settings.prune_ffn, settings.prune_data)


def check_output(output_path: Path, settings: CompressSettings) -> None:
    if output_path.exists() and not settings.force:
        raise FileExistsError(f"{output_path} exists. Choose another output folder or pass --force.")
    if settings.quantize not in ("int8", "fp32"):
        raise ValueError(f"--quantize must be int8 or fp32, not '{settings.quantize}'.")


def load_source(input_path: Path, settings: CompressSettings, timings: Dict[str, float]) -> Loaded:
    """Load the pipeline, drop training-only components, find its transformer and the sample."""
    with _Step(f"Loading {input_path}", timings):
        nlp = spacy.load(input_path)
    for name in strip_training_components(nlp):  # a served pipeline needs no teacher
        _log(f"    dropped training-only component '{name}'")
    source = find_transformer(nlp, str(input_path))  # refuse a pipeline without one before reading corpora
    config = source.module.config
    _log(
        f"    transformer '{source.name}' ({source.kind}, {config.model_type}, {config.num_hidden_layers} layers, "
        f"width {config.hidden_size})"
    )
    paths = dict(nlp.config.get("paths", {}))
    sample = choose_sample(
        input_path, paths, settings.sample_texts, settings.sample_source, user_path=settings.sample_path
    )
    _log_sample(sample, settings)
    return Loaded(input_path, nlp, source, sample)


def cut_depth(loaded: Loaded, depth: int) -> Dict[str, int]:
    """Keep the first `depth` layers, in the loaded pipeline itself: parity and the int8
    agreement check then compare with the cut torch pipeline, not the full one."""
    from ..depth import keep_first_layers

    n_layers = keep_first_layers(loaded.source.module, depth, f"The transformer '{loaded.source.name}'")
    _log(f"    kept the first {depth} of {n_layers} layers (--depth)")
    return {"original_layers": n_layers, "kept_layers": depth}


def shrink(loaded: Loaded, settings: CompressSettings, timings: Dict[str, float]) -> Shrunk:
    """Prune heads/feed-forward units and trim the vocabulary, when asked."""
    shrunk = Shrunk(loaded.source.module, loaded.source.tokenizer)
    if settings.depth:
        shrunk.depth = cut_depth(loaded, settings.depth)
    if settings.prune_heads or settings.prune_ffn:
        from .prune import prune_pipeline_encoder

        with _Step(f"Pruning by head and feed-forward importance on {settings.prune_data}", timings):
            shrunk.module, shrunk.pruning = prune_pipeline_encoder(
                loaded.nlp, shrunk.module, settings.prune_heads, settings.prune_ffn, settings.prune_data
            )
        p = shrunk.pruning
        _log(
            f"    importance measured on {p['n_examples']:,} examples; heads kept per layer "
            f"{p['heads_kept_per_layer']}, "
            f"feed-forward units kept {p['ffn_units_kept_per_layer']} of {p['ffn_units_original']}; parameters "
            f"{p['parameters_before']:,} -> {p['parameters_after']:,}"
        )
    if settings.vocab_texts is not None:
        from .vocab import trim_vocabulary

        with _Step("Trimming the vocabulary to the corpus's wordpieces", timings):
            shrunk.module, shrunk.tokenizer, shrunk.vocabulary = trim_vocabulary(
                shrunk.module,
                shrunk.tokenizer,
                settings.vocab_texts,
                loaded.sample.texts,
                settings.vocab_min_count,
                settings.vocab_characters,
            )
        v = shrunk.vocabulary
        _log(
            f"    kept {v['kept']:,} of {v['original_size']:,} wordpieces ({v['kept_from_corpus']:,} seen in "
            f"{v['corpus_texts']:,} texts, {v['kept_single_characters']:,} single characters); [UNK] share on the "
            f"sample {v['check_before']['unk_share']:.4%} -> {v['check_after']['unk_share']:.4%}"
        )
    shrunk.word_retention = retain_word_vectors(loaded, shrunk.module, settings.word_retention)
    return shrunk


def retain_word_vectors(loaded: Loaded, module, retention: str) -> Optional[Dict]:
    """Apply --word-retention (after pruning and trimming, whose importance and checks need every
    vector), or report the schedule the pipeline was trained with; None when there is neither."""
    from ..word_elimination import eliminate_word_vectors, retention_of, speedup_bound

    where = f"The transformer '{loaded.source.name}'"
    if retention:
        _refuse_token_level_listeners(loaded)
        eliminate_word_vectors(module, retention, where)
        if module is not loaded.source.module:  # parity compares with the torch pipeline's module
            eliminate_word_vectors(loaded.source.module, retention, where)
    shares = retention_of(module)
    if not shares:
        return None
    _log(f"    word vectors per layer (shares of each doc's wordpieces): {shares}")
    return {
        "shares": shares,
        "source": "--word-retention" if retention else "training",
        "layer_bound_speedup": round(speedup_bound(shares), 3),
    }


def _refuse_token_level_listeners(loaded: Loaded) -> None:
    """Refuse --word-retention when a listener other than a text classifier (textcat,
    textcat_multilabel, or a subclass such as the distillation textcat) reads the transformer."""
    from spacy.pipeline import TextCategorizer

    from .heads import listens_to

    config = loaded.nlp.config["components"]
    token_level = [
        name
        for name, pipe in loaded.nlp.pipeline
        if name != loaded.source.name
        and listens_to(config[name].get("model", {}), loaded.source.name)
        and not isinstance(pipe, TextCategorizer)
    ]
    if token_level:
        raise ValueError(
            f"--word-retention drops word vectors, and {token_level} read a vector for every token from "
            f"'{loaded.source.name}': word-vector elimination is for text classification (textcat, "
            "textcat_multilabel) only. Leave out --word-retention, or compress a pipeline whose listeners classify "
            "texts."
        )


def build_onnx(loaded: Loaded, shrunk: Shrunk, settings: CompressSettings, work: Path, timings) -> Graphs:
    """Export with torch.onnx, fuse with onnxruntime's optimizer, quantise (and calibrate) to int8."""
    from .export import export_onnx
    from .optimize import optimize_onnx
    from .quantize import quantize_onnx

    graphs = Graphs(work / "export.onnx", work / "export.onnx", work / "final.onnx", {}, {})
    with _Step("Exporting to ONNX (torch.onnx)", timings):
        export_onnx(shrunk.module, graphs.raw, opset=settings.opset)
    if settings.optimize:
        graphs.fp32 = work / "fused.onnx"
        with _Step("Fusing the graph (onnxruntime.transformers.optimizer)", timings):
            graphs.fusion = optimize_onnx(graphs.raw, graphs.fp32, shrunk.module.config)
        _log(f"    fusions: {graphs.fusion or 'none'}; {fusion_summary(shrunk.module.config, graphs.fusion)['note']}")
    if settings.quantize != "int8":
        shutil.copyfile(graphs.fp32, graphs.final)
        return graphs
    scales = settings.quantization.activation_scales
    with _Step(f"Quantising to int8 ({scales} activation scales)", timings):
        batches = encoder_batches(shrunk.tokenizer, [loaded.nlp.make_doc(t)[:] for t in loaded.sample.texts])
        graphs.calibration = quantize_onnx(graphs.fp32, graphs.final, settings.quantization, batches)
    if graphs.calibration:
        graphs.calibration.update(loaded.sample.to_dict())
        _log_calibration(graphs.calibration, len(loaded.sample.texts))
    return graphs


def _log_calibration(calibration: Dict, n_docs: int) -> None:
    if "smoothed_tensors" in calibration:
        _log(f"    {calibration['smoothed_tensors']} activations smoothed (alpha {calibration['smooth_alpha']})")
    if "calibrated_tensors" in calibration:
        _log(f"    {calibration['calibrated_tensors']} activation ranges calibrated on {n_docs} sample docs")


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
            python_head_of(new_proc.model).from_bytes(proc.model.to_bytes())
        elif other != name and hasattr(proc, "to_bytes"):
            new_nlp.get_pipe(other).from_bytes(proc.to_bytes())
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
    new_nlp.meta.update(_meta(nlp, settings.quantize))
    new_nlp.to_disk(out)


def _plan_graph_heads(loaded: Loaded, new_config: Config, graphs: Graphs) -> list:
    """Which heads move into the graph (their model blocks rewritten in `new_config`), logged."""
    from .heads import graph_head_config, plan_heads

    specs, kept = plan_heads(loaded.nlp, new_config["components"], loaded.source.name)
    for spec in specs:
        block = new_config["components"][spec.component]
        block["model"] = graph_head_config(block["model"], spec.component)
    graphs.heads = {"in_graph": [s.component for s in specs], "in_python": kept}
    _log(f"    heads in the graph: {graphs.heads['in_graph'] or 'none'}")
    for component, reason in kept.items():
        _log(f"    '{component}' stays in Python: {reason}")
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


def build_report(
    loaded: Loaded, shrunk: Shrunk, graphs: Graphs, settings, parity: Dict, out: Path, output_path: Path, timings
) -> Dict:
    """compress_report.json: what went in, what was done, sizes, parity and timings."""
    config = shrunk.module.config
    sizes = {
        "input_pipeline": folder_size(loaded.path),
        "onnx_exported": graphs.raw.stat().st_size,
        "onnx_fp32": graphs.fp32.stat().st_size,
        "onnx_final": graphs.final.stat().st_size,
        "output_pipeline": folder_size(out),
    }
    sizes["output_over_input"] = round(sizes["output_pipeline"] / max(sizes["input_pipeline"], 1), 4)
    return {
        "input": str(loaded.path),
        "output": str(output_path),
        "transformer": {
            "component": loaded.source.name,
            "source": loaded.source.kind,
            "model_type": config.model_type,
            "family": family_of(config, "The encoder").label,
            "layers": int(config.num_hidden_layers),
            "width": int(config.hidden_size),
        },
        "settings": {
            "quantize": settings.quantize,
            "optimize": settings.optimize,
            "opset": settings.opset,
            "providers": settings.providers,
            "quantization": settings.quantization.to_dict() if settings.quantize == "int8" else None,
            "calibration": graphs.calibration or None,
        },
        "sample": loaded.sample.to_dict(),
        "fusion_statistics": graphs.fusion,
        "fusion": fusion_summary(config, graphs.fusion) if settings.optimize else None,
        "depth": shrunk.depth,
        "word_retention": shrunk.word_retention,
        "vocabulary": shrunk.vocabulary,
        "pruning": shrunk.pruning,
        "heads_in_graph": graphs.heads,
        "sizes_bytes": sizes,
        "parity": parity,
        "timings_s": timings,
        "bertprod_version": __version__,
    }


def write_and_check(loaded: Loaded, shrunk: Shrunk, graphs: Graphs, settings, out: Path, timings):
    """Stages 4 and 5: write the ONNX pipeline to `out`, check it against the original."""
    with _Step("Writing the ONNX pipeline", timings):
        write_pipeline(loaded, shrunk, graphs, settings, out)
    with _Step("Checking parity on sample texts", timings):
        parity = check_parity(loaded, shrunk, graphs, out)
    return out, parity


def _wants_min_max(settings: CompressSettings, parity: Dict) -> bool:
    """Try the other int8 graphs when the first changes more than FALLBACK_CHANGED_SHARE of the sample's predictions."""
    q = settings.quantization
    calibrated = settings.quantize == "int8" and q.activation_scales == "calibrated"
    changed = parity["agreement_check"]["changed_share"]
    return calibrated and q.min_max_fallback and q.calibration_percentile < 100 and changed > FALLBACK_CHANGED_SHARE


def min_max_fallback(loaded: Loaded, shrunk: Shrunk, graphs: Graphs, settings, out: Path, parity: Dict, timings):
    """Calibrate again with min/max ranges, and with smoothed activations (smooth.py) and min/max
    ranges; keep the int8 pipeline that changes fewest of the sample's predictions, and stop at one
    that changes none (no later graph can do better on this sample)."""
    import dataclasses

    from .quantize import FALLBACK_SMOOTH_ALPHA

    first = parity["agreement_check"]["changed_share"]
    _log(
        f"!!! percentile-{settings.quantization.calibration_percentile} ranges change {first:.0%} of the sample's "
        "predictions: calibrating again with min/max ranges (outlier activations)"
    )
    q = settings.quantization
    candidates = [("min/max", dataclasses.replace(q, calibration_percentile=100.0))]
    if q.smooth_alpha == 0:
        smoothed = dataclasses.replace(q, calibration_percentile=100.0, smooth_alpha=FALLBACK_SMOOTH_ALPHA)
        candidates.append(("smoothed min/max", smoothed))
    best = (graphs, out, parity, settings)
    record = {"percentile_changed_share": first, "kept": "percentile"}
    for label, quantization in candidates:  # the sample decides, not the order, until one changes nothing
        if best[2]["agreement_check"]["changed_share"] == 0:
            record.setdefault("not_tried", []).append(label)
            _log(f"    {label} ranges not tried: the kept graph already changes no prediction of the sample")
            continue
        retry = dataclasses.replace(settings, quantization=quantization)
        again, out2, parity2 = _recalibrate(
            loaded, shrunk, graphs, retry, out.parent / label.replace(" ", "-").replace("/", "-"), label, timings
        )
        changed = parity2["agreement_check"]["changed_share"]
        record[label.replace(" ", "_").replace("/", "_") + "_changed_share"] = changed
        keep = changed < best[2]["agreement_check"]["changed_share"]
        _log(f"    {label} ranges change {changed:.0%}" + (": keeping them" if keep else ""))
        if keep:
            best = (again, out2, parity2, retry)
            record["kept"] = label
    best[2]["min_max_fallback"] = record
    return best


def _recalibrate(loaded: Loaded, shrunk: Shrunk, graphs: Graphs, settings, work: Path, label: str, timings):
    """The int8 graph again with other quantisation settings, written and checked in `work`."""
    from .quantize import quantize_onnx

    work.mkdir()
    again = Graphs(graphs.raw, graphs.fp32, work / "final.onnx", graphs.fusion, {}, graphs.heads)
    with _Step(f"Quantising to int8 ({label} activation ranges)", timings):
        batches = encoder_batches(shrunk.tokenizer, [loaded.nlp.make_doc(t)[:] for t in loaded.sample.texts])
        again.calibration = quantize_onnx(graphs.fp32, again.final, settings.quantization, batches)
        again.calibration.update(loaded.sample.to_dict())
        _log_calibration(again.calibration, len(loaded.sample.texts))
    out, parity = write_and_check(loaded, shrunk, again, settings, work / "pipeline", timings)
    return again, out, parity


def compress_pipeline(input_path: Path, output_path: Path, settings: CompressSettings) -> Dict:
    """Compress the pipeline at `input_path` into `output_path`; returns the report."""
    input_path, output_path = Path(input_path), Path(output_path)
    check_request(input_path, output_path, settings)
    timings: Dict[str, float] = {}
    loaded = load_source(input_path, settings, timings)
    shrunk = shrink(loaded, settings, timings)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".compress-", dir=output_path.parent))
    try:
        graphs = build_onnx(loaded, shrunk, settings, work, timings)
        out, parity = write_and_check(loaded, shrunk, graphs, settings, work / "pipeline", timings)
        if _wants_min_max(settings, parity):
            graphs, out, parity, settings = min_max_fallback(loaded, shrunk, graphs, settings, out, parity, timings)
        if not parity["agreement_check"]["passed"]:
            _log(f"!!! {parity['agreement_check']['message']}")
        report = build_report(loaded, shrunk, graphs, settings, parity, out, output_path, timings)
        (out / REPORT_FILE).write_text(json.dumps(report, indent=2), encoding="utf8")
        if output_path.exists():  # --force
            shutil.rmtree(output_path)
        out.rename(output_path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report
