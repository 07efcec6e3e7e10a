"""`compress`: rewrite a trained transformer pipeline onto ONNX Runtime, heads untouched.

Output is written to a temporary folder next to OUT and renamed into place only when complete,
so an interrupted run never leaves a half-written pipeline that looks valid.
"""
import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional

import spacy
from spacy import util
from spacy.language import Language
from thinc.api import Config

from ..about import __version__
from ..backends import backend_io
from ..span_getters import STOCK_SPAN_GETTERS
from ..distill import to_plain_components
from ..transformer_model import encoder_batches
from .quantize import QuantizeSettings

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
    # Vocabulary trimming (compress/vocab.py): keep the wordpieces these texts use (None: keep all).
    vocab_texts: Optional[List[str]] = None
    vocab_min_count: int = 1
    # Structured pruning (compress/prune.py): shares of attention heads and feed-forward units to
    # remove, ranked by importance on labelled examples (a .spacy file, e.g. the dev set).
    prune_heads: float = 0.0
    prune_ffn: float = 0.0
    prune_data: Optional[Path] = None


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


def _meta(nlp: Language, report: Dict) -> Dict:
    import onnxruntime

    meta = dict(nlp.meta)
    keep = [r for r in meta.get("requirements", []) if not r.lower().startswith(("spacy-transformers", "spacy_transformers", "spacy_bertprod", "onnxruntime"))]
    major, minor = __version__.split(".")[:2]
    ort_major, ort_minor = onnxruntime.__version__.split(".")[:2]
    meta["requirements"] = keep + [
        f"spacy_bertprod>={__version__},<{major}.{int(minor) + 1}.0",
        f"onnxruntime>={ort_major}.{ort_minor}",
    ]
    meta["bertprod"] = {"compressed_with": __version__, "quantize": report["settings"]["quantize"]}
    return meta


def _log_sample(sample, settings: CompressSettings) -> None:
    int8 = settings.quantize == "int8" and settings.quantization.activation_scales == "calibrated"
    use = "int8 calibration and the parity check" if int8 else "the parity check"
    if sample.in_domain:
        thinned = f" (evenly spaced, of {sample.n_available:,})" if sample.n_available > len(sample.texts) else ""
        _log(f"    {use}: {len(sample.texts):,} docs{thinned} from {sample.source}")
    elif int8:
        _log(
            f"!!! No --sample, and the pipeline's config names no training corpus that exists here ([paths] dev/train): "
            f"int8 activation ranges are calibrated on {sample.source}. For the best accuracy pass in-domain text, "
            "e.g. --sample your_dev.spacy."
        )
    else:
        _log(f"    {use}: {sample.source}")


