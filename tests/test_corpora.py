"""The user's own data: every supported format in, .spacy splits out; every broken file stopped
with its file, line and a fix. Fixtures are written by the tests."""

import json

import pytest
import spacy
from spacy.tokens import DocBin

from spacy_bertprod.corpora import DataError, prepare_ner, prepare_textcat
from spacy_bertprod.corpora.config import add_lexical_features, config_for_task

CONLL_TRAIN = """-DOCSTART- O

Ada\tB-PER
Lovelace\tI-PER
wrote\tO
in\tO
London\tB-LOC
.\tO

Turing\tB-PER
visited\tO
Manchester\tB-LOC

Grace\tB-PER
met\tO
Alan\tB-PER
in\tO
Paris\tB-LOC
"""
CONLL_TEST = "Ada B-PER\nlived O\nin O\nLondon B-LOC\n"


def write(path, text, encoding="utf8"):
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


def docs(path):
    return list(DocBin().from_disk(path).get_docs(spacy.blank("en").vocab))


def ents(doc):
    return [(e.text, e.label_) for e in doc.ents]


def test_conll_tab_and_space_separated_with_docstart(tmp_path):
    train = write(tmp_path / "train.conll", CONLL_TRAIN)
    test = write(tmp_path / "test.iob", CONLL_TEST)
    info = prepare_ner(train, None, test, tmp_path / "out", dev_share=0.34)
    assert info["labels"] == ["LOC", "PER"]
    assert info["dev_carved"]["share"] == 0.34
    everything = docs(tmp_path / "out" / "train.spacy") + docs(tmp_path / "out" / "dev.spacy")
    assert sorted(ents(d) for d in everything)[0] == [("Ada Lovelace", "PER"), ("London", "LOC")]
    assert ents(docs(tmp_path / "out" / "test.spacy")[0]) == [("Ada", "PER"), ("London", "LOC")]
    assert json.loads((tmp_path / "out" / "data.json").read_text())["files"]["train"]["format"] == "conll"


def test_iob_i_after_o_is_repaired_and_counted(tmp_path):
    train = write(tmp_path / "train.conll", CONLL_TRAIN + "\nthe\tO\nBig\tI-LOC\nApple\tI-LOC\n")
    test = write(tmp_path / "test.conll", CONLL_TEST)
    dev = write(tmp_path / "dev.conll", CONLL_TEST)
    info = prepare_ner(train, dev, test, tmp_path / "out")
    assert ents(docs(tmp_path / "out" / "train.spacy")[-1]) == [("Big Apple", "LOC")]
    assert list(info["files"]["train"]["repaired"].values()) == [1]


def test_bioes_tags(tmp_path):
    train = write(tmp_path / "train.bio", "New\tB-LOC\nYork\tE-LOC\nis\tO\nbig\tO\nBob\tS-PER\n\nAda\tS-PER\nruns\tO\n")
    info = prepare_ner(train, train, train, tmp_path / "out")
    assert ents(docs(tmp_path / "out" / "train.spacy")[0]) == [("New York", "LOC"), ("Bob", "PER")]
    assert info["labels"] == ["LOC", "PER"]


def test_prodigy_jsonl_spans_and_rejects_counted(tmp_path):
    rows = [
        {
            "text": "Ada Lovelace lived in London",
            "spans": [{"start": 0, "end": 12, "label": "PER"}, {"start": 22, "end": 28, "label": "LOC"}],
            "answer": "accept",
        },
        {"text": "Paris is nice", "spans": [{"start": 0, "end": 5, "label": "LOC"}]},
        {"text": "ignore me", "spans": [], "answer": "reject"},
        {"text": "Bob met Ada", "entities": [[0, 3, "PER"], [8, 11, "PER"]]},
    ]
    train = write(tmp_path / "train.jsonl", "\n".join(json.dumps(r) for r in rows))
    info = prepare_ner(train, train, train, tmp_path / "out")
    out = docs(tmp_path / "out" / "train.spacy")
    assert [ents(d) for d in out] == [
        [("Ada Lovelace", "PER"), ("London", "LOC")],
        [("Paris", "LOC")],
        [("Bob", "PER"), ("Ada", "PER")],
    ]
    assert info["files"]["train"]["skipped"] == {"Prodigy answer 'reject'": 1}


