"""Build a spacy-curated-transformers pipeline (the format of en_core_web_trf since spaCy 3.7) offline.

    python scripts/curated_pipeline.py OUT --family roberta [--encoder HF_FOLDER] [--listener last]
        [--heads tagger,morphologizer,parser,ner,trainable_lemmatizer] [--conllu FILE] [--steps 30]

The encoder is `--encoder` (a Hugging Face folder: MiniLM-L6's real weights, or en_core_web_trf's
roberta-base shape with random weights from --layers/--hidden) or, without it, a small random one
of `--family` (scripts/tiny_encoder.py) whose piece vocabulary is trained here: WordPiece (BERT),
byte BPE (RoBERTa) or a SentencePiece model (XLM-R, CamemBERT, ALBERT). The pipeline is built
from its config as spaCy builds en_core_web_trf's: a `curated_transformer` with strided spans
(--window/--stride, en_core_web_trf's 144/104 by default), heads that listen through
`--listener` (last: LastTransformerLayerListener, scalar: ScalarWeightingListener), initialized
through spacy-curated-transformers' own loaders, and trained --steps steps on CoNLL-U sentences
(tags, morphology, lemmas, dependencies) plus a few entity sentences, so its heads predict
something a compressed copy can get wrong. Scores mean nothing; it exists to test and measure.
"""

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
EWT_TRAIN = REPO.parent / "shared" / "data" / "ud_english_ewt" / "en_ewt-ud-train.conllu"
ARCHITECTURES = {
    "bert": "BertTransformer",
    "roberta": "RobertaTransformer",
    "xlm-roberta": "XlmrTransformer",
    "camembert": "CamembertTransformer",
    "albert": "AlbertTransformer",
}
PIECE_ENCODERS = {
    "bert": "BertWordpieceEncoder",
    "roberta": "ByteBpeEncoder",
    "xlm-roberta": "XlmrSentencepieceEncoder",
    "camembert": "CamembertSentencepieceEncoder",
    "albert": "SentencepieceEncoder",
}
SCT = "spacy-curated-transformers"
# Per head: its factory and the model block around the listener.
TAGGER = {"@architectures": "spacy.Tagger.v2", "nO": None}
HEADS = {
    "tagger": ("tagger", TAGGER),
    "morphologizer": ("morphologizer", TAGGER),
    "trainable_lemmatizer": ("trainable_lemmatizer", TAGGER),
    "senter": ("senter", TAGGER),
    "parser": ("parser", {"@architectures": "spacy.TransitionBasedParser.v2", "state_type": "parser"}),
    "ner": ("ner", {"@architectures": "spacy.TransitionBasedParser.v2", "state_type": "ner"}),
    "textcat": (
        "textcat",
        {"@architectures": "spacy.TextCatReduce.v1", "exclusive_classes": True, "use_reduce_first": False,
         "use_reduce_last": False, "use_reduce_max": False, "use_reduce_mean": True, "nO": None},
    ),
    "spancat": (
        "spancat",
        {"@architectures": "spacy.SpanCategorizer.v1",
         "reducer": {"@layers": "spacy.mean_max_reducer.v1", "hidden_size": 64},
         "scorer": {"@layers": "spacy.LinearLogistic.v1", "nO": None, "nI": None}},
    ),
}  # fmt: skip
PARSER_SIZES = {"extra_state_tokens": False, "hidden_width": 64, "maxout_pieces": 2, "use_upper": False, "nO": None}
ENTITY_TEMPLATES = ["{p} flew to {q} on Monday.", "Yesterday {p} met {r} in {q}.", "{q} is where {p} works."]
PEOPLE = ["Alice", "Bob", "Grace Hopper", "Ada Lovelace", "Linus", "Marie Curie"]
PLACES = ["Paris", "Berlin", "New York", "Tokyo", "Lagos", "Buenos Aires"]


def hf_sizes(config) -> Dict:
    """The curated architecture's size arguments from a Hugging Face config."""
    sizes = {
        "vocab_size": config.vocab_size,
        "hidden_width": config.hidden_size,
        "intermediate_width": config.intermediate_size,
        "num_attention_heads": config.num_attention_heads,
        "num_hidden_layers": config.num_hidden_layers,
        "hidden_act": config.hidden_act,
        "layer_norm_eps": config.layer_norm_eps,
        "max_position_embeddings": config.max_position_embeddings,
        "model_max_length": config.max_position_embeddings,
        "padding_idx": config.pad_token_id,
        "type_vocab_size": config.type_vocab_size,
    }
    if config.model_type == "albert":
        sizes.update(embedding_width=config.embedding_size, num_hidden_groups=config.num_hidden_groups)
    return sizes


def train_sentencepiece(folder: Path, corpus: Sequence[str], family: str, vocab_size: int) -> Path:
    """A small SentencePiece model with the special ids the family's pieces are adapted from."""
    import io

    import sentencepiece

    ids = {"unk_id": 1, "bos_id": 2, "eos_id": 3, "pad_id": 0} if family == "albert" else {}
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus), model_writer=model, vocab_size=vocab_size, model_type="unigram",
        character_coverage=1.0, hard_vocab_limit=False, minloglevel=2, **ids,
    )  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "spm.model"
    path.write_bytes(model.getvalue())
    return path


