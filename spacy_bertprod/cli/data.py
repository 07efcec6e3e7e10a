"""`data`: check and convert labelled data before any training starts."""

from pathlib import Path
from typing import Optional

import typer
from wasabi import msg

from ._util import bertprod_cli, optional_path, user_errors


@bertprod_cli.command("data")
def data_cli(
    task: str = typer.Argument(..., help="ner, textcat, textcat_multilabel or trf (a CoNLL-U treebank + NER)"),
    output: Path = typer.Argument(
        ..., help="Folder for train.spacy, dev.spacy, test.spacy, labels.json and data.json (trf: train/, dev/, test/)"
    ),
    train: Path = typer.Option(
        ...,
        "--train",
        help="Training data: .spacy, CoNLL/IOB, .jsonl (NER spans or text+label(s)), .csv/.tsv; trf: CoNLL-U",
    ),
    dev: Optional[Path] = typer.Option(
        None, "--dev", help="Dev data (same formats); none: a fixed stratified share of train is carved off"
    ),
    test: Path = typer.Option(..., "--test", help="Test data (same formats)"),
    train_limit: int = typer.Option(0, "--train-limit", help="Keep about N training docs (0: all)"),
    eval_limit: int = typer.Option(0, "--eval-limit", help="Keep about N dev and N test docs (0: all)"),
    dev_share: float = typer.Option(
        0.1, "--dev-share", help="Share of train carved off as dev when no dev file is given"
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the dev carve and of the stratified slices"),
    lang: str = typer.Option("en", "--lang", help="spaCy language whose tokenizer splits raw texts"),
    multilabel: str = typer.Option(
        "false", "--multilabel", help="textcat only: true for multi-label data (any number of labels per text)"
    ),
    config: Optional[Path] = typer.Option(
        None, "--config", help="Base training config: written to OUTPUT/config.cfg for the task (multi-label, language)"
    ),
    ner_train: Optional[Path] = typer.Option(None, "--ner-train", help="trf: an NER corpus beside the treebank"),
    ner_dev: Optional[Path] = typer.Option(None, "--ner-dev", help="trf: its dev file (none: carved from it)"),
    ner_test: Optional[Path] = typer.Option(None, "--ner-test", help="trf: its test file"),
    lexical_width: int = typer.Option(
        0,
        "--lexical-width",
        help="ner with --config: also give the NER head spaCy's lexical features (hash embeddings of NORM, PREFIX, "
        "SUFFIX, SHAPE) this wide beside the transformer's token vectors; 0: none",
    ),
):
    """Check and convert labelled data to .spacy splits, before any training starts."""
    from ..corpora import prepare_ner, prepare_textcat
    from ..corpora.config import config_for_task
    from ..corpora.treebank import prepare_treebank

    task = _checked_task(task, multilabel, lexical_width, config)
    with user_errors():
        common = dict(train_limit=train_limit, eval_limit=eval_limit, dev_share=dev_share, seed=seed, lang=lang)
        if task == "trf":
            ner = dict(
                ner_train=optional_path(ner_train), ner_dev=optional_path(ner_dev), ner_test=optional_path(ner_test)
            )
            common.pop("dev_share")
            info = prepare_treebank(train, optional_path(dev), test, output, **ner, **common)
        elif task == "ner":
            info = prepare_ner(train, optional_path(dev), test, output, **common)
        else:
            multi = task == "textcat_multilabel"
            info = prepare_textcat(train, optional_path(dev), test, output, multilabel=multi, **common)
        if config is not None:
            written = config_for_task(config, task, lang, lexical_width, with_ner=task != "trf" or "ner" in info)
            written.to_disk(output / "config.cfg", interpolate=False)
    _show(info, train, seed, output)


def _prepare(task: str, train: Path, dev: Optional[Path], test: Path, output: Path, common: dict, ner_files) -> dict:
    from ..corpora import prepare_ner, prepare_textcat
    from ..corpora.treebank import prepare_treebank

    if task == "trf":
        common = {k: v for k, v in common.items() if k != "dev_share"}
        ner = dict(zip(("ner_train", "ner_dev", "ner_test"), ner_files))
        return prepare_treebank(train, dev, test, output, **ner, **common)
    if task == "ner":
        return prepare_ner(train, dev, test, output, **common)
    return prepare_textcat(train, dev, test, output, multilabel=task == "textcat_multilabel", **common)


def _checked_task(task: str, multilabel: str, lexical_width: int, config: Optional[Path]) -> str:
    """The task (textcat + --multilabel true: textcat_multilabel), or exit with what is wrong."""
    if task not in ("ner", "textcat", "textcat_multilabel", "trf"):
        msg.fail(f"Unknown task '{task}': use ner, textcat, textcat_multilabel or trf.", exits=1)
    if multilabel.lower() not in ("true", "false", "1", "0"):
        msg.fail(f"--multilabel takes true or false, not '{multilabel}'.", exits=1)
    if task == "textcat" and multilabel.lower() in ("true", "1"):
        task = "textcat_multilabel"
    if lexical_width < 0 or (lexical_width and (task != "ner" or config is None)):
        msg.fail(
            f"--lexical-width {lexical_width}: give a positive width together with ner and --config (the NER head "
            "of the written config gets the features), or leave it at 0.",
            exits=1,
        )
    return task


def _show(info: dict, train: Path, seed: int, output: Path) -> None:
    for name, split in info["splits"].items():
        msg.info(f"{name}: " + ", ".join(f"{v:,} {k}" for k, v in split.items()))
    if "dev_carved" in info:
        msg.warn(
            f"No dev file given: carved a stratified {info['dev_carved']['share']:.0%} of {train} off as dev (seed "
            f"{seed})."
        )
    for path in info.get("replaced", []):
        msg.warn(f"Removed {path} (left by an earlier run: spaCy reads every .spacy file in a split folder)")
    for name, f in info["files"].items():
        for why, n in {**f["skipped"], **f["repaired"]}.items():
            msg.warn(f"{f['path']}: {n:,} x {why}")
    msg.good(
        f"{len(info['labels'])} labels -> {output}: "
        f"{', '.join(info['labels'][:20])}{' ...' if len(info['labels']) > 20 else ''}"
    )