@pytest.mark.parametrize(
    "rows,message",
    [
        (
            [{"text": "Ada Lovelace", "spans": [{"start": 0, "end": 2, "label": "PER"}]}],
            r"train.jsonl:1: span 'Ad' \(0-2, PER\) does not start and end on token boundaries",
        ),
        (
            [
                {
                    "text": "Ada Lovelace",
                    "spans": [{"start": 0, "end": 12, "label": "PER"}, {"start": 4, "end": 12, "label": "PER"}],
                }
            ],
            "train.jsonl:1: spans .* overlap",
        ),
        ([{"text": "Ada"}, {"txt": "Bob"}], "train.jsonl:2: has no 'text' string"),
        (
            [{"text": "Ada", "spans": [{"start": 0, "end": 9, "label": "PER"}]}],
            "train.jsonl:1: span .* outside the text",
        ),
    ],
)
def test_bad_jsonl_spans_name_file_and_line(tmp_path, rows, message):
    train = write(tmp_path / "train.jsonl", "\n".join(json.dumps(r) for r in rows))
    with pytest.raises(DataError, match=message):
        prepare_ner(train, train, train, tmp_path / "out")


def test_broken_ner_files(tmp_path):
    test = write(tmp_path / "test.conll", CONLL_TEST)
    with pytest.raises(DataError, match=r"empty.conll: is empty"):
        prepare_ner(write(tmp_path / "empty.conll", "\n\n"), None, test, tmp_path / "out")
    with pytest.raises(DataError, match=r"bad.conll:2: tag 'X-PER' is not an IOB"):
        prepare_ner(write(tmp_path / "bad.conll", "Ada\tB-PER\nBob\tX-PER\n"), None, test, tmp_path / "out")
    with pytest.raises(DataError, match=r"one.conll:1: expected 'token<TAB>tag'"):
        prepare_ner(write(tmp_path / "one.conll", "Ada\n"), None, test, tmp_path / "out")
    with pytest.raises(DataError, match=r"latin.conll:2: is not valid UTF-8"):
        prepare_ner(
            write(tmp_path / "latin.conll", "Ada\tB-PER\nJos\xe9\tI-PER\n", "latin1"), None, test, tmp_path / "out"
        )
    with pytest.raises(DataError, match=r"test2.conll:2: has entity labels the training data never has: \['ORG'\]"):
        prepare_ner(
            write(tmp_path / "train.conll", CONLL_TRAIN),
            None,
            write(tmp_path / "test2.conll", "x\tO\nIBM\tB-ORG\n"),
            tmp_path / "out",
        )
    with pytest.raises(DataError, match=r"does not exist"):
        prepare_ner(tmp_path / "nope.conll", None, test, tmp_path / "out")
    with pytest.raises(DataError, match=r"extension \(.xlsx\)"):
        prepare_ner(write(tmp_path / "data.xlsx", "x"), None, test, tmp_path / "out")


INTENTS = "text,label\n" + "\n".join(
    f"{t},{label}"
    for label, ts in {
        "greet": ["hi there", "hello", "good morning", "hey", "howdy"],
        "bye": ["bye now", "see you", "good night", "farewell", "later"],
        "thanks": ["thanks a lot", "thank you", "cheers", "much obliged", "ta"],
    }.items()
    for t in ts
)


