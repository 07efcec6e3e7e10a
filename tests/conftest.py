"""Tiny random encoders and small pipelines built locally: the suite never touches a hub."""

import contextlib
import random
from pathlib import Path

import numpy
import pytest
import spacy
from spacy.training import Example

WORDS = (
    "the a of to in and is was for on with at by from my your card account money transfer bank "
    "payment declined refund balance top up how why when where can i you we they help please "
    "london paris berlin tokyo lisbon madrid new york alice bob carol dave erin frank grace "
    "apple google amazon microsoft tesla visit visited met lives works moved flew yesterday today"
).split()
PEOPLE = ["Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace"]
PLACES = ["London", "Paris", "Berlin", "Tokyo", "Lisbon", "Madrid"]
CORPUS = [" ".join(random.Random(i).choices(WORDS, k=12)) for i in range(200)] + PEOPLE + PLACES


def save_bert(folder: Path, max_positions: int = 64, hidden_size: int = 32, intermediate_size: int = 64) -> Path:
    from tokenizers.implementations import BertWordPieceTokenizer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    trainer = BertWordPieceTokenizer(lowercase=True)
    trainer.train_from_iterator(CORPUS, vocab_size=300, min_frequency=1)
    folder.mkdir(parents=True)
    trainer.save_model(str(folder))
    tokenizer = BertTokenizerFast(str(folder / "vocab.txt"), model_max_length=max_positions)
    tokenizer.save_pretrained(folder)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=intermediate_size,
        max_position_embeddings=max_positions,
    )
    BertModel(config).save_pretrained(folder, safe_serialization=True)
    return folder


def _save_roberta(folder: Path, max_positions: int = 64) -> Path:
    from tokenizers.implementations import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaModel, RobertaTokenizerFast

    trainer = ByteLevelBPETokenizer()
    trainer.train_from_iterator(
        CORPUS, vocab_size=400, min_frequency=1, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    )
    folder.mkdir(parents=True)
    trainer.save_model(str(folder))
    tokenizer = RobertaTokenizerFast(
        str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=max_positions
    )
    tokenizer.save_pretrained(folder)
    config = RobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=max_positions + 2,
        pad_token_id=1,
    )
    RobertaModel(config).save_pretrained(folder, safe_serialization=True)
    return folder


def _save_albert(folder: Path, max_positions: int = 64) -> Path:
    from tokenizers import processors
    from tokenizers.implementations import SentencePieceUnigramTokenizer
    from transformers import AlbertConfig, AlbertModel, PreTrainedTokenizerFast

    trainer = SentencePieceUnigramTokenizer()
    specials = ["<pad>", "<unk>", "[CLS]", "[SEP]"]
    trainer.train_from_iterator(CORPUS, vocab_size=300, special_tokens=specials, unk_token="<unk>")
    backend = trainer._tokenizer
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        special_tokens=[("[CLS]", backend.token_to_id("[CLS]")), ("[SEP]", backend.token_to_id("[SEP]"))],
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="<unk>",
        pad_token="<pad>",
        cls_token="[CLS]",
        sep_token="[SEP]",
        model_max_length=max_positions,
    )
    folder.mkdir(parents=True)
    tokenizer.save_pretrained(folder)
    config = AlbertConfig(
        vocab_size=len(tokenizer),
        embedding_size=16,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=max_positions,
        pad_token_id=0,
    )
    AlbertModel(config).save_pretrained(folder, safe_serialization=True)
    return folder


@contextlib.contextmanager
def kept_project_locks(project_dir: Path):
    """Run a workflow in the repository without losing its cache: spaCy's project.lock keeps one
    entry per command name, so a test run (`--vars.run smoke`) would otherwise replace the entries
    of the user's real run and make `spacy project run ner` retrain the teacher."""
    locks = [project_dir / "project.lock", project_dir / "project.seeds.lock"]
    saved = {path: path.read_bytes() if path.exists() else None for path in locks}
    try:
        yield
    finally:
        for path, content in saved.items():
            if content is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(content)


ENCODER_BUILDERS = {"bert": save_bert, "roberta": _save_roberta, "albert": _save_albert}


@pytest.fixture(scope="session")
def encoders(tmp_path_factory):
    root = tmp_path_factory.mktemp("encoders")
    return {name: build(root / name) for name, build in ENCODER_BUILDERS.items()}


def make_examples(nlp, n: int = 40, seed: int = 0):
    """Synthetic NER + textcat examples: 'PERSON visited PLACE' style sentences."""
    rng = random.Random(seed)
    examples = []
    for _ in range(n):
        person, place = rng.choice(PEOPLE), rng.choice(PLACES)
        filler = " ".join(rng.choices(WORDS, k=rng.randint(0, 6)))
        travel = rng.random() < 0.5
        verb = "flew to" if travel else "works in"
        text = f"{person} {verb} {place} {filler}".strip()
        ents = [(0, len(person), "PERSON")]
        start = len(person) + len(verb) + 2
        ents.append((start, start + len(place), "GPE"))
        cats = {"TRAVEL": float(travel), "WORK": float(not travel)}
        examples.append(Example.from_dict(nlp.make_doc(text), {"entities": ents, "cats": cats}))
    return examples


def listener_block(arch: str = "spacy_bertprod.TransformerListener.v1"):
    return {"@architectures": arch, "grad_factor": 1.0, "pooling": {"@layers": "reduce_mean.v1"}}


