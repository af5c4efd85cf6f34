"""One generic registry class; ``framework.registry`` holds one instance per kind of component."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
import difflib
import fnmatch
import importlib
import typing
from typing import Any


_source: ContextVar[str] = ContextVar("registration_source", default="builtin")
PLUGIN_HINT = ("From a plugin file? Load it with --plugins FILE or list it under the study's "
               "`plugins:`.")
"""Said with every unknown name: installed packages register themselves, plugin files do not."""


class DuplicateName(ValueError):
    """A component registered under a name that another source already registered."""

    def __init__(self, kind: str, name: str, registered_by: str):
        super().__init__(f"{kind} {name!r} is already registered (from {registered_by})")
        self.kind = kind
        self.name = name
        self.registered_by = registered_by


@contextmanager
def current_source(source: str) -> Iterator[None]:
    """Attribute registrations made inside the block to ``source`` (``plugins list`` shows it)."""
    token = _source.set(source)
    try:
        yield
    finally:
        _source.reset(token)


@dataclass(frozen=True)
class Entry:
    """A registered component: its config schema and what builds it.

    ``target`` is the class or function itself, or a lazy ``"module:attr"`` string so that heavy
    modules (anything importing torch) load only when a component is built, not when a spec is
    validated.
    """

    name: str
    config: type
    target: Any
    source: str

    def load(self) -> Any:
        if isinstance(self.target, str):
            module, _, attr = self.target.partition(":")
            return getattr(importlib.import_module(module), attr)
        return self.target

    @property
    def summary(self) -> str:
        doc = (self.config.__doc__ or "").strip() or (getattr(self.target, "__doc__", "") or "")
        return doc.strip().splitlines()[0] if doc.strip() else ""


class Registry:
    """Named components of one kind (``"strategy"``, ``"model"``, ``"dataset"``)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def add(self, name: str, *, config: type, target: Any) -> Entry:
        """Register ``target`` under ``name``; raises on a duplicate or a mismatched tag."""
        if name in self._entries:
            raise DuplicateName(self.kind, name, self._entries[name].source)
        _check_tag(self.kind, name, config)
        entry = Entry(name=name, config=config, target=target, source=_source.get())
        self._entries[name] = entry
        return entry

    def get(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(self.unknown(name)) from None

    def unknown(self, name: str) -> str:
        """Why ``name`` is not found: the nearest registered name, the registered ones, and how a
        plugin's components get registered (they are only once their file is loaded)."""
        known = self.names()
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else "."
        return (f"unknown {self.kind} {name!r}{hint} Registered: {', '.join(known) or 'none'}. "
                f"{PLUGIN_HINT}")

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def names(self, pattern: str = "*") -> list[str]:
        return sorted(n for n in self._entries if fnmatch.fnmatch(n, pattern))

    def entries(self) -> list[Entry]:
        return [self._entries[n] for n in self.names()]

    def configs(self) -> list[type]:
        return [e.config for e in self.entries()]

    def remove(self, name: str) -> None:
        """Forget ``name`` (for tests that register throwaway components)."""
        self._entries.pop(name, None)


def _check_tag(kind: str, name: str, config: type) -> None:
    field = getattr(config, "model_fields", {}).get("name")
    tag = typing.get_args(field.annotation) if field is not None else ()
    if tag != (name,):
        raise TypeError(
            f"{kind} {name!r}: its config {config.__name__} must declare "
            f"`name: Literal[{name!r}] = {name!r}`"
        )
