"""What `compress` can be asked, declared once: each field's default, flag and help.

`bertprod compress`'s options are built from these fields (cli/options.py), and the report
records the same objects, so an option is added in one place.
"""

from dataclasses import MISSING, asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from ..errors import InvalidInput
from ..options import cli_field, comma_list, optional_path

ACTIVATION_SCALES = ("calibrated", "dynamic")
QUANTIZE = ("int8", "fp32")


@dataclass
class QuantizeSettings:
    """int8 quantisation (quantize.py) and the calibration of its activation ranges (calibrate.py)."""

    # Defaults measured on MiniLM-L6 / WNUT-17 (see README): per-channel weights kept entity F1
    # within 0.2 points of fp32 where per-tensor lost 1.2; int8 embeddings cost nothing
    # measurable and take the model from 65% to 25% of its fp32 size.
    per_channel: bool = cli_field(
        True, "--per-channel/--per-tensor", help="Per-channel (default) or per-tensor int8 weights"
    )
    reduce_range: bool = cli_field(False, "--reduce-range", help="7-bit weights (for CPUs without VNNI)")
    nodes_to_exclude: List[str] = cli_field(
        MISSING,
        "--exclude-nodes",
        help="Comma-separated ONNX node names to keep in fp32",
        default_factory=list,
        parse=comma_list,
        cli_type=str,
    )
    quantize_embeddings: bool = cli_field(
        True, "--quantize-embeddings/--no-quantize-embeddings", help="Also quantise the embedding tables (default)"
    )
    activation_scales: str = cli_field(
        "calibrated",
        "--activation-scales",
        help="int8 activation scales: 'calibrated' on --sample (default; a text's result never depends on its "
        "batch-mates) or 'dynamic' (per batch, ONNX Runtime's quantize_dynamic)",
    )
    # Activation ranges keep this central share of the calibration values (see README table).
    calibration_percentile: float = cli_field(
        99.99,
        "--calibration-percentile",
        help="Calibrated activation ranges keep this central percentage of the sample's values (100: min/max)",
    )
    # When the percentile ranges change more of the sample's predictions than the agreement check
    # allows, calibrate again with min/max ranges, and with smoothed activations and min/max
    # ranges, and keep whichever changes fewest: 12-layer base encoders have outlier activations
    # that clipping destroys (Bondarenko et al. 2021) and that smoothing tames (smooth.py).
    min_max_fallback: bool = cli_field(
        True,
        "--min-max-fallback/--no-min-max-fallback",
        help="When the percentile ranges change more than 2% of the sample's predictions, calibrate again with "
        "min/max ranges, then smoothed activations (SmoothQuant) and min/max ranges, and keep whichever changes fewest "
        "(12-layer encoders' outlier activations)",
    )
    # SmoothQuant's migration strength: 0 = no smoothing (unless the fallback picks it), else in
    # (0, 1]; the fallback uses quantize.FALLBACK_SMOOTH_ALPHA.
    smooth_alpha: float = cli_field(
        0.0,
        "--smooth-alpha",
        help="Smooth activations before int8 (SmoothQuant: move outlier channels' range into the weights; 0: off, "
        "else in (0, 1], e.g. 0.8)",
    )

    def __post_init__(self):
        if self.activation_scales not in ACTIVATION_SCALES:
            raise InvalidInput(f"activation scales must be one of {ACTIVATION_SCALES}, not '{self.activation_scales}'.")
        if not 0.0 <= self.smooth_alpha <= 1.0:
            raise InvalidInput(f"--smooth-alpha must be in [0, 1] (0: off), got {self.smooth_alpha}.")
        if not 50.0 < self.calibration_percentile <= 100.0:
            raise InvalidInput(
                f"The calibration percentile must be in (50, 100] (100 = min/max), got {self.calibration_percentile}."
            )

    def op_types(self) -> List[str]:
        ops = ["MatMul", "Attention"]
        if self.quantize_embeddings:
            ops += ["Gather", "EmbedLayerNormalization"]
        return ops

    def to_dict(self) -> Dict:
        return {
            **asdict(self),
            "op_types": self.op_types(),
            "weight_type": "QInt8",
            "batch_invariant": self.activation_scales == "calibrated",
        }


