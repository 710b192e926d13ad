"""Command-line flags generated from a stage's frozen config dataclass, so defaults live in one place."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any, Sequence, TypeVar

from worldmodels.errors import WorldModelsError

Config = TypeVar("Config")


def add_config_arguments(parser: argparse.ArgumentParser, config_cls: type) -> None:
    """Add `--<field>` for every field of `config_cls`; help, aliases and choices come from metadata."""
    hints = typing.get_type_hints(config_cls)
    for field in dataclasses.fields(config_cls):
        if field.metadata.get("cli") is False:
            continue
        kind = hints[field.name]
        if typing.get_origin(kind) is typing.Union:  # Optional[X] -> X
            kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
        flags = [f"--{field.name}", *field.metadata.get("aliases", ())]
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
        parser.add_argument(
            *flags,
            dest=field.name,
            type=_parse_bool if kind is bool else kind,
            default=default,
            choices=field.metadata.get("choices"),
            help=f"{field.metadata.get('help', '')} (default: {default})",
        )


def config_from_args(config_cls: type[Config], args: argparse.Namespace, **overrides: Any) -> Config:
    names = {field.name for field in dataclasses.fields(config_cls)}
    values = {name: value for name, value in vars(args).items() if name in names}
    values.update(overrides)
    return config_cls(**values)


def parse_config(config_cls: type[Config], description: str | None, argv: Sequence[str] | None = None) -> Config:
    """Parse `argv` into a validated config: the whole argument handling of a stage's entry script."""
    parser = argparse.ArgumentParser(description=(description or "").strip().splitlines()[0] if description else None)
    add_config_arguments(parser, config_cls)
    config = config_from_args(config_cls, parser.parse_args(argv))
    return config.validate() if hasattr(config, "validate") else config


def require_at_least(config: Any, minimum: float, *names: str) -> None:
    """Refuse a flag below its minimum with a one-line error naming the flag."""
    for name in names:
        value = getattr(config, name)
        if value < minimum:
            raise WorldModelsError(f"--{name} must be >= {minimum}, got {value}")


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise argparse.ArgumentTypeError(f"expected 0/1 or true/false, got {text!r}")


def flag(default: Any, help: str, **metadata: Any) -> Any:
    """A dataclass field with its command-line help beside it."""
    return dataclasses.field(default=default, metadata={"help": help, **metadata})
