"""The training config for the data's task and language: exclusive or multi-label text classification.

The project's configs are written for exclusive classes; multi-label data needs the multi-label
component, a sigmoid output, a 0.5 threshold and its own scorer, with macro F as the score. This
rewrites exactly those settings with spaCy's Config API, so one base config serves both.
"""

from pathlib import Path

from thinc.api import Config

MULTILABEL = {
    "bertprod_soft_textcat": "bertprod_soft_textcat_multilabel",
    "textcat": "textcat_multilabel",
}


def config_for_task(base: Path, task: str, lang: str = "en") -> Config:
    config = Config().from_disk(base, interpolate=False)
    config["nlp"]["lang"] = lang
    if task != "textcat_multilabel":
        return config
    names = [n for n, block in config["components"].items() if block.get("factory") in MULTILABEL]
    if not names:
        raise ValueError(
            f"{base} has no textcat component to make multi-label (factories: "
            f"{[b.get('factory') for b in config['components'].values()]})."
        )
    for name in names:
        block = config["components"][name]
        block["factory"] = MULTILABEL[block["factory"]]
        block["threshold"] = 0.5
        block["scorer"] = {"@scorers": "spacy.textcat_multilabel_scorer.v2"}
        block["model"]["exclusive_classes"] = False
    config["training"]["score_weights"] = {"cats_macro_f": 1.0, "cats_micro_f": 0.0, "cats_score": 0.0}
    return config
