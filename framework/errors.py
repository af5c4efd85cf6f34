"""The one exception family for bad user input.

Every problem with a study file, an override or a plugin path becomes a :class:`SpecError` that
names the file and the key. The CLI prints it on one line and exits with status 2, before anything
(an Optuna study, an MLflow run, a file) has been created.
"""

from __future__ import annotations


class SpecError(Exception):
    """A study spec (file plus overrides) that cannot be used as written."""

    def __init__(self, message: str, *, source: str | None = None, key: str | None = None):
        self.message = message
        self.source = source
        self.key = key
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ": ".join(part for part in (self.source, self.key) if part)
        return f"{where}: {self.message}" if where else self.message

    def at(self, source: str) -> SpecError:
        """The same error, attributed to ``source`` when it has no source yet."""
        return self if self.source else SpecError(self.message, source=source, key=self.key)
