"""What every `bertprod` command shares: the Typer group, user-error handling, JSON reports.

Flags mean the same everywhere: `--output` (or the OUTPUT argument) is the data a command makes,
`--report` the JSON report about it. Old spellings keep working with a deprecation message.
"""

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, Optional

import typer
from spacy.cli._util import app
from wasabi import msg

bertprod_cli = typer.Typer(
    name="bertprod", help="Distil, compress and benchmark transformer pipelines.", no_args_is_help=True
)
app.add_typer(bertprod_cli)

# What a user can cause (bad input, missing file, wrong version): a message, not a traceback.
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError, ImportError)


def optional_path(path: Optional[Path]) -> Optional[Path]:
    """Project vars left empty arrive as '' (a Path of '.'): treat them as not given."""
    return path if path is not None and str(path) not in ("", ".", "null", "None") else None


@contextmanager
def user_errors(*more: type) -> Iterator[None]:
    """Turn the errors a user can cause into `msg.fail` with the error's own message, exit code 1."""
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
