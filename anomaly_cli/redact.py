"""Masking secrets in what the tool prints or logs: connection URIs, presigned URLs, free text,
and the settings fields declared ``secret=True``.

Its own module because most of its users (the event log, result documents, storage, doctor,
replay ...) need redaction and nothing else of the configuration.
"""

from __future__ import annotations

import functools
import os
import re
from urllib.parse import unquote, urlsplit, urlunsplit

# Greedy up to the LAST '@' before the path: a password with an unescaped '@' (a common typo in
# MONGO_URI) must be masked whole, not only up to its own '@'.
_USERINFO_RE = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<userinfo>[^/\s]+)@", re.I)
_SECRET_OPTION_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_.-]*)=([^&;\s'\"]*)")
_SECRET_QS = re.compile(
    r"(?i)(X-Amz-[A-Za-z-]+|Signature|AWSAccessKeyId|token|sig|key|Expires|Policy|Key-Pair-Id)=[^&\s]*"
)


#: Words that make any option name secret, whatever a future driver calls it.
_SECRET_WORDS = ("password", "passwd", "secret", "token", "credential")


@functools.lru_cache(maxsize=1)
def secret_uri_options() -> frozenset[str]:
    """Lower-case names of the connection-string options whose value is a secret.

    Read from pymongo's own option tables: its ``SENSITIVE_OPTIONS_FOR_REPR`` (the options pymongo
    itself hides: ``tlsCertificateKeyFilePassword``, ``proxyPassword``, ``proxyUsername``), every
    option it accepts whose name says password / secret / token, and ``authMechanismProperties``
    (it carries ``AWS_SESSION_TOKEN:...`` for MONGODB-AWS, and OIDC settings).
    """
    names: set[str] = set()
    out = {"authmechanismproperties", "tlscertificatekeyfilepassword", "proxypassword", "proxyusername"}
    try:
        from pymongo import common

        names |= set(common.URI_OPTIONS_VALIDATOR_MAP) | set(getattr(common, "NONSPEC_OPTIONS_VALIDATOR_MAP", {}))
        for alias, targets in getattr(common, "URI_OPTIONS_ALIAS_MAP", {}).items():
            names |= {alias, *targets}
        out |= {n.lower() for n in getattr(common, "SENSITIVE_OPTIONS_FOR_REPR", ())}
    except ImportError:  # redaction must work without the driver too
        pass
    out |= {n.lower() for n in names if any(w in n.lower() for w in _SECRET_WORDS)}
    return frozenset(out)


def _is_secret_option(name: str) -> bool:
    low = name.strip().lower()
    return low in secret_uri_options() or any(w in low for w in _SECRET_WORDS)


def _mask_options(query: str) -> str:
    """``a=1&tlsCertificateKeyFilePassword=pw`` -> ``a=1&tlsCertificateKeyFilePassword=***``."""
    parts = re.split(r"([&;])", query)
    for i in range(0, len(parts), 2):
        key, eq, _ = parts[i].partition("=")
        if eq and _is_secret_option(unquote(key)):
            parts[i] = f"{key}=***"
    return "".join(parts)


def redact_uri(uri: str) -> str:
    """Mask the credentials of a connection URI: ``mongodb://u:p@h`` -> ``mongodb://***@h``, and the
    values of secret-bearing options (:func:`secret_uri_options`) in its query string."""
    if not uri:
        return uri
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return _USERINFO_RE.sub(lambda m: f"{m.group('scheme')}***@", uri)
    user = ""
    if "@" in rest:
        # everything before the LAST '@' is user info (hosts never hold '@'), also when an
        # unescaped '/', '?' or '@' in the password confuses a parser; masking too much is safe
        user, rest = "***@", rest.rsplit("@", 1)[1]
    return f"{scheme}://{user}{_with_masked_options(rest)}"


def _with_masked_options(rest: str) -> str:
    head, q, query = rest.partition("?")
    return head + q + _mask_options(query) if q else head


def redact_url(url: str) -> str:
    """Drop the query string of a URL (presigned signatures) and any user info."""
    if not isinstance(url, str) or not url:
        return url
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        # unparsable (``http://[::1/a.wav?password=PW``): keep only what is before the query, as the
        # parsed path does; a pattern list over the query would always miss one secret's name
        head, q, _ = redact_uri(url.split("#", 1)[0]).partition("?")
        return head + ("?***" if q else "")
    if not parts.netloc and "@" in parts.path:  # no scheme ("u:pw@host/a.wav"): the user info is in the path
        parts = parts._replace(path="***@" + parts.path.rsplit("@", 1)[1])
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = "***" if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def redact_text(text: str) -> str:
    """Best-effort masking of URIs with credentials and presigned query strings in free text."""
    if not text:
        return text
    text = _USERINFO_RE.sub(lambda m: f"{m.group('scheme')}***@", text)
    text = _SECRET_QS.sub(r"\1=***", text)
    text = _SECRET_OPTION_RE.sub(lambda m: f"{m.group(1)}=***" if _is_secret_option(m.group(1)) else m.group(0), text)
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
