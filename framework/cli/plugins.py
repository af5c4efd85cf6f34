"""``dropout-lab plugins list|show``: what is registered, and each schema in detail.

Docstrings and field descriptions are written in reStructuredText for the API docs; they reach
the terminal as plain text (:func:`plain`), each field's description a paragraph under it.
"""

from __future__ import annotations

import difflib
import inspect
import re
import textwrap

from pydantic.fields import FieldInfo
from rich.console import Console
from rich.table import Table
from rich.text import Text

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
            table.add_row(reg.kind, entry.name, entry.source, plain(entry.summary))
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
        console.print(Text.assemble((entry.name, "bold"), f" ({entry.source})"))
        doc = plain(entry.config.__doc__ or "")
        if doc:
            console.print(Text(_paragraphs(doc, console.width)))
        console.print(Text("fields", style="bold"))
        for field_name, field in entry.config.model_fields.items():
            console.print(_field_heading(field_name, field, console.width))
            if field.description:
                console.print(Text(_paragraphs(plain(field.description), console.width,
                                               FIELD_INDENT)))
        title, lines = _contract(entry)
        if lines:
            contract = Table(title=title, show_header=False)
            for label, value in lines.items():
                contract.add_row(label, plain(value))
            console.print(contract)


NAME_INDENT = 2
FIELD_INDENT = 6
"""Columns a field's description (and its heading's continuation) is indented by."""
_RST_LITERAL = re.compile(r"``(.+?)``")
_RST_ROLE = re.compile(r":[a-z]+:`([^`]+)`")


def plain(doc: str) -> str:
    """A docstring or field description as terminal text: reStructuredText literals
    (double backticks) and roles (``:mod:`x```) become their bare text, and the lines of a
    paragraph are joined (the terminal wraps them to its width; blank lines stay)."""
    paragraphs = inspect.cleandoc(doc).split("\n\n")
    text = "\n\n".join(" ".join(p.split()) for p in paragraphs)  # a literal may span lines
    return _RST_ROLE.sub(r"\1", _RST_LITERAL.sub(r"\1", text))


def _field_heading(name: str, field: FieldInfo, width: int) -> Text:
    """``name  type = default  (bounds)``, its continuation lines indented like the field's
    description."""
    default = _default(field)
    bounds = _bounds(field)
    line = (f"{name}  {_type_name(field.annotation)}"
            + (f"  {default}" if default == "(required)" else f" = {default}")
            + (f"  ({bounds})" if bounds else ""))
    heading = Text(textwrap.fill(line, width, initial_indent=" " * NAME_INDENT,
                                 subsequent_indent=" " * FIELD_INDENT, break_on_hyphens=False))
    heading.stylize("bold cyan", NAME_INDENT, NAME_INDENT + len(name))
    return heading


def _paragraphs(text: str, width: int, indent_by: int = 0) -> str:
    """``text`` wrapped to ``width``, each paragraph indented by ``indent_by`` columns."""
    indent = " " * indent_by
    return "\n\n".join(textwrap.fill(paragraph, width, initial_indent=indent,
                                      subsequent_indent=indent, break_on_hyphens=False)
                        for paragraph in text.split("\n\n"))


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


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "(required)"
    value = field.get_default(call_default_factory=True)
    return repr(value)


def _bounds(field: FieldInfo) -> str:
    parts = []
    for bound in field.metadata:
        for attr, symbol in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"),
                             ("min_length", "len >="), ("max_length", "len <=")):
            value = getattr(bound, attr, None)
            if value is not None:
                parts.append(f"{symbol} {value}")
    return ", ".join(parts)