def build_pipeline(
    encoder_dir: Path,
    *,
    stock: bool = False,
    window: int = 16,
    stride: int = 12,
    textcat: str = "textcat",
    mixed_precision: bool = False,
    reductions=("mean",),
):
    """A blank English pipeline: transformer + ner + textcat listening to it."""
    nlp = spacy.blank("en")
    if stock:
        import spacy_transformers  # noqa: F401

        trf_config = {
            "model": {
                "@architectures": "spacy-transformers.TransformerModel.v3",
                "name": str(encoder_dir),
                "get_spans": {
                    "@span_getters": "spacy-transformers.strided_spans.v1",
                    "window": window,
                    "stride": stride,
                },
                "tokenizer_config": {"use_fast": True},
            }
        }
        nlp.add_pipe("transformer", config=trf_config)
        arch = "spacy-transformers.TransformerListener.v1"
    else:
        trf_config = {
            "model": {
                "@architectures": "spacy_bertprod.TorchTransformer.v2",
                "name": str(encoder_dir),
                "get_spans": {"@misc": "spacy_bertprod.strided_spans.v1", "window": window, "stride": stride},
                "mixed_precision": mixed_precision,
            }
        }
        nlp.add_pipe("bertprod_transformer", name="transformer", config=trf_config)
        arch = "spacy_bertprod.TransformerListener.v1"
    nlp.add_pipe(
        "ner",
        config={
            "model": {
                "@architectures": "spacy.TransitionBasedParser.v2",
                "state_type": "ner",
                "extra_state_tokens": False,
                "hidden_width": 32,
                "maxout_pieces": 2,
                "use_upper": True,
                "tok2vec": listener_block(arch),
            }
        },
    )
    nlp.add_pipe(
        textcat,
        config={
            "model": {
                "@architectures": "spacy.TextCatReduce.v1",
                "exclusive_classes": textcat == "textcat",
                **{f"use_reduce_{r}": r in reductions for r in ("first", "last", "max", "mean")},
                "tok2vec": listener_block(arch),
            }
        },
    )
    return nlp


def train(nlp, examples, steps: int = 8, seed: int = 0):
    """A few real updates; returns the loss history."""
    from thinc.api import fix_random_seed

    fix_random_seed(seed)
    optimizer = nlp.initialize(lambda: examples)
    history = []
    for step in range(steps):
        losses = {}
        batch = examples[(step * 8) % len(examples) :][:8] or examples[:8]
        nlp.update(batch, sgd=optimizer, losses=losses)
        history.append(losses)
    return history


@pytest.fixture(scope="session")
def trained_bert(encoders, tmp_path_factory):
    """A trained bertprod torch pipeline (ner + textcat) saved to disk."""
    nlp = build_pipeline(encoders["bert"])
    examples = make_examples(nlp)
    train(nlp, examples, steps=12)
    path = tmp_path_factory.mktemp("pipelines") / "bert_torch"
    nlp.to_disk(path)
    return path


@pytest.fixture(scope="session")
def compressed_bert(trained_bert, tmp_path_factory):
    from spacy_bertprod.compress import CompressSettings, compress_pipeline

    root = tmp_path_factory.mktemp("compressed")
    out = {}
    for quantize in ("fp32", "int8"):
        out[quantize] = root / quantize
        compress_pipeline(trained_bert, out[quantize], CompressSettings(quantize=quantize))
    return out


TEXTS = [
    "Alice flew to Paris yesterday",
    "Bob works in Berlin with Carol",
    "how do i top up my card in Lisbon",
    "Grace visited Tokyo and met Dave",
    "",
    "   ",
    "x",
    "Frank moved to Madrid " * 30,
]


def compressed_cats(text: str, cats):
    """The cats a compressed pipeline (head in the graph) gives where a spaCy head gave `cats`:
    the same, except that an empty doc scores 0 for every label in any batch (spaCy's head scores
    softmax(b) for it beside other docs, 0 alone)."""
    return {label: 0.0 for label in cats} if not text else cats


def snapshot(docs):
    """Per doc: entities, cats and hidden states, for comparing runs."""
    return [([(e.start_char, e.end_char, e.label_) for e in d.ents], d.cats, d._.trf_data.hidden) for d in docs]


def assert_same(got, expected, atol=1e-4):
    """Same entities, and scores/hidden states equal up to float noise from other batch shapes.

    (Padding lengths differ between batchings; fp32 results then differ in the last bits.)
    """
    assert len(got) == len(expected)
    for (ents_a, cats_a, hidden_a), (ents_b, cats_b, hidden_b) in zip(got, expected):
        assert ents_a == ents_b
        assert cats_a.keys() == cats_b.keys()
        for label in cats_a:
            assert cats_a[label] == pytest.approx(cats_b[label], abs=atol)
        numpy.testing.assert_allclose(hidden_a, hidden_b, atol=atol)


# As in an environment without them: spaCy imports every installed package's entry points when it
# loads a pipeline, so the torch libraries' are hidden first, then their imports fail.
BLOCK_TORCH = """
import sys, catalogue
everything = catalogue.AVAILABLE_ENTRY_POINTS
groups = everything.keys() if hasattr(everything, "keys") else {e.group for e in everything}
catalogue.AVAILABLE_ENTRY_POINTS = {
    g: [e for e in (everything.select(group=g) if hasattr(everything, "select") else everything[g])
        if not e.value.startswith(("spacy_transformers", "spacy_curated_transformers"))] for g in groups
}
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "transformers", "spacy_transformers", "spacy_curated_transformers",
                                  "curated_transformers"):
            raise ImportError(f"{name} is blocked")
sys.meta_path.insert(0, Block())
"""
