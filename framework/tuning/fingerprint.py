"""The settings a study was searched with, kept on its Optuna study to catch a changed spec.

Running a study again continues it, which is only meaningful when the spec is the same: a
changed model, dataset, strategy or space would mix two experiments under one name. The first
invocation stores the resolved spec's settings (everything that shapes a trial; not the budget,
the stores or the operational keys below) and their digest as user attributes of the study.
Later invocations, workers joining it and ``confirm`` compare their own settings with those and
refuse, listing the changed keys, unless asked explicitly; an accepted change is recorded.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from typing import Any

from framework.config.paths import flatten
from framework.errors import SpecError


SETTINGS_ATTR = "spec_settings"
FINGERPRINT_ATTR = "spec_fingerprint"
CHANGES_ATTR = "spec_changes"
IGNORED = ("description", "plugins", "confirm", "arms", "search.n_trials",
           "search.heartbeat_interval", "search.grace_period", "search.max_retries",
           "search.tracking_timeout", "train.threads")
"""Keys that do not change what a trial computes: the budget (it may grow between
invocations), text, where plugins are read from (their effect is in the sections they fill),
the confirmation's own section, failure handling, and the thread count, which may differ per
machine (each trial logs the count it used)."""
LABEL_KEYS = ("model.name", "data.name", "train.max_steps", "train.batch_size", "train.lr",
              "train.device")
"""The settings that name a study's training in a report's label."""
SHOWN_CHANGES = 8
_ABSENT = "(absent)"

Differences = dict[str, tuple[Any, Any]]
"""``{key: (stored value, current value)}``"""


def settings(spec: Any) -> dict[str, Any]:
    """The flattened, JSON-plain settings of a validated spec that a continuation must share."""
    flat = flatten(spec.model_dump(mode="json"))
    kept = {key: value for key, value in flat.items() if not _ignored(key)}
    # A JSON round trip, so that values compare equal to the ones read back from the storage.
    return json.loads(json.dumps(kept, sort_keys=True, default=str))


def fingerprint(values: dict[str, Any]) -> str:
    """A SHA-256 digest of ``values``, independent of key order."""
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()


def differences(stored: dict[str, Any], current: dict[str, Any]) -> Differences:
    """Keys whose value differs or was removed, in key order.

    A key the stored settings lack is a setting added to the tool after the study started (its
    value then is the default every earlier trial ran with), unless a section holding it is new
    too (a strategy added to ``dropout``, say): only those new sections count as changes.
    """
    stored_sections = {key.rsplit(".", 1)[0] for key in stored}
    return {key: (stored.get(key, _ABSENT), current.get(key, _ABSENT))
            for key in sorted(stored.keys() | current.keys())
            if stored.get(key, _ABSENT) != current.get(key, _ABSENT)
            and (key in stored or key.rsplit(".", 1)[0] not in stored_sections)}


def describe(changed: Differences, limit: int = SHOWN_CHANGES) -> str:
    """``train.max_steps (400 -> 100), model.n_embd (16 -> 32) and 3 more``"""
    shown = [f"{key} ({old!r} -> {new!r})" for key, (old, new) in list(changed.items())[:limit]]
    more = len(changed) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def stored_settings(study: Any) -> dict[str, Any] | None:
    """The settings a study was run with, or None for a study run before they were stored."""
    return study.user_attrs.get(SETTINGS_ATTR)


def check_continuation(study: Any, loaded: Any, allow_changed: bool = False) -> Differences:
    """How ``loaded`` differs from the settings ``study`` was run with.

    Raises:
        SpecError: naming the study file and the changed keys, when they differ and
            ``allow_changed`` is false.
    """
    stored = stored_settings(study)
    current = settings(loaded.spec)
    if stored is None or study.user_attrs.get(FINGERPRINT_ATTR) == fingerprint(current):
        return {}
    changed = differences(stored, current)
    if changed and not allow_changed:
        raise SpecError(
            f"study {loaded.spec.name!r} was run with other settings; changed: "
            f"{describe(changed)}. Give the study a new `name:` to start a new one, or pass "
            "--continue-changed to continue this one anyway (recorded on the study and its "
            "MLflow run)", source=loaded.source)
    return changed


def record(study: Any, loaded: Any, changed: Differences) -> None:
    """Store ``loaded``'s settings on ``study``, and ``changed`` (if any) in its change log."""
    current = settings(loaded.spec)
    digest = fingerprint(current)
    if study.user_attrs.get(FINGERPRINT_ATTR) == digest:
        return
    if changed:
        log = list(study.user_attrs.get(CHANGES_ATTR, []))
        log.append({"at": datetime.datetime.now().isoformat(timespec="seconds"),
                    "changed": {key: [old, new] for key, (old, new) in changed.items()}})
        study.set_user_attr(CHANGES_ATTR, log)
    study.set_user_attr(SETTINGS_ATTR, current)
    study.set_user_attr(FINGERPRINT_ATTR, digest)


def label(values: dict[str, Any]) -> str:
    """``model.name=gpt, data.name=shakespeare_char, train.max_steps=400, train.lr searched``"""
    parts = []
    for key in LABEL_KEYS:
        if _searched(values, key):
            parts.append(f"{key} searched")
        elif key in values:
            parts.append(f"{key}={values[key]}")
    return ", ".join(parts)


def _searched(values: dict[str, Any], key: str) -> bool:
    """Whether the space (flattened into ``values``) sets ``key`` or a section holding it."""
    parts = key.split(".")
    return any(f"search.space.{'.'.join(parts[:n])}.type" in values
               for n in range(1, len(parts) + 1))


def _ignored(key: str) -> bool:
    return any(key == prefix or key.startswith(f"{prefix}.") for prefix in IGNORED)
