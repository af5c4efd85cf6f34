"""``dropout-lab plugins list|show``: what is registered, and each schema in detail."""

from __future__ import annotations

import difflib

from rich.console import Console
from rich.table import Table

from framework import registry
from framework.errors import SpecError


KINDS = (registry.strategies, registry.models, registry.datasets)


def _discover(paths: list[str]) -> None:
    registry.discover()
    for path in paths:
        registry.load_plugin_path(path, key=f"--plugins {path}")


def print_plugin_list(paths: list[str]) -> None:
    _discover(paths)
    table = Table(title="registered components")
    for column in ("kind", "name", "source", "description"):
        table.add_column(column, overflow="fold")
    for reg in KINDS:
        for entry in reg.entries():
            table.add_row(reg.kind, entry.name, entry.source, entry.summary)
    Console().print(table)


def print_plugin_schema(name: str, paths: list[str]) -> None:
    _discover(paths)
    matches = [reg.get(name) for reg in KINDS if name in reg]
    if not matches:
        known = sorted(n for reg in KINDS for n in reg.names())
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; registered: {', '.join(known)}"
        raise SpecError(f"nothing is registered as {name!r}{hint}")
    console = Console()
    for entry in matches:
        console.print(f"[bold]{entry.name}[/] ({entry.source})")
        doc = (entry.config.__doc__ or "").strip()
        if doc:
            console.print(doc)
        table = Table()
        for column in ("field", "type", "default", "bounds", "description"):
            table.add_column(column, overflow="fold")
        for field_name, field in entry.config.model_fields.items():
            table.add_row(field_name, _type_name(field.annotation), _default(field),
                          _bounds(field), field.description or "")
        console.print(table)
        title, lines = _contract(entry)
        if lines:
            contract = Table(title=title, show_header=False)
            for label, value in lines.items():
                contract.add_row(label, value)
            console.print(contract)


def _contract(entry: registry.Entry) -> tuple[str, dict[str, str]]:
    """What a strategy needs or a model offers with its default config (if it has one)."""
    try:
        config = entry.config()
    except ValueError:  # required fields: there is no default config to describe
        return "", {}
    for method, title in (("needs", "needs (checked when a study is validated)"),
                          ("capabilities", "offers")):
        declared = getattr(config, method, None)
        described = declared() if declared is not None else None
        if described is not None:
            return f"{title}, with the defaults", described.describe()
    return "", {}


def _type_name(annotation: object) -> str:
    text = annotation.__name__ if isinstance(annotation, type) else str(annotation)
    return text.replace("typing.", "")


def _default(field) -> str:
    if field.is_required():
        return "(required)"
    value = field.get_default(call_default_factory=True)
    return repr(value)


def _bounds(field) -> str:
    parts = []
    for bound in field.metadata:
        for attr, symbol in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"),
                             ("min_length", "len >="), ("max_length", "len <=")):
            value = getattr(bound, attr, None)
            if value is not None:
                parts.append(f"{symbol} {value}")
    return ", ".join(parts)
