"""Configured URLs as people may read them: without passwords, tokens or other secrets.

Receivers, databases, queues and rate-limit stores are configured by URL, and such URLs
carry credentials: ``http://user:pass@host/hook?token=...``,
``postgresql://app:secret@db/notes``, ``redis://:secret@cache:6379/0``. Every place that
prints or logs a configured URL (CLI output, logs, ``storage check``, start-up banners,
configuration errors) shows :func:`redact_url` of it, and every text that may quote one
(an HTTP library's error message) goes through :func:`redact_text` first.

Pure: the standard library only.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import unquote, urlsplit, urlunsplit

#: What stands in for a removed secret.
MASK = "***"


def redact_url(url: str) -> str:
    """``url`` with its userinfo and every query value and fragment replaced by ``***``.

    Query keys stay (``?token=***&sig=***``): they tell which parameter was set without
    telling its value. A query item without ``=`` counts as a value. Scheme, host, port
    and path stay, so the URL still says where it points.

    Args:
        url: any string; a value that is not a parseable URL comes back as ``***``.
    Returns:
        e.g. ``http://***@host/hook?token=***`` for ``http://user:pass@host/hook?token=abc``.
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # raises ValueError for a malformed port, like a bad URL
    except ValueError:
        return MASK
    if "@" not in parts.netloc and not parts.query and not parts.fragment:
        # Nothing to hide; unsplitting would also lose the empty authority of
        # ``sqlite:////abs/path`` (``sqlite://abs/path`` names another file).
        return url
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rpartition('@')[2]}"
    query = "&".join(_masked_item(item) for item in parts.query.split("&")) if parts.query else ""
    fragment = MASK if parts.fragment else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def _masked_item(item: str) -> str:
    key, sep, _ = item.partition("=")
    return f"{key}={MASK}" if sep else (MASK if item else item)


def url_secrets(url: str) -> set[str]:
    """The secret parts of ``url`` as they may appear in text: userinfo (and its password),
    query values and fragment, each both as written and percent-decoded; empty strings and
    one-character values are left out (masking them would garble unrelated text)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return {url} if url else set()
    found: set[str] = set()
    if "@" in parts.netloc:
        userinfo = parts.netloc.rpartition("@")[0]
        found.add(userinfo)
        found.add(userinfo.partition(":")[2])
    for item in parts.query.split("&") if parts.query else ():
        key, sep, value = item.partition("=")
        found.add(value if sep else key)
    found.add(parts.fragment)
    found |= {unquote(value) for value in found}
    return {value for value in found if len(value) > 1}


def redact_text(text: str, urls: Iterable[str]) -> str:
    """``text`` with every secret of each of ``urls`` (see :func:`url_secrets`) replaced by ``***``.

    For messages that may quote a URL in any form: ``requests`` and urllib3 errors quote
    the path and query (``Max retries exceeded with url: /hook?token=...``).

    Args:
        text: the message; urls: the configured URLs whose secrets must not show.
    Returns:
        the message, whole URLs replaced by :func:`redact_url` of them, then remaining
        secrets masked (longest first, so a password inside a userinfo goes with it).
    """
    urls = [url for url in urls if url]
    for url in urls:
        text = text.replace(url, redact_url(url))
    secrets = set().union(*(url_secrets(url) for url in urls)) if urls else set()
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text