def tiny_encoder(family: str, folder: Path, layers: int, hidden: int, seed: int) -> Tuple[Path, Dict]:
    """A random `family` encoder and its piece loader config."""
    from tiny_encoder import build_family_encoder, default_corpus

    if family in ("bert", "roberta"):
        build_family_encoder(
            family, folder, layers=layers, hidden=hidden, intermediate=2 * hidden, max_positions=160, seed=seed
        )
        return folder, vocabulary_files(family, folder)
    import torch
    from transformers import AutoConfig, AutoModel

    spm = train_sentencepiece(folder, default_corpus(), family, vocab_size=800)
    n_pieces = _spm_size(spm)
    offset, pad = {"xlm-roberta": (1, 1), "camembert": (4, 1), "albert": (0, 0)}[family]
    sizes = {"hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": 2}
    extra = {"embedding_size": 16} if family == "albert" else {}
    config = AutoConfig.for_model(
        family, vocab_size=n_pieces + offset + 1, pad_token_id=pad, intermediate_size=2 * hidden,
        max_position_embeddings=160 + (pad + 1 if family != "albert" else 0), **sizes, **extra,
    )  # fmt: skip
    torch.manual_seed(seed)
    AutoModel.from_config(config).save_pretrained(folder, safe_serialization=True)
    if family == "albert":  # curated's Hugging Face piece loader knows no ALBERT tokenizer
        return folder, {"@model_loaders": f"{SCT}.SentencepieceLoader.v1", "path": str(spm)}
    # As a user's XLM-R/CamemBERT folder: the slow tokenizer's SentencePiece file beside tokenizer.json.
    from transformers import CamembertTokenizerFast, XLMRobertaTokenizerFast

    tokenizer_class = XLMRobertaTokenizerFast if family == "xlm-roberta" else CamembertTokenizerFast
    tokenizer_class(vocab_file=str(spm)).save_pretrained(folder)
    return folder, {"@model_loaders": f"{SCT}.HFPieceEncoderLoader.v1", "name": str(folder)}


def _spm_size(path: Path) -> int:
    import sentencepiece

    return sentencepiece.SentencePieceProcessor(model_file=str(path)).get_piece_size()


def vocabulary_files(family: str, folder: Path) -> Dict:
    """vocab.txt (WordPiece) or vocab.json + merges.txt (byte BPE) from the folder's tokenizer.json."""
    model = json.loads((folder / "tokenizer.json").read_text(encoding="utf8"))["model"]
    vocab = model["vocab"]
    if family == "bert":
        (folder / "vocab.txt").write_text("\n".join(sorted(vocab, key=vocab.get)) + "\n", encoding="utf8")
        config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf8"))
        lower = bool(config.get("do_lower_case", False))
        return {
            "@model_loaders": f"{SCT}.WordpieceLoader.v1",
            "path": str(folder / "vocab.txt"),
            "lowercase": lower,
            "strip_accents": lower,
        }
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf8")
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf8")
    return {
        "@model_loaders": f"{SCT}.ByteBpeLoader.v1",
        "vocab_path": str(folder / "vocab.json"),
        "merges_path": str(folder / "merges.txt"),
    }


def listener_config(kind: str, width: int, n_layers: int) -> Dict:
    pooling = {"@layers": "reduce_mean.v1"}
    if kind == "last":
        return {"@architectures": f"{SCT}.LastTransformerLayerListener.v1", "width": width, "pooling": pooling}
    if kind == "scalar":
        weighting = {"@architectures": f"{SCT}.ScalarWeight.v1", "num_layers": n_layers, "dropout_prob": 0.1}
        return {
            "@architectures": f"{SCT}.ScalarWeightingListener.v1",
            "width": width,
            "pooling": pooling,
            "weighting": weighting,
        }
    raise SystemExit(f"--listener must be last or scalar, not {kind}")


def build_nlp(family: str, encoder: Path, heads: Sequence[str], listener: str, window: int, stride: int):
    import spacy
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(encoder)
    sizes = hf_sizes(config)
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "curated_transformer",
        name="transformer",
        config={
            "all_layer_outputs": listener == "scalar",
            "model": {
                "@architectures": f"{SCT}.{ARCHITECTURES[config.model_type]}.v1",
                **sizes,
                "piece_encoder": {"@architectures": f"{SCT}.{PIECE_ENCODERS[config.model_type]}.v1"},
                "with_spans": {"@architectures": f"{SCT}.WithStridedSpans.v1", "window": window, "stride": stride},
            },
        },
    )
    for head in heads:
        factory, model = HEADS[head]
        model = dict(model, tok2vec=listener_config(listener, sizes["hidden_width"], sizes["num_hidden_layers"]))
        if "state_type" in model:
            model.update(PARSER_SIZES)
        nlp.add_pipe(factory, name=head, config={"model": model})
    return nlp