def compress_pipeline(input_path: Path, output_path: Path, settings: CompressSettings) -> Dict:
    """Compress the pipeline at `input_path` into `output_path`; returns the report."""
    input_path, output_path = Path(input_path), Path(output_path)
    if not input_path.is_dir() or not (input_path / "config.cfg").exists():
        raise ValueError(f"{input_path} is not a saved spaCy pipeline (no config.cfg in it).")
    if output_path.exists() and not settings.force:
        raise FileExistsError(f"{output_path} exists. Choose another output folder or pass --force.")
    if settings.quantize not in ("int8", "fp32"):
        raise ValueError(f"--quantize must be int8 or fp32, not '{settings.quantize}'.")
    pruning_asked = bool(settings.prune_heads or settings.prune_ffn)
    if pruning_asked:
        from .prune import check_request

        check_request(settings.prune_heads, settings.prune_ffn, settings.prune_data)
    from .export import export_onnx
    from .optimize import optimize_onnx
    from .parity import agreement_check, batch_invariance, encoder_parity, prediction_agreement
    from .sample import choose_sample
    from .quantize import quantize_onnx
    from .source import find_transformer

    timings: Dict[str, float] = {}
    with _Step(f"Loading {input_path}", timings):
        nlp = spacy.load(input_path)
    for name in [n for n, p in nlp.pipeline if type(p).__name__ == "HiddenStateDistiller"]:
        nlp.remove_pipe(name)  # training-only: a served pipeline needs no teacher
        _log(f"    dropped training-only component '{name}'")
    sample = choose_sample(input_path, dict(nlp.config.get("paths", {})), settings.sample_texts, settings.sample_source)
    _log_sample(sample, settings)
    sample_texts = sample.texts
    source = find_transformer(nlp, str(input_path))
    sample_docs = [nlp.make_doc(t) for t in sample_texts]
    config = source.module.config
    _log(f"    transformer '{source.name}' ({source.kind}, {config.model_type}, {config.num_hidden_layers} layers, width {config.hidden_size})")
    module, tokenizer, vocabulary, pruning = source.module, source.tokenizer, None, None
    if pruning_asked:
        from .prune import prune_pipeline_encoder

        with _Step(f"Pruning by head and feed-forward importance on {settings.prune_data}", timings):
            module, pruning = prune_pipeline_encoder(nlp, source.module, settings.prune_heads, settings.prune_ffn, settings.prune_data)
        _log(f"    importance measured on {pruning['n_examples']:,} examples; heads kept per layer {pruning['heads_kept_per_layer']}, feed-forward units kept "
             f"{pruning['ffn_units_kept_per_layer']} of {pruning['ffn_units_original']}; parameters "
             f"{pruning['parameters_before']:,} -> {pruning['parameters_after']:,}")
    if settings.vocab_texts is not None:
        from .vocab import trim_vocabulary

        with _Step("Trimming the vocabulary to the corpus's wordpieces", timings):
            module, tokenizer, vocabulary = trim_vocabulary(module, source.tokenizer, settings.vocab_texts, sample_texts, settings.vocab_min_count)
        _log(f"    kept {vocabulary['kept']:,} of {vocabulary['original_size']:,} wordpieces "
             f"({vocabulary['kept_from_corpus']:,} seen in {vocabulary['corpus_texts']:,} texts, {vocabulary['kept_single_characters']:,} single characters); "
             f"[UNK] share on the sample {vocabulary['check_before']['unk_share']:.4%} -> {vocabulary['check_after']['unk_share']:.4%}")

    output_path.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".compress-", dir=output_path.parent))
    try:
        raw, fused, final = work / "export.onnx", work / "fused.onnx", work / "final.onnx"
        with _Step("Exporting to ONNX (torch.onnx)", timings):
            export_onnx(module, raw, opset=settings.opset)
        fusion: Dict[str, int] = {}
        fp32 = raw
        if settings.optimize:
            with _Step("Fusing the graph (onnxruntime.transformers.optimizer)", timings):
                fusion = optimize_onnx(raw, fused, module.config)
            fp32 = fused
            _log(f"    fusions: {fusion or 'none'}")
        calibration: Dict = {}
        if settings.quantize == "int8":
            scales = settings.quantization.activation_scales
            with _Step(f"Quantising to int8 ({scales} activation scales)", timings):
                batches = encoder_batches(tokenizer, [doc[:] for doc in sample_docs])
                calibration = quantize_onnx(fp32, final, settings.quantization, batches)
            if calibration:
                calibration.update(sample.to_dict())
                _log(f"    {calibration['calibrated_tensors']} activation ranges calibrated on {len(sample_docs)} sample docs")
        else:
            shutil.copyfile(fp32, final)

        onnx_model = {
            "providers": list(settings.providers),
            "intra_op_num_threads": settings.intra_op_num_threads,
            "inter_op_num_threads": settings.inter_op_num_threads,
        }
        with _Step("Writing the ONNX pipeline", timings):
            batching = {"max_batch_items": settings.max_batch_items, "pipe_batch_tokens": settings.pipe_batch_tokens}
            new_config = rewrite_config(nlp.config, source.name, onnx_model, batching)
            new_nlp = util.load_model_from_config(new_config, auto_fill=True, validate=True)
            new_nlp.vocab.from_bytes(nlp.vocab.to_bytes())
            new_nlp.tokenizer.from_bytes(nlp.tokenizer.to_bytes())
            for name, proc in nlp.pipeline:
                if name != source.name and hasattr(proc, "to_bytes"):
                    new_nlp.get_pipe(name).from_bytes(proc.to_bytes())
            trf = new_nlp.get_pipe(source.name)
            trf._set_tokenizer(tokenizer)
            backend_io(trf.model.layers[0]).onnx.set_model(final.read_bytes(), source=str(final))
            trf.cfg["width"] = int(config.hidden_size)
            trf._sync_width()
            new_nlp._link_components()
            out_tmp = work / "pipeline"
            report: Dict = {"settings": {"quantize": settings.quantize, "optimize": settings.optimize}}
            new_nlp.meta.update(_meta(nlp, report))
            new_nlp.to_disk(out_tmp)

        with _Step("Checking parity on sample texts", timings):
            from ..backends.onnx import OnnxSession

            reloaded = spacy.load(out_tmp)
            reference = OnnxSession(["CPUExecutionProvider"], 0, 1)
            reference.set_model(fp32.read_bytes(), source=str(fp32))
            candidate = backend_io(reloaded.get_pipe(source.name).model.layers[0]).onnx
            parity = encoder_parity(module, reference, candidate, tokenizer, sample_docs)
            parity["predictions"] = prediction_agreement(nlp, reloaded, sample_texts)
            parity["batch_invariance"] = batch_invariance(reloaded, sample_texts, batch_sizes=(1, 64))
            parity["agreement_check"] = agreement_check(parity["predictions"], sample)
        if not parity["agreement_check"]["passed"]:
            _log(f"!!! {parity['agreement_check']['message']}")

        report = {
            "input": str(input_path),
            "output": str(output_path),
            "transformer": {
                "component": source.name,
                "source": source.kind,
                "model_type": config.model_type,
                "layers": int(config.num_hidden_layers),
                "width": int(config.hidden_size),
            },
            "settings": {
                "quantize": settings.quantize,
                "optimize": settings.optimize,
                "opset": settings.opset,
                "providers": settings.providers,
                "quantization": settings.quantization.to_dict() if settings.quantize == "int8" else None,
                "calibration": calibration or None,
            },
            "sample": sample.to_dict(),
            "fusion_statistics": fusion,
            "vocabulary": vocabulary,
            "pruning": pruning,
            "sizes_bytes": {
                "input_pipeline": folder_size(input_path),
                "onnx_exported": raw.stat().st_size,
                "onnx_fp32": fp32.stat().st_size,
                "onnx_final": final.stat().st_size,
                "output_pipeline": folder_size(out_tmp),
            },
            "parity": parity,
            "timings_s": timings,
            "bertprod_version": __version__,
        }
        report["sizes_bytes"]["output_over_input"] = round(
            report["sizes_bytes"]["output_pipeline"] / max(report["sizes_bytes"]["input_pipeline"], 1), 4
        )
        (out_tmp / REPORT_FILE).write_text(json.dumps(report, indent=2), encoding="utf8")
        if output_path.exists():  # --force
            shutil.rmtree(output_path)
        out_tmp.rename(output_path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report
