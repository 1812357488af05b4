"""Keeping secrets out of logs, the ledger and messages.

Secrets reach the process only through ``${ENV_VAR}`` references (the SMTP
login, webhook URLs, whose path carries a token).  Errors can echo them back:
an SMTP server repeats the user name in its refusal, a URL library puts the
URL in its message.  Every error text is passed through :class:`Redactor`
before it is logged or stored, and webhooks are shown by their host only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from urllib.parse import quote, urlsplit

#: What a secret is replaced with.
REDACTED = "[redacted]"

#: Shorter values are not redacted: replacing every "ab" in a message would
#: destroy it, and a secret that short protects nothing anyway.
MIN_SECRET_LENGTH = 3


def redact_url(url: str) -> str:
    """A URL as people may see it: scheme and host, the rest elided.

    ``https://hooks.slack.com/services/T0/B0/XyZ`` → ``https://hooks.slack.com/…``.
    The path and query of a webhook URL are its password; user info is dropped.
    """
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # an invalid port or bracket: show nothing of it
        return "(invalid URL)"
    scheme = parts.scheme or "?"
    tail = "/…" if parts.path not in ("", "/") or parts.query or parts.fragment else ""
    return f"{scheme}://{host}{port}{tail}"


def webhook_target(url: str) -> str:
    """The outbox key part of a webhook: ``webhook:`` and a fingerprint of the URL.

    A truncated SHA-256: it tells two webhooks apart and finds the URL again
    in the pipeline file at send time, and cannot be turned back into the
    token it was made from.
    """
    return "webhook:" + hashlib.sha256(url.strip().encode("utf-8")).hexdigest()[:16]


class Redactor:
    """Replaces known secret values in text.

    ``secrets`` are replaced by ``[redacted]``; each of ``urls`` by its
    :func:`redact_url` form, and its path and query on their own too (some
    errors quote only those).
    """

    def __init__(self, secrets: Iterable[str] = (), urls: Iterable[str] = ()):
        pairs: dict[str, str] = {}
        for url in urls:
            url = url.strip()
            if len(url) < MIN_SECRET_LENGTH:
                continue
            pairs[url] = redact_url(url)
            try:
                parts = urlsplit(url)
            except ValueError:
                continue
            for piece in (parts.path, parts.query, parts.password or ""):
                if piece not in ("", "/") and len(piece) >= MIN_SECRET_LENGTH:
                    pairs.setdefault(piece, REDACTED)
        for secret in secrets:
            if secret and len(secret) >= MIN_SECRET_LENGTH:
                pairs[secret] = REDACTED
                # Some libraries quote what they echo.
                quoted = quote(secret, safe="")
                if quoted != secret:
                    pairs.setdefault(quoted, REDACTED)
        # Longest first: a URL goes before the token inside it.
        self._pairs = sorted(pairs.items(), key=lambda kv: -len(kv[0]))

    def __call__(self, text: str | None) -> str | None:
        """``text`` with every known secret replaced (``None`` stays ``None``)."""
        if text is None:
            return None
        for secret, shown in self._pairs:
            if secret in text:
                text = text.replace(secret, shown)
        return text

    def contains_secret(self, text: str) -> bool:
        """True when ``text`` holds a secret (for tests and assertions)."""
        return any(secret in text for secret, _ in self._pairs)
