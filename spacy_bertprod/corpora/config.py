"""The training config for the data's task and language: exclusive or multi-label text classification,
and NER heads that may also see spaCy's lexical features.

The project's configs are written for exclusive classes; multi-label data needs the multi-label
component, a sigmoid output, a 0.5 threshold and its own scorer, with macro F as the score. This
rewrites exactly those settings with spaCy's Config API, so one base config serves both.
"""

from pathlib import Path
from typing import List

from thinc.api import Config

from ..errors import InvalidInput

MULTILABEL = {
    "bertprod_soft_textcat": "bertprod_soft_textcat_multilabel",
    "textcat": "textcat_multilabel",
}


# The NER factories whose head reads token vectors through model.tok2vec.
NER_FACTORIES = ("ner", "bertprod_distill_ner")
# spaCy's efficiency configs' lexical attributes and hash-table rows (spacy init config).
LEXICAL_ATTRS = ["NORM", "PREFIX", "SUFFIX", "SHAPE"]
LEXICAL_ROWS = [5000, 1000, 2500, 2500]


def config_for_task(base: Path, task: str, lang: str = "en", lexical_width: int = 0, with_ner: bool = True) -> Config:
    """`base` for the data: its language, lexical features, multi-label textcat, and without its ner
    when the data has no entities (a treebank alone)."""
    config = Config().from_disk(base, interpolate=False)
    config["nlp"]["lang"] = lang
    if not with_ner and "ner" in config["components"]:
        config["nlp"]["pipeline"] = [name for name in config["nlp"]["pipeline"] if name != "ner"]
        del config["components"]["ner"]
        for key in [k for k in config["training"]["score_weights"] if k.startswith("ents_")]:
            del config["training"]["score_weights"][key]
    if lexical_width:
        add_lexical_features(config, lexical_width)
    if task != "textcat_multilabel":
        return config
    names = _components_made_by(config, MULTILABEL, f"{base} has no textcat component to make multi-label")
    for name in names:
        block = config["components"][name]
        block["factory"] = MULTILABEL[block["factory"]]
        block["threshold"] = 0.5
        block["scorer"] = {"@scorers": "spacy.textcat_multilabel_scorer.v2"}
        block["model"]["exclusive_classes"] = False
    config["training"]["score_weights"] = {"cats_macro_f": 1.0, "cats_micro_f": 0.0, "cats_score": 0.0}
    return config


def _components_made_by(config: Config, factories, missing: str) -> List[str]:
    """The names of the config's components that `factories` make; `missing` and the factories
    the config does have when there are none."""
    names = [n for n, block in config["components"].items() if block.get("factory") in factories]
    if not names:
        found = [block.get("factory") for block in config["components"].values()]
        raise InvalidInput(f"{missing} (factories: {found}).")
    return names


def add_lexical_features(config: Config, width: int) -> Config:
    """Give every NER head spaCy's lexical features beside the transformer's token vectors.

    A shallow student has little depth to work out what a word looks like (its case, prefix and
    suffix), and an uncased encoder never sees case at all; hash embeddings of NORM, PREFIX, SUFFIX
    and SHAPE (what spaCy's CNN pipelines start from) cost four table lookups per token. Built from
    spaCy's own layers (concatenate.v1 of the listener and spacy.MultiHashEmbed.v2), so a pipeline
    trained this way loads, compresses and serves with nothing new registered.
    """
    if width < 0:
        raise InvalidInput(f"The lexical features' width must be positive (or 0 for none), not {width}.")
    names = _components_made_by(
        config,
        NER_FACTORIES,
        "Lexical features go to NER heads (for other heads leave the lexical width at 0), and this config has none",
    )
    for name in names:
        model = config["components"][name]["model"]
        lexical = {
            "@architectures": "spacy.MultiHashEmbed.v2",
            "width": width,
            "attrs": list(LEXICAL_ATTRS),
            "rows": list(LEXICAL_ROWS),
            "include_static_vectors": False,
        }
        model["tok2vec"] = {"@layers": "concatenate.v1", "*": {"transformer": model["tok2vec"], "lexical": lexical}}
    return config
