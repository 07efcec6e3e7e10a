"""CoNLL-U treebanks: spaCy's converter for what it handles (multiword tokens, empty nodes), FILE:LINE
refusals for what it would crash on or turn into a wrong tree, and the multi-task corpus layout."""

from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin

from spacy_bertprod.corpora.conllu import read_conllu
from spacy_bertprod.corpora.readers import DataError
from spacy_bertprod.corpora.treebank import prepare_treebank

GOOD = """# sent_id = 1
# text = I don't know.
1	I	I	PRON	PRP	Case=Nom	4	nsubj	_	_
2-3	don't	_	_	_	_	_	_	_	_
2	do	do	AUX	VBP	Mood=Ind	4	aux	_	_
3	n't	not	PART	RB	_	4	advmod	_	_
4	know	know	VERB	VB	VerbForm=Inf	0	root	_	SpaceAfter=No
4.1	knows	know	VERB	VBZ	_	_	_	4:conj	_
5	.	.	PUNCT	.	_	4	punct	_	_

# sent_id = 2
1	Hello	hello	INTJ	UH	_	0	root	_	_

"""


def write(tmp_path: Path, text: str, name: str = "t.conllu") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf8")
    return path


def test_good_treebank_converts_as_spacy_does(tmp_path):
    nlp = spacy.blank("en")
    docs, stats = read_conllu(write(tmp_path, GOOD), nlp, n_sents=1)
    assert [t.text for t in docs[0]] == ["I", "do", "n't", "know", "."]
    assert docs[0].text.rstrip() == "I don't know."
    assert [t.dep_ for t in docs[0]] == ["nsubj", "aux", "advmod", "ROOT", "punct"]
    assert [t.lemma_ for t in docs[0]][2] == "not"
    assert str(docs[0][0].morph) == "Case=Nom"
    assert stats.repaired == {"multiword tokens kept as their words": 1}
    assert stats.skipped == {"empty nodes (enhanced dependencies only)": 1}


@pytest.mark.parametrize(
    "bad, line, message",
    [
        (
            GOOD.replace("1\tI\tI\tPRON\tPRP\tCase=Nom\t4\tnsubj\t_\t_", "1\tI\tI\tPRON\tPRP\t4\tnsubj\t_\t_"),
            3,
            "columns",
        ),
        (GOOD.replace("\t4\tnsubj", "\t9\tnsubj"), 3, "HEAD 9"),
        (GOOD.replace("\t4\tnsubj", "\tx\tnsubj"), 3, "HEAD 'x'"),
        (GOOD.replace("\t4\tnsubj", "\t1\tnsubj"), 3, "cycle"),
        (GOOD.replace("\t0\troot", "\t5\troot"), 3, "no root"),
        (GOOD.replace("5\t.\t.", "7\t.\t."), 9, "ID '7'"),
    ],
)
def test_bad_treebank_is_refused_with_file_and_line(tmp_path, bad, line, message):
    path = write(tmp_path, bad)
    with pytest.raises(DataError, match=message) as err:
        read_conllu(path, spacy.blank("en"))
    assert f"{path}:{line}" in str(err.value)


def test_treebank_and_ner_corpus_share_each_split_folder(tmp_path):
    conllu = write(tmp_path, GOOD * 3)
    ner = write(tmp_path, "Alice\tB-person\nflew\tO\n\nBob\tB-person\nran\tO\n", "ner.conll")
    info = prepare_treebank(conllu, conllu, conllu, tmp_path / "out", ner_train=ner, ner_dev=ner, ner_test=ner)
    nlp = spacy.blank("en")
    for split in ("train", "dev", "test"):
        ud = list(DocBin().from_disk(tmp_path / "out" / split / "1-treebank.spacy").get_docs(nlp.vocab))
        ents = list(DocBin().from_disk(tmp_path / "out" / split / "2-ner.spacy").get_docs(nlp.vocab))
        assert ud[0].has_annotation("DEP") and not ud[0].has_annotation("ENT_IOB")
        assert ents[0].ents and not ents[0].has_annotation("DEP")
    assert info["ner"]["labels"] == ["person"]
    with pytest.raises(Exception, match="dev"):
        prepare_treebank(conllu, None, conllu, tmp_path / "none")


def test_a_rerun_leaves_only_its_own_files_in_the_split_folders(tmp_path):
    """A split folder is read whole by spaCy: a file from an earlier run (here its NER corpus, gone from
    this run) must not stay behind and silently join the data."""
    conllu = write(tmp_path, GOOD * 3)
    ner = write(tmp_path, "Alice\tB-person\nflew\tO\n\nBob\tB-person\nran\tO\n", "ner.conll")
    prepare_treebank(conllu, conllu, conllu, tmp_path / "out", ner_train=ner, ner_dev=ner, ner_test=ner)
    (tmp_path / "out" / "dev" / "old-name.spacy").write_bytes(b"")
    info = prepare_treebank(conllu, conllu, conllu, tmp_path / "out")
    for split in ("train", "dev", "test"):
        assert sorted(p.name for p in (tmp_path / "out" / split).glob("*.spacy")) == ["1-treebank.spacy"]
    assert sorted(Path(path).name for path in info["replaced"]) == ["2-ner.spacy"] * 3 + ["old-name.spacy"]
    again = prepare_treebank(conllu, conllu, conllu, tmp_path / "out")
    assert again["replaced"] == []  # its own files, written again, are not reported as stale
