"""Load a study: YAML through OmegaConf, command-line overrides, plugins, then one validation.

OmegaConf does the reading, ``${...}`` interpolation and dotted overrides; pydantic then validates
the merged plain dict exactly once. Every failure becomes a :class:`~framework.errors.SpecError`
naming the file and the key, raised before anything is created.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
import io
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException
from pydantic import ValidationError
import yaml

from framework import registry
from framework.config.arms import arm_raw
from framework.config.checks import check_finite
from framework.config.checks import check_study
from framework.config.errors import describe
from framework.config.limits import evaluation_warnings
from framework.config.overrides import apply_overrides
from framework.config.overrides import check_overrides
from framework.config.paths import set_path
from framework.config.sections import SearchSpec
from framework.config.space import ChoiceParam
from framework.config.space import grid_size
from framework.config.study import StudySpec
from framework.config.study import study_model
from framework.errors import SpecError


MAX_STUDY_BYTES = 2**20
"""Study files are configuration: anything larger is a mistake (a data file passed as the study)."""
MAX_YAML_NODES = 2**20
"""OmegaConf's cap on YAML nodes after alias expansion; its default (10,000) refuses ordinary
files of a few hundred kB. Every file under MAX_STUDY_BYTES has fewer nodes than this unless it
uses aliases, and OmegaConf still refuses aliases that expand a document more than 100-fold."""


@dataclass(frozen=True)
class LoadedSpec:
    """A validated study and where it came from."""

    spec: StudySpec
    raw: dict[str, Any]
    """The resolved, merged spec as plain data (what trials start from before sampling)."""
    source: str
    overrides: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    """What the study allows but is likely not meant (e.g. no evaluation before the last step);
    the commands print each on a line of its own."""

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.spec.model_dump(mode="json"), sort_keys=False)


def load_spec(
    path: str | Path, overrides: list[str] | tuple[str, ...] = (), plugin_paths: tuple = ()
) -> LoadedSpec:
    """Read, merge, resolve and validate the study at ``path``."""
    source = str(path)
    try:
        raw = _read(Path(path), overrides)
        check_finite(raw)
        _load_plugins(raw, plugin_paths, base=Path(path).parent)
        spec = validate(raw, source)
        check_study(spec)
        check_overrides(spec, overrides)
        _check_space(spec, raw, source)
        _check_arms(spec, raw, source)
        warnings = tuple(evaluation_warnings(spec, raw))
    except SpecError as exc:
        raise exc.at(source) from None
    return LoadedSpec(spec=spec, raw=raw, source=source, overrides=tuple(overrides),
                      warnings=warnings)


def validate(raw: dict[str, Any], source: str = "spec") -> StudySpec:
    """Validate a plain spec dict against the registered schemas."""
    schema = study_model()
    try:
        # An own model's factory module may sit next to the study file (ModuleSpec).
        return schema.model_validate(raw, context={"study_folder": Path(source).parent})
    except ValidationError as exc:
        problems = describe(exc, raw, schema)
        if len(problems) == 1:
            key, message = problems[0]
            raise SpecError(message, source=source, key=key) from None
        lines = "\n".join(f"  {key}: {message}" for key, message in problems)
        raise SpecError(f"{len(problems)} problems:\n{lines}", source=source) from None


def _read(path: Path, overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    text = _read_text(path)
    try:
        _check_mapping(text, path)
        config = OmegaConf.load(io.StringIO(text), max_yaml_expanded_nodes=MAX_YAML_NODES)
    except (yaml.YAMLError, OmegaConfBaseException) as exc:
        raise SpecError(f"not valid YAML: {_one_line(exc)}", source=str(path)) from None
    apply_overrides(config, overrides)
    try:
        raw = OmegaConf.to_container(config, resolve=True)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or None
        raise SpecError(f"cannot resolve: {_one_line(exc)}", key=key) from None
    return raw


def _read_text(path: Path) -> str:
    if path.is_dir():
        studies = sorted(p.name for p in (*path.glob("*.yaml"), *path.glob("*.yml")))
        more = f" and {len(studies) - 10} more" if len(studies) > 10 else ""
        listed = f"; the study files in it: {', '.join(studies[:10])}{more}" if studies else ""
        raise SpecError(f"a directory, not a study file{listed}", source=str(path))
    if not path.is_file():
        raise SpecError("study file not found", source=str(path))
    size = path.stat().st_size
    if size > MAX_STUDY_BYTES:
        raise SpecError(f"the file is {size / 2**20:.1f} MiB; a study file may be at most "
                        f"{MAX_STUDY_BYTES // 2**20} MiB (keep data in files that the study names)",
                        source=str(path))
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"not a UTF-8 text file (byte {exc.object[exc.start]:#04x} at offset "
                        f"{exc.start}); a study file is YAML text", source=str(path)) from None


def _check_mapping(text: str, path: Path) -> None:
    """Refuse a file whose YAML is not a mapping (``42``, a list, nothing at all).

    OmegaConf reads a lone word as a mapping with that key, and fails on a lone number with a
    traceback; the document's root node says what the file is without building anything (an
    alias is not expanded).
    """
    root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    if isinstance(root, yaml.MappingNode):
        return
    if root is None:
        what = "empty"
    elif isinstance(root, yaml.SequenceNode):
        what = "a list"
    else:  # one scalar: small, so constructing it to name its type costs nothing
        value = yaml.safe_load(text)
        what = "null" if value is None else _article(type(value).__name__)
    raise SpecError(f"a study file is a YAML mapping (name:, model:, ...); this one is {what}",
                    source=str(path))


def _article(type_name: str) -> str:
    names = {"str": "a string", "int": "an int", "float": "a float", "bool": "a boolean"}
    return names.get(type_name, f"a {type_name}")


def _load_plugins(raw: dict[str, Any], plugin_paths: tuple, base: Path) -> None:
    named = raw.get("plugins") or []
    if not isinstance(named, list):
        raise SpecError("expected a list of plugin files or folders", key="plugins")
    for i, item in enumerate(named):
        registry.load_plugin_path(str(item), key=f"plugins[{i}]", base=base)
    for item in plugin_paths:
        registry.load_plugin_path(item, key=f"--plugins {item}")


def _check_space(spec: StudySpec, raw: dict[str, Any], source: str) -> None:
    """Validate the spec at every end of every range, so a bad range fails now, not mid-study."""
    for path, param in spec.search.space.items():
        _check_param(raw, path, param, source)
    if spec.search.sampler.name == "grid":
        _check_grid(spec.search)


def _check_grid(search: SearchSpec) -> None:
    """Refuse a grid the sampler cannot make, and a budget beyond it: past its last point Optuna's
    grid sampler starts over, repeating trials exactly."""
    for path, param in search.space.items():
        if param.grid_points() is None:
            raise SpecError(
                "the grid sampler needs categorical, int or stepped float parameters "
                "(and choices whose options have no sub-space)",
                key=f"search.space[{path!r}]",
            )
    size = grid_size(search.space)
    if size is not None and search.n_trials > size:
        counts = " x ".join(str(len(p.grid_points())) for p in search.space.values())
        points = f"{size} point{'s' * (size != 1)}"
        points += f" ({counts})" if len(search.space) > 1 else ""
        raise SpecError(
            f"{search.n_trials} trials of a grid of {points} would repeat points exactly; set "
            f"search.n_trials to at most {size}, or widen the space", key="search.n_trials")


def _check_param(raw: dict[str, Any], path: str, param: Any, source: str) -> None:
    key = f"search.space[{path!r}]"
    if isinstance(param, ChoiceParam):
        for option_name, option in param.options.items():
            trial_raw = _with(raw, path, copy.deepcopy(option.value), key)
            validate_variant(trial_raw, f"{key}.options.{option_name}.value", source)
            for sub_path, sub_param in option.space.items():
                _check_param(trial_raw, f"{path}.{sub_path}", sub_param, source)
        return
    for value in param.candidates():
        validate_variant(_with(raw, path, value, key), f"{key} = {value!r}", source)


def _with(raw: dict[str, Any], path: str, value: Any, key: str) -> dict[str, Any]:
    trial_raw = copy.deepcopy(raw)
    try:
        set_path(trial_raw, path, value)
    except KeyError as exc:
        raise SpecError(f"path does not exist in the spec: {exc.args[0]}", key=key) from None
    return trial_raw


def _check_arms(spec: StudySpec, raw: dict[str, Any], source: str) -> None:
    """Validate every arm and its search space now, before the first arm's first trial."""
    for arm in spec.arms:
        arm_spec_raw = arm_raw(raw, arm)
        arm_spec = validate_variant(arm_spec_raw, f"arms.{arm}", source)
        try:
            _check_space(arm_spec, arm_spec_raw, source)
        except SpecError as exc:  # the arm's own space or budget, or the study's in the arm
            raise SpecError(exc.message, source=source, key=f"arms.{arm}.{exc.key}") from None


def validate_variant(raw: dict[str, Any], key: str, source: str) -> StudySpec:
    """Validate a spec derived from the study's (a searched value, an arm, a baseline).

    Raises:
        SpecError: naming ``key``, the part of the study that made the derived spec invalid.
    """
    try:
        spec = validate(raw, source)
        check_study(spec)  # a searched width or block size can be what does not fit
        return spec
    except SpecError as exc:
        inner = f"{exc.key}: {exc.message}" if exc.key else exc.message
        raise SpecError(f"this makes the spec invalid: {inner}", source=source,
                        key=key) from None


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
