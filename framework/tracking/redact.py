"""Keep passwords in storage and tracking URLs out of logs, params, tags and printed output."""

from __future__ import annotations

import re


_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^:/@\s]*):[^@/\s]*@")


def redact(text: str) -> str:
    """``postgresql://me:secret@host/db`` -> ``postgresql://me:***@host/db``, anywhere in text."""
    return _CREDENTIALS.sub(r"\g<scheme>\g<user>:***@", text)
