"""Where components come from: built-ins, installed packages, and plugin files named by the user.

Registration is explicit (an import of a module that calls the register decorators), never a scan
of arbitrary directories: built-ins are listed in ``plugins/__init__.py``; installed packages
declare an entry point in the group ``dropout_lab.plugins`` naming a module that registers on
import, or a strategy class; and a study can name plugin files or folders.
"""

from __future__ import annotations

import hashlib
import importlib
from importlib import metadata
import importlib.util
from pathlib import Path
import sys
import warnings

from framework.errors import SpecError
from framework.registry._registry import DuplicateName


ENTRY_POINT_GROUP = "dropout_lab.plugins"
ENTRY_POINT_SOURCE = "entry point "
"""How the source of a component an installed package registered starts (``plugins list``)."""

_builtins_loaded = False
_entry_points_loaded = False
_loaded_paths: set[Path] = set()


def discover() -> None:
    """Load the built-in components and every installed plugin package (once per process)."""
    global _builtins_loaded, _entry_points_loaded
    if not _builtins_loaded:
        _builtins_loaded = True
        importlib.import_module("framework.models.specs")
        importlib.import_module("framework.models.adapter_specs")
        importlib.import_module("framework.data.specs")
        importlib.import_module("plugins")
    if not _entry_points_loaded:
        _entry_points_loaded = True
        for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
            _load_entry_point(entry_point)


def _load_entry_point(entry_point: metadata.EntryPoint) -> None:
    from framework import registry

    dist = entry_point.dist.name if entry_point.dist else "?"
    source = f"{ENTRY_POINT_SOURCE}{entry_point.name} ({dist})"
    try:
        with registry.current_source(source):
            loaded = entry_point.load()
            config = getattr(loaded, "Config", None)
            if isinstance(loaded, type) and config is not None:
                name = config.model_fields["name"].default
                if name not in registry.strategies:
                    registry.register_strategy(name, config=config)(loaded)
    except Exception as exc:  # a broken third-party plugin must not break every command
        warnings.warn(f"plugin {source} could not be loaded: {exc}", stacklevel=2)


def load_plugin_path(path: str | Path, *, key: str = "plugins", base: Path | None = None) -> None:
    """Import a plugin file, or every ``*.py`` file of a folder, so that it registers itself.

    Relative paths are resolved against ``base`` (the study file's folder) first, then the current
    directory. A path already loaded is not imported twice.
    """
    from framework import registry

    # Built-ins first: a user's plugin that reuses a built-in name is then the one reported,
    # by its own file, instead of breaking the built-in module that loads after it.
    discover()
    for file in _plugin_files(path, base, key):
        if file in _loaded_paths or file.name.startswith("_"):
            continue
        _loaded_paths.add(file)
        digest = hashlib.sha1(str(file).encode()).hexdigest()[:8]
        module_name = f"dropout_lab_user_plugins.{file.stem}_{digest}"
        spec = importlib.util.spec_from_file_location(module_name, file)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            with registry.current_source(f"file {file}"):
                spec.loader.exec_module(module)
        except (Exception, SystemExit) as exc:
            # SystemExit too: a plugin calling sys.exit() would otherwise end the command with
            # its status (0 included) before anything ran, and say nothing.
            sys.modules.pop(module_name, None)
            _loaded_paths.discard(file)
            raise SpecError(_failed(file, exc, key), key=key) from exc


def _plugin_files(path: str | Path, base: Path | None, key: str) -> list[Path]:
    """The ``.py`` files that ``path`` names (itself, or those of a folder), or a SpecError."""
    resolved = _resolve(Path(path), base)
    if resolved is None:
        raise SpecError(f"plugin path {str(path)!r} does not exist", key=key)
    if resolved.is_dir():
        files = sorted(resolved.glob("*.py"))
        if not files:
            raise SpecError(f"plugin folder {resolved} holds no .py files", key=key)
        return files
    if not resolved.is_file() or resolved.suffix != ".py":
        raise SpecError(f"plugin path {resolved} is not a .py file or a folder of them", key=key)
    return [resolved]


def _failed(file: Path, exc: BaseException, key: str) -> str:
    """Why plugin ``file`` could not be loaded, and for a plugin moved into an installed package
    (the file still listed, the package registering the same name first) what to do."""
    if isinstance(exc, DuplicateName) and exc.registered_by.startswith(ENTRY_POINT_SOURCE):
        remedy = ("remove the file from the study's `plugins:`" if key.startswith("plugins")
                  else f"drop {key}")
        return (f"plugin file {file} registers {exc.kind} {exc.name!r}, which the installed "
                f"package's {exc.registered_by} already registers; to use the package, {remedy}")
    return f"plugin file {file} failed to load: {_why(exc)}"


def _why(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return (f"it called sys.exit({exc.code!r}) while being imported; a plugin module must "
                "only define and register components")
    return f"{type(exc).__name__}: {exc}"


def _resolve(path: Path, base: Path | None) -> Path | None:
    candidates = [path] if path.is_absolute() else [p for p in (base, Path.cwd()) if p]
    for candidate in candidates if path.is_absolute() else [c / path for c in candidates]:
        if candidate.exists():
            return candidate.resolve()
    return None