def test_csv_intents_with_a_carved_stratified_dev(tmp_path):
    train = write(tmp_path / "train.csv", INTENTS)
    test = write(tmp_path / "test.csv", "text,label\nhello you,greet\nbye bye,bye\n")
    info = prepare_textcat(train, None, test, tmp_path / "out", dev_share=0.2)
    dev = docs(tmp_path / "out" / "dev.spacy")
    assert sorted(max(d.cats, key=d.cats.get) for d in dev) == ["bye", "greet", "thanks"]  # one per label
    assert len(docs(tmp_path / "out" / "train.spacy")) == 12
    assert info["labels"] == ["bye", "greet", "thanks"]
    again = prepare_textcat(train, None, test, tmp_path / "again", dev_share=0.2)
    assert [d.text for d in docs(tmp_path / "again" / "dev.spacy")] == [d.text for d in dev] and again[
        "splits"
    ] == info["splits"]


def test_tsv_and_jsonl_textcat(tmp_path):
    tsv = write(tmp_path / "train.tsv", "intent\tutterance\ngreet\thello\nbye\tsee you\n")
    jsonl = write(
        tmp_path / "test.jsonl",
        '{"text": "hi", "label": "greet"}\n{"text": "ciao", "cats": {"bye": 1.0, "greet": 0.0}}\n',
    )
    prepare_textcat(tsv, tsv, jsonl, tmp_path / "out")
    assert [d.cats for d in docs(tmp_path / "out" / "test.spacy")] == [
        {"bye": 0.0, "greet": 1.0},
        {"bye": 1.0, "greet": 0.0},
    ]


def test_multilabel_jsonl_end_to_end_config(tmp_path):
    rows = [
        {"text": "refund late and rude", "labels": ["refund", "service"]},
        {"text": "rude staff", "labels": ["service"]},
        {"text": "money back please", "labels": ["refund"]},
        {"text": "fine", "labels": []},
    ]
    train = write(tmp_path / "train.jsonl", "\n".join(json.dumps(r) for r in rows))
    info = prepare_textcat(train, train, train, tmp_path / "out", multilabel=True)
    assert info["task"] == "textcat_multilabel"
    assert [d.cats for d in docs(tmp_path / "out" / "train.spacy")][0] == {"refund": 1.0, "service": 1.0}
    config = config_for_task("configs/textcat.cfg", "textcat_multilabel", "de")
    assert config["components"]["textcat"]["factory"] == "bertprod_soft_textcat_multilabel"
    assert config["components"]["textcat"]["model"]["exclusive_classes"] is False
    assert config["nlp"]["lang"] == "de"
    with pytest.raises(DataError, match="has 2 labels .* exclusive text classification needs exactly one"):
        prepare_textcat(train, train, train, tmp_path / "out2", multilabel=False)


def test_broken_textcat_files(tmp_path):
    test = write(tmp_path / "test.csv", "text,label\nhello,greet\n")
    with pytest.raises(DataError, match=r"nolabel.csv:1: has no label column \(columns: \['text', 'intent_name'\]\)"):
        prepare_textcat(write(tmp_path / "nolabel.csv", "text,intent_name\nhi,greet\n"), None, test, tmp_path / "o")
    with pytest.raises(DataError, match=r"notext.csv:1: has no text column"):
        prepare_textcat(write(tmp_path / "notext.csv", "body,label\nhi,greet\n"), None, test, tmp_path / "o")
    with pytest.raises(DataError, match=r"short.csv:3: has 1 fields, the header 2"):
        prepare_textcat(write(tmp_path / "short.csv", "text,label\nhi,greet\nlonely\n"), None, test, tmp_path / "o")
    with pytest.raises(DataError, match=r"nolab.csv:3: has an empty label"):
        prepare_textcat(write(tmp_path / "nolab.csv", "text,label\nhi,greet\nyo,\n"), None, test, tmp_path / "o")
    with pytest.raises(DataError, match=r"bad.jsonl:2: is not valid JSON"):
        prepare_textcat(
            write(tmp_path / "bad.jsonl", '{"text": "a", "label": "x"}\n{"text": \n'), None, test, tmp_path / "o"
        )
    train = write(tmp_path / "train.csv", INTENTS)
    with pytest.raises(DataError, match=r"test2.csv:3: has labels the training data never has: \['complain'\]"):
        prepare_textcat(
            train, None, write(tmp_path / "test2.csv", "text,label\nhi,greet\nugh,complain\n"), tmp_path / "o"
        )
    with pytest.raises(DataError, match=r"empty.csv: is empty"):
        prepare_textcat(write(tmp_path / "empty.csv", ""), None, test, tmp_path / "o")


