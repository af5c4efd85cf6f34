"""Command-line overrides (``KEY=VALUE``), applied to the study file before validation.

A key is a dotted path; a key that has dots of its own (a search-space parameter such as
``train.lr``) goes in brackets (``search.space[train.lr].low=7e-3``, quoted or not) or has its dots
escaped (``search.space.train\\.lr.low``), as OmegaConf reads keys. A key given twice, a dotted
path that runs into such a key, and an override of a value the search sets are refused, each
naming the override.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from typing import Any

from omegaconf import OmegaConf
from omegaconf._utils import split_key
from omegaconf.errors import OmegaConfBaseException
import yaml

from framework.errors import SpecError


if TYPE_CHECKING:
    from framework.config.study import StudySpec


def override_key(key: str) -> str:
    """The key of a command-line override as OmegaConf reads it.

    OmegaConf itself keeps a key's own dots inside brackets or after a backslash; quotes inside
    brackets are dropped here, so that the form errors print (``search.space['train.lr']``)
    can be pasted.
    """
    return re.sub(r"""\[(['"])(.*?)\1\]""", r"[\2]", key.strip())


def key_parts(key: str) -> list[str]:
    """The keys of an override's path: ``search.space[train.lr].low`` -> ``search``, ``space``,
    ``train.lr``, ``low``."""
    # The splitter that OmegaConf.update itself applies, so these are the keys it will set.
    return split_key(override_key(key))


def apply_overrides(config: Any, overrides: list[str] | tuple[str, ...]) -> None:
    """Apply ``overrides`` in order; a key given twice is refused (which one was meant?)."""
    written = OmegaConf.to_container(config, resolve=False)
    seen: dict[tuple[str, ...], str] = {}
    for override in overrides:
        key, sep, text = override.partition("=")
        where = f"override {override!r}"
        if not sep or not key.strip():
            raise SpecError("expected KEY=VALUE, e.g. train.max_steps=200",
                            source="command line", key=where)
        parts = tuple(key_parts(key))
        if parts in seen:
            raise SpecError(f"{'.'.join(parts)} given twice (also as {seen[parts]!r}); give "
                            "each key once", source="command line", key=where)
        seen[parts] = override
        bracketed = _bracketed_key(written, parts)
        if bracketed:
            raise SpecError(f"{bracketed[0]} is not in the study, but {bracketed[1]!r} is: a key "
                            f"with dots goes in brackets, e.g. '{bracketed[2]}={text}'",
                            source="command line", key=where)
        _apply_override(config, override_key(key), text, where)


def _bracketed_key(written: Any, parts: tuple[str, ...]) -> tuple[str, str, str] | None:
    """For a path that leaves the study where dotted parts join into a key that is there
    (``search.space.train.lr.low``, whose space has ``train.lr``): the path up to the missing
    key, the key with dots, and the override key that reaches it; None otherwise."""
    node = written
    for depth, part in enumerate(parts):
        if isinstance(node, list):
            node = node[int(part)] if part.isdigit() and int(part) < len(node) else None
        elif isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, dict):
            return _joined_key(node, parts, depth)
        else:
            return None
    return None


def _joined_key(node: dict[str, Any], parts: tuple[str, ...],
                depth: int) -> tuple[str, str, str] | None:
    rest = parts[depth:]
    for length in range(len(rest), 1, -1):  # the longest key first
        joined = ".".join(rest[:length])
        if joined in node:
            fixed = ".".join(parts[:depth]) + f"[{joined}]"
            fixed += "".join(f".{part}" for part in rest[length:])
            return ".".join(parts[: depth + 1]), joined, fixed
    return None


def _apply_override(config: Any, key: str, text: str, where: str) -> None:
    try:
        value = yaml.safe_load(text) if text.strip() else ""
        OmegaConf.update(config, key, value, merge=False, force_add=True)
    except (yaml.YAMLError, OmegaConfBaseException, ValueError, IndexError) as exc:
        raise SpecError(" ".join(str(exc).split()), source="command line", key=where) from None


def check_overrides(spec: StudySpec, overrides: list[str] | tuple[str, ...]) -> None:
    """Refuse an override of a value the search sets: every trial would silently replace it.

    Raises:
        SpecError: naming the override and the search-space parameter.
    """
    spaces = [("search.space", spec.search.space)] + [
        (f"arms.{name}.search.space", (arm.search or {}).get("space") or {})
        for name, arm in spec.arms.items()]
    for override in overrides:
        path = ".".join(key_parts(override.partition("=")[0]))
        for where, space in spaces:
            for searched in space:
                if path == searched or path.startswith(f"{searched}."):
                    raise SpecError(
                        f"sets {path}, which {where}[{searched!r}] searches, so every trial "
                        "would replace it; drop the override, or take the parameter out of the "
                        "search space to fix its value", key=f"override {override!r}")
