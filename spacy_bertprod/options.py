"""Settings declared once: a dataclass field carries its command-line flag and help.

A settings dataclass (compress's `CompressSettings`, `QuantizeSettings`) is the one place an
option is declared: its type, default, flag, help and how a command-line string becomes the
field's value. `cli/options.py` builds a command's options from these fields, and the report is
written from the same object, so a new option is one edit.
"""

import dataclasses
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence, Type

FLAGS, HELP, PARSE, CLI_TYPE = "flags", "help", "parse", "cli_type"


def cli_field(
    default: Any = dataclasses.MISSING,
    *flags: str,
    help: str,
    default_factory: Any = dataclasses.MISSING,
    parse: Optional[Callable[[Any], Any]] = None,
    cli_type: Any = None,
) -> Any:
    """A dataclass field with a command-line option: `flags` as typer writes them
    ("--per-channel/--per-tensor", "-q"), `parse` turns the option's value into the field's
    (e.g. "a,b" -> ["a", "b"]), `cli_type` the option's type when it differs from the field's."""
    if not flags or not all(str(flag).startswith("-") for flag in flags):
        raise TypeError(f"cli_field needs its default (or dataclasses.MISSING) and then its flags, got {flags!r}")
    metadata = {FLAGS: flags, HELP: help, PARSE: parse, CLI_TYPE: cli_type}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def option_fields(cls: Type, only: Optional[Sequence[str]] = None) -> list:
    """The fields of `cls` (and of its nested settings dataclasses) that have a command-line option."""
    found = []
    for f in dataclasses.fields(cls):
        if FLAGS in f.metadata and (only is None or f.name in only):
            found.append(f)
        elif _nested(f) is not None:
            found += option_fields(_nested(f), only)
    return found


def from_options(cls: Type, values: Dict[str, Any], **fixed: Any):
    """An instance of `cls` from option values by field name (parsed as each field says), nested
    settings dataclasses built from the same values; `fixed` sets fields that have no option."""
    kwargs = dict(fixed)
    for f in dataclasses.fields(cls):
        if f.name in kwargs:
            continue
        if FLAGS in f.metadata and f.name in values:
            parse = f.metadata[PARSE]
            kwargs[f.name] = parse(values[f.name]) if parse is not None else values[f.name]
        elif _nested(f) is not None:
            kwargs[f.name] = from_options(_nested(f), values)
    return cls(**kwargs)


def optional_path(path: Optional[Path]) -> Optional[Path]:
    """Project vars left empty arrive as '' (a Path of '.'): treat them as not given."""
    return path if path is not None and str(path) not in ("", ".", "null", "None") else None


def comma_list(text: str) -> list:
    """ "a,b,,c" -> ["a", "b", "c"] (an option that lists names)."""
    return [part.strip() for part in str(text).split(",") if part.strip()]


def _nested(f: dataclasses.Field) -> Optional[Type]:
    factory = f.default_factory
    if factory is not dataclasses.MISSING and isinstance(factory, type) and dataclasses.is_dataclass(factory):
        return factory
    return None
