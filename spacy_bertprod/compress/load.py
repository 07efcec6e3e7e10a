"""Stages 1 and 2 of compress: check the request, load the pipeline and its sample, shrink the
encoder (cut its depth, prune heads and units, trim the vocabulary, word-vector elimination)."""

import warnings
from pathlib import Path
from typing import Dict, Optional

import spacy

from ..errors import Int8Warning, InvalidInput, MissingFile, OutputExists, Warnings
from ..source import find_transformer, strip_training_components
from ..texts import read_texts
from .sample import CalibrationSample, choose_sample
from .settings import CompressSettings
from .steps import Loaded, Shrunk, Step, log
from .write import rewrite_config


def pipeline_folder(name_or_path) -> Path:
    """A pipeline folder, or the data folder of an installed pipeline package (`spacy package`
    wheels, en_core_web_trf): the package holds it as NAME-VERSION/ beside its __init__.py."""
    path = Path(name_or_path)
    if path.exists() or not spacy.util.is_package(str(name_or_path)):
        return path
    package = spacy.util.get_package_path(str(name_or_path))
    folders = sorted(p for p in package.iterdir() if (p / "config.cfg").exists())
    return folders[0] if folders else package


def check_request(input_path: Path, output_path: Path, settings: CompressSettings) -> None:
    """Refuse what cannot work before any long work starts."""
    if not input_path.is_dir() or not (input_path / "config.cfg").exists():
        raise InvalidInput(
            f"{input_path} is not a saved spaCy pipeline (no config.cfg in it) nor an installed pipeline package."
        )
    check_output(output_path, settings)
    for flag, path in (("--sample", settings.sample_path), ("--trim-vocab", settings.vocab_path)):
        if path is not None and not Path(path).exists():
            raise MissingFile(f"The {flag} file {path} does not exist.")
    if settings.depth < 0:
        raise InvalidInput(f"--depth must be 0 (keep every layer) or a number of layers to keep, not {settings.depth}.")
    if settings.prune_heads or settings.prune_ffn:
        from .prune import check_request as check_pruning

        check_pruning(settings.prune_heads, settings.prune_ffn, settings.prune_data)


def check_output(output_path: Path, settings: CompressSettings) -> None:
    if output_path.exists() and not settings.force:
        raise OutputExists(f"{output_path} exists. Choose another output folder or pass --force.")
    if settings.quantize not in ("int8", "fp32"):
        raise InvalidInput(f"--quantize must be int8 or fp32, not '{settings.quantize}'.")


def _log_sample(sample: CalibrationSample, settings: CompressSettings) -> None:
    int8 = settings.quantize == "int8" and settings.quantization.activation_scales == "calibrated"
    use = "int8 calibration and the parity check" if int8 else "the parity check"
    if sample.in_domain:
        how = sample.thinned or "evenly spaced"
        thinned = f" ({how}, of {sample.n_available:,})" if sample.n_available > len(sample.texts) else ""
        log(f"    {use}: {len(sample.texts):,} docs{thinned} from {sample.source}")
    elif int8:
        warnings.warn(Warnings.W004.format(source=sample.source), Int8Warning, stacklevel=2)
    else:
        log(f"    {use}: {sample.source}")


def load_source(input_path: Path, settings: CompressSettings, timings: Dict[str, float]) -> Loaded:
    """Load the pipeline, drop training-only components, find its transformer and the sample."""
    with Step(f"Loading {input_path}", timings):
        nlp = spacy.load(input_path)
    for name in strip_training_components(nlp):  # a served pipeline needs no teacher
        log(f"    dropped training-only component '{name}'")
    source = find_transformer(nlp, str(input_path))  # refuse a pipeline without one before reading corpora
    rewrite_config(nlp.config, source.name, {}, {"max_batch_items": 1, "pipe_batch_tokens": 1})  # kinds we keep
    if source.is_curated:
        _refuse_for_curated(settings, f"'{source.name}' in {input_path}")
    config = source.module.config
    log(
        f"    transformer '{source.name}' ({source.kind}, {config.model_type}, {config.num_hidden_layers} layers, "
        f"width {config.hidden_size})"
    )
    paths = dict(nlp.config.get("paths", {}))
    sample = choose_sample(
        input_path, paths, settings.sample_texts, settings.sample_source, user_path=settings.sample_path
    )
    _log_sample(sample, settings)
    if source.is_curated:
        from ..curated import check_pieces

        check_pieces(nlp.get_pipe(source.name), source.tokenizer, [nlp.make_doc(t) for t in sample.texts])
    return Loaded(input_path, nlp, source, sample)