def examples(nlp, conllu: Path, n_sentences: int, seed: int) -> List:
    """CoNLL-U sentences (every token layer) and template sentences with entities."""
    from spacy.tokens import DocBin, Span
    from spacy.training import Example
    from spacy.training.converters import conllu_to_docs

    text = conllu.read_text(encoding="utf8")
    docs = list(conllu_to_docs(text, n_sents=1, no_print=True))[:n_sentences]
    docs = list(DocBin(docs=docs, store_user_data=False).get_docs(nlp.vocab))  # the converter's own vocab otherwise
    for doc in docs:  # a text category for textcat: questions and the rest
        doc.cats = {
            "QUESTION": float(doc.text.rstrip().endswith("?")),
            "OTHER": float(not doc.text.rstrip().endswith("?")),
        }
    out = [Example(nlp.make_doc(doc.text), doc) for doc in docs]
    rng = random.Random(seed)
    for i in range(max(20, n_sentences // 5)):
        template = ENTITY_TEMPLATES[i % len(ENTITY_TEMPLATES)]
        p, r, q = rng.choice(PEOPLE), rng.choice(PEOPLE), rng.choice(PLACES)
        doc = nlp.make_doc(template.format(p=p, q=q, r=r))
        spans = []
        for name, label in ((p, "PERSON"), (r, "PERSON"), (q, "GPE")):
            start = doc.text.find(name)
            span = doc.char_span(start, start + len(name), label=label) if start >= 0 else None
            if span is not None and not any(s.start < span.end and span.start < s.end for s in spans):
                spans.append(span)
        reference = nlp.make_doc(doc.text)
        reference.ents = [Span(reference, s.start, s.end, s.label_) for s in spans]
        reference.spans["sc"] = list(reference.ents)  # spancat learns the same spans
        reference.cats = {"QUESTION": 0.0, "OTHER": 1.0}
        out.append(Example(doc, reference))
    return out


def with_loaders(nlp, encoder_loader: Dict, piece_loader: Dict):
    """The pipeline rebuilt from its config with spacy-curated-transformers' loaders in [initialize]."""
    import spacy
    from thinc.api import Config

    config = Config(nlp.config)
    config["initialize"]["components"]["transformer"] = {
        "encoder_loader": encoder_loader,
        "piecer_loader": piece_loader,
    }
    return spacy.util.load_model_from_config(config, auto_fill=True)


def initialize_and_train(nlp, train: List, steps: int, seed: int):
    from thinc.api import fix_random_seed

    fix_random_seed(seed)
    optimizer = nlp.initialize(lambda: train)
    rng = random.Random(seed)
    for _ in range(steps):
        batch = rng.sample(train, min(16, len(train)))
        nlp.update(batch, sgd=optimizer, drop=0.1)
    return nlp


def build(
    out: Path,
    family: str = "bert",
    encoder: Path = None,
    heads: Sequence[str] = ("tagger", "parser", "ner"),
    listener: str = "last",
    window: int = 144,
    stride: int = 104,
    steps: int = 30,
    conllu: Path = EWT_TRAIN,
    n_sentences: int = 200,
    layers: int = 2,
    hidden: int = 64,
    seed: int = 0,
) -> Path:
    """Write a trained curated pipeline to `out`; returns `out`."""
    if encoder is None:
        encoder, piece_loader = tiny_encoder(family, out.parent / f"{out.name}-encoder", layers, hidden, seed)
    else:
        from transformers import AutoConfig

        family = AutoConfig.from_pretrained(encoder).model_type
        piece_loader = {"@model_loaders": f"{SCT}.HFPieceEncoderLoader.v1", "name": str(encoder)}
    encoder_loader = {"@model_loaders": f"{SCT}.HFTransformerEncoderLoader.v1", "name": str(encoder)}
    nlp = with_loaders(build_nlp(family, Path(encoder), heads, listener, window, stride), encoder_loader, piece_loader)
    nlp = initialize_and_train(nlp, examples(nlp, conllu, n_sentences, seed), steps, seed)
    nlp.to_disk(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", type=Path)
    parser.add_argument("--family", default="bert", choices=sorted(ARCHITECTURES))
    parser.add_argument("--encoder", type=Path, default=None, help="a Hugging Face model folder")
    parser.add_argument("--heads", default="tagger,parser,ner", help=f"comma-separated, of {sorted(HEADS)}")
    parser.add_argument("--listener", default="last", choices=["last", "scalar"])
    parser.add_argument("--window", type=int, default=144)
    parser.add_argument("--stride", type=int, default=104)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--conllu", type=Path, default=EWT_TRAIN)
    parser.add_argument("--sentences", type=int, default=200)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    heads = [h for h in args.heads.split(",") if h]
    unknown = sorted(set(heads) - set(HEADS))
    if unknown:
        raise SystemExit(f"Unknown heads {unknown}; known: {sorted(HEADS)}")
    build(
        args.output, args.family, args.encoder, heads, args.listener, args.window, args.stride, args.steps,
        args.conllu, args.sentences, args.layers, args.hidden, args.seed,
    )  # fmt: skip
    print(f"Wrote {args.output}")


if __name__ == "__main__":
    main()