def test_blank_texts_are_counted_not_silently_dropped(tmp_path):
    train = write(tmp_path / "train.csv", INTENTS + '\n" ",greet\n')
    info = prepare_textcat(train, train, train, tmp_path / "out")
    assert info["files"]["train"]["skipped"] == {"blank text": 1}


def test_spacy_files_pass_through(tmp_path):
    nlp = spacy.blank("en")
    doc = nlp.make_doc("Ada flew")
    doc.ents = [doc.char_span(0, 3, label="PER")]
    DocBin(docs=[doc]).to_disk(tmp_path / "ner.spacy")
    info = prepare_ner(tmp_path / "ner.spacy", tmp_path / "ner.spacy", tmp_path / "ner.spacy", tmp_path / "out")
    assert info["files"]["train"]["format"] == "spacy" and info["labels"] == ["PER"]
    with pytest.raises(DataError, match="no cats"):
        prepare_textcat(tmp_path / "ner.spacy", None, tmp_path / "ner.spacy", tmp_path / "o")


def test_cli_reports_carve_and_fails_cleanly(tmp_path):
    import subprocess
    import sys

    train = write(tmp_path / "train.csv", INTENTS)
    test = write(tmp_path / "test.csv", "text,label\nhello you,greet\n")
    base = [
        sys.executable,
        "-m",
        "spacy",
        "bertprod",
        "data",
        "textcat",
        str(tmp_path / "out"),
        "--train",
        str(train),
        "--test",
        str(test),
    ]
    result = subprocess.run(base + ["--dev", "", "--config", "configs/textcat.cfg"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "carved" in result.stdout and (tmp_path / "out" / "config.cfg").exists()
    result = subprocess.run(base + ["--multilabel", "maybe"], capture_output=True, text=True)
    assert result.returncode == 1 and "--multilabel takes true or false" in result.stdout
    result = subprocess.run(base + ["--config", "configs/textcat.cfg", "--lexical-width", "8"], capture_output=True)
    assert result.returncode == 1 and b"--lexical-width 8: give a positive width together with ner" in result.stdout
    bad = write(tmp_path / "bad.csv", "text,label\nhi,greet\nyo,\n")
    result = subprocess.run(base[:-4] + ["--train", str(bad), "--test", str(test)], capture_output=True, text=True)
    assert result.returncode == 1 and "bad.csv:3: has an empty label" in " ".join(result.stdout.split())


def test_lexical_features_config():
    """--lexical-width: every NER head concatenates its listener with spaCy's hash embeddings;
    textcat configs and negative widths are refused with the fix."""
    config = config_for_task("configs/ner.cfg", "ner", "en", lexical_width=32)
    tok2vec = config["components"]["ner"]["model"]["tok2vec"]
    assert tok2vec["@layers"] == "concatenate.v1"
    listener, lexical = tok2vec["*"].values()
    assert listener["@architectures"] == "spacy_bertprod.TransformerListener.v1"
    assert lexical["@architectures"] == "spacy.MultiHashEmbed.v2" and lexical["width"] == 32
    assert lexical["attrs"] == ["NORM", "PREFIX", "SUFFIX", "SHAPE"]
    plain = config_for_task("configs/ner.cfg", "ner", "en")
    assert plain["components"]["ner"]["model"]["tok2vec"]["@architectures"] == listener["@architectures"]
    with pytest.raises(
        ValueError, match=r"go to NER heads \(for other heads leave the lexical width at 0\), and this config has none"
    ):
        config_for_task("configs/textcat.cfg", "textcat", "en", lexical_width=32)
    with pytest.raises(ValueError, match="must be positive"):
        add_lexical_features(plain, -1)
