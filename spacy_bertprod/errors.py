"""The errors and warnings a user can cause, in one place (as spaCy's `spacy.errors`).

Every error the package raises for something the user can fix (bad input, a missing file, a wrong
version, an unsupported model) is a `BertprodError`: its message names what is wrong and how to
fix it, and the CLI prints it as one line (`cli/_util.user_errors`). Anything else is a bug and
keeps its traceback. The subclasses also derive from the builtin a caller would catch
(`ValueError`, `FileNotFoundError`, ...), so `except ValueError` keeps working.

Warnings go through `warnings.warn` with a `BertprodWarning` subclass: the CLI shows them, a
library user can filter them (`warnings.filterwarnings("ignore", category=Int8Warning)`), and
tests see them with `pytest.warns`. Messages whose wording is shared by several modules live in
`Errors`/`Warnings` with a code; where the condition is spaCy's own, spaCy's code is reused.
"""

from typing import Any, Dict, Optional


class BertprodError(Exception):
    """Something the user can fix; the message says what and how."""


class InvalidInput(BertprodError, ValueError):
    """A value, file content, pipeline or model this package cannot use as given."""


class MissingFile(BertprodError, FileNotFoundError):
    """A file or folder the command needs is not there."""


class OutputExists(BertprodError, FileExistsError):
    """The output is already there and the command was not asked to overwrite it."""


class MissingPackage(BertprodError, ImportError):
    """An optional dependency (an extra) is not installed."""


class ServiceError(BertprodError):
    """An HTTP answer other than 200 (status, message, headers such as Retry-After), on the
    service's side or as the client received it; status 0: the service could not be reached."""

    def __init__(self, status: int, message: str, headers: Optional[Dict[str, str]] = None):
        super().__init__(f"{status}: {message}" if status else message)
        self.status = status
        self.message = message
        self.headers = headers or {}

    def to_json(self) -> Dict[str, Any]:
        return {"error": {"status": self.status, "message": self.message}}


class BertprodWarning(UserWarning):
    """A result the user should look at; the command still completes."""


class Int8Warning(BertprodWarning):
    """int8 changed more of the sample's predictions than it should."""


class Errors:
    # spaCy's E953: a listener whose upstream component is not the one it needs.
    E953 = "E953 Component '{component}' listens to '{upstream}', which is not a {expected}. {fix}"
    E001 = (
        "E001 {where} has no transformer component (spacy-transformers `transformer` or `bertprod_transformer`); "
        "its pipeline is {pipe_names}."
    )
    E002 = (
        "E002 {where} was saved by spacy_bertprod {saved_version} in format {format}, and this is spacy_bertprod "
        "{version} (format {expected}). Upgrade: pip install -U spacy_bertprod"
    )
    E003 = "E003 {what} needs {package}: pip install {install}"


class Warnings:
    W001 = (
        "W001 percentile-{percentile} ranges change {share:.0%} of the sample's predictions: calibrating again "
        "with min/max ranges (outlier activations)"
    )
    W002 = "W002 {message}"
    W004 = (
        "W004 No --sample, and the pipeline's config names no training corpus that exists here ([paths] dev/train): "
        "int8 activation ranges are calibrated on {source}. For the best accuracy pass in-domain text, e.g. "
        "--sample your_dev.spacy."
    )
