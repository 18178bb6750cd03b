"""Masking secrets in what the tool prints or logs: connection URIs, presigned URLs, free text,
and the settings fields declared ``secret=True``.

Its own module because most of its users (the event log, result documents, storage, doctor,
replay ...) need redaction and nothing else of the configuration.
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit, urlunsplit

# Greedy up to the LAST '@' before the path: a password with an unescaped '@' (a common typo in
# MONGO_URI) must be masked whole, not only up to its own '@'.
_USERINFO_RE = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<userinfo>[^/\s]+)@", re.I)
_SECRET_QS = re.compile(
    r"(?i)(X-Amz-[A-Za-z-]+|Signature|AWSAccessKeyId|token|sig|key|Expires|Policy|Key-Pair-Id)=[^&\s]*"
)


def redact_uri(uri: str) -> str:
    """Mask the credentials of a connection URI: ``mongodb://u:p@h`` -> ``mongodb://***@h``."""
    if not uri:
        return uri
    scheme, sep, rest = uri.partition("://")
    if sep and "@" in rest:
        # a whole URI: everything before its last '@' is user info (hosts never hold '@'), also
        # when an unescaped '/' or '@' in the password confuses a parser
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return _USERINFO_RE.sub(lambda m: f"{m.group('scheme')}***@", uri)


def redact_url(url: str) -> str:
    """Drop the query string of a URL (presigned signatures) and any user info."""
    if not isinstance(url, str) or not url:
        return url
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return _SECRET_QS.sub(r"\1=***", redact_uri(url))
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = "***" if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def redact_text(text: str) -> str:
    """Best-effort masking of URIs with credentials and presigned query strings in free text."""
    if not text:
        return text
    text = _USERINFO_RE.sub(lambda m: f"{m.group('scheme')}***@", text)
    text = _SECRET_QS.sub(r"\1=***", text)
    for var in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID"):
        secret = os.environ.get(var)
        if secret and len(secret) >= 8:
            text = text.replace(secret, "***")
    return text


def mask_secret(value: object) -> object:
    """A secret setting as it may be shown: a URI keeps its scheme and hosts (what one needs to see
    which server is meant) with its credentials masked; any other non-empty value is ``***``."""
    if not isinstance(value, str) or not value:
        return value
    return redact_uri(value) if "://" in value else "***"
