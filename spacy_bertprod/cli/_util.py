"""What every `bertprod` command shares: the Typer group, user-error handling, JSON reports.

Flags mean the same everywhere: `--output` (or the OUTPUT argument) is the data a command makes,
`--report` the JSON report about it. Old spellings keep working with a deprecation message.
"""

import json
import logging
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, Optional

import typer
from spacy.cli._util import app
from wasabi import msg

from ..errors import BertprodError, BertprodWarning
from ..options import optional_path  # noqa: F401  (the commands' shared helper)

bertprod_cli = typer.Typer(
    name="bertprod", help="Distil, compress and benchmark transformer pipelines.", no_args_is_help=True
)
app.add_typer(bertprod_cli)

# What a user can cause (bad input, missing file, wrong version): a message, not a traceback.
# Anything else is a bug and keeps its traceback.
USER_ERRORS = (BertprodError,)


@contextmanager
def console() -> Iterator[None]:
    """While a command runs: the package's progress (logging, INFO) printed as plain lines, and its
    warnings (`BertprodWarning`) as wasabi warnings. A library user's own logging and warning
    filters decide instead when the package is imported, not run from the CLI."""
    logger = logging.getLogger("spacy_bertprod")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    old_level, old_propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False

    def show(message, category, *args, **kwargs):
        if issubclass(category, BertprodWarning):
            msg.warn(str(message))
        else:
            show_default(message, category, *args, **kwargs)

    with warnings.catch_warnings():
        show_default = warnings.showwarning
        warnings.showwarning = show
        try:
            yield
        finally:
            logger.removeHandler(handler)
            logger.setLevel(old_level)
            logger.propagate = old_propagate


@contextmanager
def user_errors(*more: type) -> Iterator[None]:
    """Run a command's work: progress and warnings on the console, and the errors a user can cause
    as `msg.fail` with the error's own message, exit code 1 (a bug keeps its traceback).
    `more`: other libraries' errors that mean the same here (spaCy's OSError for a missing pipeline)."""
    with console():
        try:
            yield
        except USER_ERRORS + more as err:
            msg.fail(str(err), exits=1)


def report_path(report: Optional[Path], old_output: Optional[Path], command: str) -> Optional[Path]:
    """`--report`, or the deprecated `--output` that meant the same for this command."""
    if old_output is not None:
        msg.warn(f"`bertprod {command} --output` is deprecated: write `--report {old_output}` (the same JSON report).")
        if report is None:
            return old_output
    return report


def write_report(info: Dict, report: Optional[Path], *, show: bool = True) -> None:
    """Print the JSON report (unless show=False) and write it to `report` when given."""
    text = json.dumps(info, indent=2)
    if show:
        print(text)
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(text, encoding="utf8")
        msg.good(f"Wrote {report}")