def _refuse_for_curated(settings: CompressSettings, where: str) -> None:
    """What compress cannot do yet to a spacy-curated-transformers encoder (a student can: make-student)."""
    asked = [
        flag
        for flag, value in (
            ("--prune-heads/--prune-ffn", settings.prune_heads or settings.prune_ffn),
            ("--trim-vocab", settings.vocab_path or settings.vocab_texts),
            ("--word-retention", settings.word_retention),
        )
        if value
    ]
    if asked:
        raise InvalidInput(
            f"{where} is a spacy-curated-transformers encoder: compress converts it as it is (fp32 or int8), "
            f"without {asked}. Leave them out, or distil a smaller student from it (make-student)."
        )


def cut_depth(loaded: Loaded, depth: int) -> Dict[str, int]:
    """Keep the first `depth` layers, in the loaded pipeline itself: parity and the int8
    agreement check then compare with the cut torch pipeline, not the full one."""
    from ..depth import keep_first_layers

    where = f"The transformer '{loaded.source.name}'"
    n_layers = keep_first_layers(loaded.source.module, depth, where)
    if loaded.source.is_curated:
        from ..curated import keep_first_curated_layers

        keep_first_curated_layers(loaded.nlp.get_pipe(loaded.source.name), depth, where)
    log(f"    kept the first {depth} of {n_layers} layers (--depth)")
    return {"original_layers": n_layers, "kept_layers": depth}


def shrink(loaded: Loaded, settings: CompressSettings, timings: Dict[str, float]) -> Shrunk:
    """Prune heads/feed-forward units and trim the vocabulary, when asked."""
    shrunk = Shrunk(loaded.source.module, loaded.source.tokenizer)
    if settings.depth:
        shrunk.depth = cut_depth(loaded, settings.depth)
    if settings.prune_heads or settings.prune_ffn:
        from .prune import prune_pipeline_encoder

        with Step(f"Pruning by head and feed-forward importance on {settings.prune_data}", timings):
            shrunk.module, shrunk.pruning = prune_pipeline_encoder(
                loaded.nlp, shrunk.module, settings.prune_heads, settings.prune_ffn, settings.prune_data
            )
        p = shrunk.pruning
        log(
            f"    importance measured on {p['n_examples']:,} examples; heads kept per layer "
            f"{p['heads_kept_per_layer']}, "
            f"feed-forward units kept {p['ffn_units_kept_per_layer']} of {p['ffn_units_original']}; parameters "
            f"{p['parameters_before']:,} -> {p['parameters_after']:,}"
        )
    vocab_texts = settings.vocab_texts
    if vocab_texts is None and settings.vocab_path is not None:
        vocab_texts = read_texts(settings.vocab_path)
    if vocab_texts is not None:
        from .vocab import trim_vocabulary

        with Step("Trimming the vocabulary to the corpus's wordpieces", timings):
            shrunk.module, shrunk.tokenizer, shrunk.vocabulary = trim_vocabulary(
                shrunk.module,
                shrunk.tokenizer,
                vocab_texts,
                loaded.sample.texts,
                settings.vocab_min_count,
                settings.vocab_characters,
            )
        v = shrunk.vocabulary
        log(
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
    log(f"    word vectors per layer (shares of each doc's wordpieces): {shares}")
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
        raise InvalidInput(
            f"--word-retention drops word vectors, and {token_level} read a vector for every token from "
            f"'{loaded.source.name}': word-vector elimination is for text classification (textcat, "
            "textcat_multilabel) only. Leave out --word-retention, or compress a pipeline whose listeners classify "
            "texts."
        )
