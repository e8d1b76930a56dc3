"""Secrets out of logs, errors and status: store passwords and webhook tokens.

Light on purpose (no SQLAlchemy): settings errors and notifiers use it too.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# The password of [scheme]://user:password@host..., whatever else the text holds (a scheme
# that does not parse still leaves the password in the text).
_PASSWORD = re.compile(r"(?P<head>//[^:/@\s]*:)(?P<secret>[^@\s]*)@")


def mask_secrets(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@`` in it replaced by ***."""
    return _PASSWORD.sub(lambda m: f"{m.group('head')}***@", str(text))


def mask_webhook_url(url: str) -> str:
    """``url`` with its path and query (where webhook tokens live) and any password hidden:
    ``https://hooks.example.com/***``."""
    text = str(url)
    try:
        parts = urlsplit(text)
        host = parts.hostname
        port = parts.port
    except ValueError:
        host, port, parts = None, None, None
    if parts is None or not parts.scheme or host is None:
        return "<webhook url>"
    where = f"{host}:{port}" if port is not None else host
    hidden = "/***" if (parts.path not in ("", "/") or parts.query or parts.fragment) else ""
    return f"{parts.scheme}://{where}{hidden}"