@dataclass
class CompressSettings:
    """Everything `compress` does besides int8: export, fusion, trimming, pruning, depth, heads, output."""

    quantize: str = cli_field("int8", "--quantize", "-q", help="int8 or fp32")
    optimize: bool = cli_field(
        True, "--optimize/--no-optimize", help="Fuse attention/LayerNorm/GELU with onnxruntime's transformer optimizer"
    )
    quantization: QuantizeSettings = field(default_factory=QuantizeSettings)
    providers: List[str] = field(default_factory=lambda: ["CPUExecutionProvider"])
    intra_op_num_threads: int = cli_field(
        0, "--threads", help="ONNX Runtime intra-op threads in the output pipeline (0: one per core)"
    )
    inter_op_num_threads: int = 1
    opset: int = 17
    # Batching of the output pipeline (see the bertprod_transformer factory); the defaults were
    # the fastest measured for MiniLM on 2 cores.
    max_batch_items: int = 2048
    pipe_batch_tokens: int = 8192
    force: bool = cli_field(False, "--force", "-F", help="Overwrite OUTPUT_PATH")
    # Calibration/parity texts (None: the pipeline's own corpora or the built-in set, see sample.py).
    sample_texts: Optional[List[str]] = None
    sample_source: str = "--sample"
    # ... or a file of them (.spacy, .jsonl, lines), read in constant memory and thinned (sample.py).
    sample_path: Optional[Path] = cli_field(
        None,
        "--sample",
        help="In-domain texts for int8 calibration and the parity check (.txt lines, .jsonl with 'text', or .spacy); "
        "e.g. the dev set; thinned to 1,000 docs (stratified by label in .spacy) when larger. Without it: the "
        "pipeline's own [paths] dev (then train) corpus when it exists, else a built-in set",
        parse=optional_path,
    )
    # Vocabulary trimming (compress/vocab.py): keep the wordpieces these texts use (None: keep
    # all), given as texts or as a file of them.
    vocab_texts: Optional[List[str]] = None
    vocab_path: Optional[Path] = cli_field(
        None,
        "--trim-vocab",
        help="Keep only the wordpieces these in-domain texts use (+ single characters and the specials; WordPiece, "
        "BPE and Unigram tokenizers): .spacy, .jsonl or lines; e.g. the training data",
        parse=optional_path,
    )
    vocab_min_count: int = cli_field(
        1, "--vocab-min-count", help="With --trim-vocab: keep wordpieces seen at least this often"
    )
    vocab_characters: str = cli_field(
        "all",
        "--vocab-characters",
        help="With --trim-vocab: keep every single-character piece ('all': nothing new becomes unknown) or only "
        "those the corpus or ASCII uses ('corpus': far smaller for multilingual vocabularies; other scripts become "
        "unknown)",
    )
    # Structured pruning (compress/prune.py): shares of attention heads and feed-forward units to
    # remove, ranked by importance on labelled examples (a .spacy file, e.g. the dev set).
    prune_heads: float = cli_field(
        0.0,
        "--prune-heads",
        help="Share of attention heads to remove, the least important on --prune-data first (Michel et al. 2019); 0: "
        "none",
    )
    prune_ffn: float = cli_field(
        0.0,
        "--prune-ffn",
        help="Share of feed-forward units to remove in every layer, the least important on --prune-data first; 0: none",
    )
    prune_data: Optional[Path] = cli_field(
        None,
        "--prune-data",
        help="Labelled .spacy docs (e.g. the dev set) whose loss ranks heads and units for --prune-heads/--prune-ffn",
        parse=optional_path,
    )
    # Text-classification heads as ONNX nodes after the encoder (compress/heads.py).
    heads_in_graph: bool = cli_field(
        True,
        "--heads-in-graph/--heads-in-python",
        help="Compute textcat/textcat_multilabel heads (spacy.TextCatReduce.v1 over the transformer) inside the ONNX "
        "graph, in float32: same doc.cats, less Python per doc; docs longer than one window still use the head in "
        "Python",
    )
    # Keep only the encoder's first `depth` layers (0: all; depth.py).
    depth: int = cli_field(
        0,
        "--depth",
        help="Keep only the encoder's first N layers (0: all); train with random_depth for a pipeline that can be cut",
    )
    # Per layer, the share of each doc's word vectors it sees ("1,0.6,0.3"; empty: what the
    # pipeline was trained with, if anything; word_elimination.py). Text classification only.
    word_retention: str = cli_field(
        "",
        "--word-retention",
        help="Text classification only: per layer, the share of each doc's word vectors it sees, e.g. 1,0.6,0.3 "
        "(PoWER-BERT: the most attended ones stay; empty: as trained, see word_retention in the training config)",
    )
