"""Turn pydantic validation errors into messages a researcher can act on.

Locations are written the way a study file reads (``dropout[0].p``, without pydantic's union tag),
range errors state the whole allowed range, unknown keys suggest the nearest known one, and unknown
plugin names list the registered ones.
"""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any
from typing import Union

from annotated_types import Ge
from annotated_types import Gt
from annotated_types import Le
from annotated_types import Lt
from pydantic import BaseModel
from pydantic import ValidationError

from framework import registry


_PLUGIN_SECTIONS = {"model": "models", "data": "datasets", "dropout": "strategies"}
_RANGE_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}
_TAG_ERRORS = ("union_tag_invalid", "union_tag_not_found")


def describe(error: ValidationError, raw: Any, schema: type[BaseModel]) -> list[tuple[str, str]]:
    """``(key, message)`` for each problem in ``error`` (raised validating ``raw``)."""
    problems = []
    for item in error.errors(include_url=False):
        if item["type"] == "default_factory_not_called":
            continue  # a default computed from another key (e.g. warmup_steps) that failed
        cause = item.get("ctx", {}).get("error")
        if isinstance(cause, KeyedValueError):
            problems.append((cause.key, str(cause)))
            continue
        loc, node, field_name, field = _walk(item["loc"], raw, schema)
        key = format_loc(loc)
        problems.append((key, _message(item, loc, node, field_name, field)))
    return problems


class KeyedValueError(ValueError):
    """A ValueError raised by a whole-spec validator that knows which key is at fault."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


def _walk(loc: tuple, raw: Any, schema: Any) -> tuple[list[Any], Any, str | None, Any]:
    """Follow ``loc`` through the raw input and the schema, dropping union tags.

    Returns the cleaned location, the raw node holding the last key, that key, and the pydantic
    FieldInfo of the last field (for its bounds) or the model class that lacks it (for typos).
    """
    clean: list[Any] = []
    node, parent = raw, None
    model: Any = schema
    field = None
    for part in loc:
        members = _members(model)
        # In a union, pydantic's location always names the member's tag, even when the member
        # also has a field of that name (``{name: percentile, percentile: 25}``).
        if isinstance(part, str) and (len(members) > 1 or isinstance(node, dict)
                                      and part not in node):
            tagged = [m for m in members if _tag(m) == part]
            if tagged:  # pydantic's union tag, not a key of the file
                model = tagged[0]
                continue
        clean.append(part)
        parent = node
        node = node[part] if _has(node, part) else None
        model, field = _step(model, part)
    last = clean[-1] if clean and isinstance(clean[-1], str) else None
    return clean, parent, last, field if field is not None else model


def _step(model: Any, part: Any) -> tuple[Any, Any]:
    for member in _members(model):
        if isinstance(member, type) and issubclass(member, BaseModel):
            field = member.model_fields.get(part) if isinstance(part, str) else None
            if field is None:
                return member, None
            return field.annotation, field
        origin = typing.get_origin(member)
        if origin in (list, dict):
            return typing.get_args(member)[-1], None
    return None, None


def _members(annotation: Any) -> list[Any]:
    if typing.get_origin(annotation) is typing.Annotated:
        return _members(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return [m for a in typing.get_args(annotation) for m in _members(a)]
    return [annotation] if annotation is not None else []


def _tag(member: Any) -> str | None:
    if isinstance(member, type) and issubclass(member, BaseModel):
        field = member.model_fields.get("name") or member.model_fields.get("type")
        args = typing.get_args(field.annotation) if field else ()
        return args[0] if len(args) == 1 else None
    return None


def _has(node: Any, part: Any) -> bool:
    if isinstance(node, dict):
        return part in node
    return isinstance(node, list) and isinstance(part, int) and part < len(node)


def format_loc(loc: list[Any]) -> str:
    """A location as a study file reads: ``dropout[0].p``, ``search.space['train.lr'].low``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif "." in str(part) or " " in str(part):
            out += f"[{str(part)!r}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _message(item: dict, loc: list, node: Any, name: str | None, field: Any) -> str:
    kind, msg = item["type"], item["msg"]
    if kind in _TAG_ERRORS and not _is_plugin_slot(loc):
        return _unknown_tag(item, loc, field)
    if kind in _TAG_ERRORS or (
        kind == "literal_error" and name == "name" and loc and loc[0] in _PLUGIN_SECTIONS
    ):
        return _unknown_plugin(loc, item.get("input"))
    if kind == "extra_forbidden" and name is not None:
        known = list(getattr(field, "model_fields", {}) or {})
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(known)}"
        return f"unknown key{hint}"
    if kind in _RANGE_ERRORS and field is not None:
        return f"{msg} (allowed: {_range(field, name)}; got {item['input']!r})"
    if kind == "missing":
        return "required key is missing"
    if "input" in item and kind not in ("value_error", "assertion_error"):
        return f"{msg} (got {item['input']!r})"
    return msg.removeprefix("Value error, ")


def _is_plugin_slot(loc: list) -> bool:
    """Whether ``loc`` is where a registered component is chosen (``model``, ``dropout[i]``)."""
    if loc in (["model"], ["data"]):
        return True
    return len(loc) == 2 and loc[0] == "dropout" and isinstance(loc[1], int)


def _unknown_tag(item: dict, loc: list, union: Any) -> str:
    """A tagged union (space parameter ``type``, sampler or pruner ``name``) with a bad tag."""
    ctx = item.get("ctx", {})
    discriminator = str(ctx.get("discriminator", "")).strip("'\"")
    known = [tag for tag in map(_tag, _members(union)) if tag]
    if not known:  # pydantic lists them itself when the schema walk found no members
        known = [t.strip(" '") for t in str(ctx.get("expected_tags", "")).split(",") if t.strip()]
    # Search-space entries are keyed by config paths, so say what they are rather than where.
    names = [part for part in loc if isinstance(part, str)]
    what = "parameter type" if "space" in names else f"{names[-1]} {discriminator}".strip()
    listed = ", ".join(known) or "?"
    tag = ctx.get("tag")
    if tag is None:
        return f"missing `{discriminator}:`; one of: {listed}"
    close = difflib.get_close_matches(str(tag), known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown {what} {tag!r}; known: {listed}{hint}"


def _unknown_plugin(loc: list, value: Any) -> str:
    reg: registry.Registry = getattr(registry, _PLUGIN_SECTIONS.get(loc[0], "strategies"))
    known = reg.names()
    name = value.get("name") if isinstance(value, dict) else value
    if name is None:
        return f"missing `name:`; registered {reg.kind} names: {', '.join(known)}"
    return reg.unknown(str(name))


def _range(field: Any, name: str | None) -> str:
    low = high = ""
    for bound in field.metadata:
        if isinstance(bound, Ge):
            low = f"{bound.ge} <= "
        elif isinstance(bound, Gt):
            low = f"{bound.gt} < "
        elif isinstance(bound, Le):
            high = f" <= {bound.le}"
        elif isinstance(bound, Lt):
            high = f" < {bound.lt}"
    return f"{low}{name or 'value'}{high}"
