"""Keep passwords in storage and tracking URLs out of logs, params, tags and printed output.

:func:`redact` works in one pass over the text (no backtracking regular expression over the
user part of a URL), so a long description or exception message costs time in proportion to its
length. :func:`redact_library_output` applies it to what libraries log and warn.
"""

from __future__ import annotations

import logging
import re
from typing import Any
import warnings


MASK = "***"
_URL_END = re.compile(r"""[\s"'<>`]""")
"""Characters that end a URL written in text (a password with them must be percent-encoded)."""
_SECRET_FIELD = re.compile(
    r"(?i)(?<![\w.-])((?:ssl)?password|passwd|pwd|secret|(?:access_|auth_)?token|api_?key)="
    r"""[^&;\s"'<>`]*"""
)
"""``password=...`` as a URL query parameter or a ``key=value`` connection string field."""


def redact(text: str) -> str:
    """Replace every password in ``text`` by ``***``, in time linear in its length.

    * ``postgresql://me:secret@host/db`` -> ``postgresql://me:***@host/db``; the password ends
      at the last ``@`` of the URL, so it may hold ``/`` or ``@`` (``u:p/a@ss@h`` -> ``u:***@h``);
    * ``...?user=me&password=secret`` and ``host=h password=secret`` -> ``password=***``.
    """
    return _SECRET_FIELD.sub(rf"\1={MASK}", _redact_userinfo(text))


def _redact_userinfo(text: str) -> str:
    out: list[str] = []
    done = 0
    scheme_end = text.find("://")
    while scheme_end != -1:
        start = scheme_end + 3
        following = text.find("://", start)
        end = _end_of_url(text, start, len(text) if following == -1 else following)
        at = text.rfind("@", start, end)
        colon = text.find(":", start, at) if at != -1 else -1
        # A ":" before a "/" is a password separator; after one it is in a path ("h/a:b@c").
        if colon != -1 and text.find("/", start, colon) == -1:
            out += [text[done:colon + 1], MASK]
            done = at
        scheme_end = following
    out.append(text[done:])
    return "".join(out)


def _end_of_url(text: str, start: int, limit: int) -> int:
    match = _URL_END.search(text, start, limit)
    return match.start() if match else limit


def redact_library_output() -> None:
    """Redact every log record and warning that this process prints from now on.

    Libraries put URLs in their messages (MLflow's request errors, SQLAlchemy's connection
    errors); records are redacted when they are made, so every handler prints the redacted form.
    Idempotent.
    """
    factory = logging.getLogRecordFactory()
    if getattr(factory, "redacting", False):
        return

    def redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        try:
            record.msg, record.args = redact(record.getMessage()), None
        except Exception:  # a malformed record: let the handler report it as it would
            return record
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return record

    redacting_factory.redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(redacting_factory)
    format_warning = warnings.formatwarning
    warnings.formatwarning = lambda *args, **kwargs: redact(format_warning(*args, **kwargs))
