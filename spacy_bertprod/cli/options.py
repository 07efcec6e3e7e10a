"""Typer options built from settings dataclasses (see spacy_bertprod/options.py).

`with_options(CompressSettings)` appends one option per field that declares a flag to the
command's own arguments and hands the command their values as `options` (a dict by field name);
the command builds its settings with `from_options`. Typer reads a function's signature, so the
wrapper's `__signature__` and annotations say what the options are.
"""

import dataclasses
import functools
import inspect
from typing import Callable, Optional, Sequence, Type

import typer

from ..options import CLI_TYPE, FLAGS, HELP, option_fields


def _default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory()


def _parameter(f: dataclasses.Field) -> inspect.Parameter:
    annotation = f.metadata.get(CLI_TYPE) or f.type
    default = _default(f)
    if isinstance(default, list):  # list fields are given as one comma-separated option
        default = ",".join(str(x) for x in default)
    option = typer.Option(default, *f.metadata[FLAGS], help=f.metadata[HELP])
    return inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation)


def with_options(*classes: Type, only: Optional[Sequence[str]] = None) -> Callable:
    """Add the options of `classes` (only the fields named in `only`, when given) to a command."""

    def decorate(command: Callable) -> Callable:
        fields = [f for cls in classes for f in option_fields(cls, only)]
        names = [f.name for f in fields]
        own = [p for name, p in inspect.signature(command).parameters.items() if name != "options"]
        clash = set(names) & {p.name for p in own}
        if clash or len(set(names)) != len(names):
            raise TypeError(f"{command.__name__}: option names declared twice: {sorted(clash) or names}")
        parameters = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own] + [_parameter(f) for f in fields]

        @functools.wraps(command)
        def wrapper(**kwargs):
            options = {name: kwargs.pop(name) for name in names}
            return command(options=options, **kwargs)

        wrapper.__signature__ = inspect.Signature(parameters)
        wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
        del wrapper.__wrapped__  # typer must read the new signature, not the command's
        return wrapper

    return decorate
