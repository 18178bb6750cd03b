"""Audio URLs: what a URL points at, and whether we may fetch it (``AUDIO_URL_ALLOWLIST``).

URL forms (:func:`parse_audio_url`):
- ``s3://bucket/key``
- S3 https, virtual-hosted ``https://bucket.s3.<region>.amazonaws.com/key`` (also
  ``bucket.s3.amazonaws.com``, ``bucket.s3-<region>.amazonaws.com``, dualstack) and path style
  ``https://s3.<region>.amazonaws.com/bucket/key``: fetched with boto3 ``GetObject`` and the
  configured credentials. With a query string (a presigned URL) the signature is the credential,
  so the URL is fetched as it is over https.
- any other ``https://`` URL; ``http://`` only where an allowlist entry names it (local/dev).

Allowlist grammar (comma separated entries, see :class:`Allowlist`):
- ``s3://bucket`` or ``s3://bucket/prefix``: that bucket (keys under the prefix), in any URL form.
- ``host``, ``https://host``, ``host:port``, ``https://host:port``: https to that host (port 443
  unless given). ``*.example.org`` matches any subdomain of example.org.
- ``http://host[:port]``: plain http to that host and port (port 80 unless given): a deliberate
  dev/local opt-in, so such an entry also allows loopback/private addresses.
- A host given as an IP literal (``10.0.0.5``, ``http://127.0.0.1:8080``) allows that address
  even if private. Otherwise every address a host resolves to must be public (``is_global``):
  loopback, private, link-local (169.254.0.0/16, the cloud metadata service), CGNAT, multicast
  and reserved addresses are refused. ``file://`` and every other scheme are refused.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence
from urllib.parse import unquote, urlsplit

from anomaly_cli.config import Settings
from anomaly_cli.errors import ConfigError, InvalidUrl, UrlNotAllowed
from anomaly_cli.redact import redact_url

_BUCKET = r"(?P<bucket>[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])"
_REGION = r"(?P<region>[a-z0-9-]+)"
_VIRTUAL = re.compile(rf"^{_BUCKET}\.s3(?:[.-]dualstack)?(?:[.-]{_REGION})?\.amazonaws\.com(?:\.cn)?$")
_PATH = re.compile(rf"^s3(?:[.-]dualstack)?(?:[.-]{_REGION})?\.amazonaws\.com(?:\.cn)?$")
_HOST = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9\-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9\-]{0,61}[a-z0-9])?)*$")

Resolver = Callable[..., Sequence[tuple[Any, ...]]]


@dataclass(frozen=True)
class AudioUrl:
    """A parsed audio URL. ``kind`` is ``s3`` (boto3 GetObject) or ``https`` / ``http`` (urllib3)."""

    url: str
    kind: str
    bucket: str | None = None
    key: str | None = None
    region: str | None = None
    host: str = ""
    port: int = 0
    path: str = ""  # path + query for http(s)


def parse_audio_url(url: str) -> AudioUrl:
    """Map ``url`` to what to fetch; raises :class:`InvalidUrl` (or :class:`UrlNotAllowed` for
    schemes that are never fetched, like ``file://``)."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidUrl("empty audio URL")
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise InvalidUrl(f"unparsable URL {redact_url(url)!r}: {e}") from e
    scheme = parts.scheme.lower()
    if scheme == "s3":
        key = parts.path.lstrip("/")
        if not parts.netloc or not key:
            raise InvalidUrl(f"s3 URL needs a bucket and a key: {redact_url(url)!r}")
        return AudioUrl(url, "s3", bucket=parts.netloc, key=unquote(key))
    if scheme not in ("https", "http"):
        if scheme in ("file", "ftp", "gopher", "data", "jar", "dict", "ldap"):
            raise UrlNotAllowed(f"scheme {scheme}:// is never fetched")
        raise InvalidUrl(f"not an s3:// or https:// URL: {redact_url(url)!r}")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise InvalidUrl(f"URL has no host: {redact_url(url)!r}")
    if _ip(host) is None:
        try:  # what getaddrinfo will do: an empty or > 63-character label is a UnicodeError there
            host.encode("idna")
        except UnicodeError as e:
            raise InvalidUrl(
                f"host {host[:80]!r} is not a valid domain name (an empty label or one over 63 characters)"
            ) from e
    if parts.username or parts.password:
        raise InvalidUrl("credentials inside audio URLs are not accepted")
    port = port or (443 if scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if scheme == "https" and not parts.query:
        s3 = _s3_of(host, parts.path)
        if s3:
            bucket, key, region = s3
            return AudioUrl(url, "s3", bucket=bucket, key=key, region=region, host=host, port=port, path=path)
    s3_parts = _s3_of(host, parts.path)
    return AudioUrl(
        url,
        scheme,
        bucket=s3_parts[0] if s3_parts else None,
        key=s3_parts[1] if s3_parts else None,
        region=s3_parts[2] if s3_parts else None,
        host=host,
        port=port,
        path=path,
    )


def _s3_of(host: str, path: str) -> tuple[str, str, str | None] | None:
    """(bucket, key, region) when ``host``/``path`` is an S3 object address."""
    m = _VIRTUAL.match(host)
    if m and path.strip("/"):
        return m.group("bucket"), unquote(path.lstrip("/")), m.group("region")
    m = _PATH.match(host)
    if m:
        bucket, _, key = path.lstrip("/").partition("/")
        if bucket and key:
            return bucket, unquote(key), m.group("region")
    return None


@dataclass(frozen=True)
class _Entry:
    scheme: str  # s3 | https | http
    host: str = ""  # bucket for s3
    port: int | None = None
    prefix: str = ""
    wildcard: bool = False
    ip_literal: bool = False


class Allowlist:
    """Parsed ``AUDIO_URL_ALLOWLIST``; see the module docstring for the grammar."""

    def __init__(self, entries: Sequence[str]):
        self.entries = tuple(_parse_entry(e) for e in entries if e.strip())

    def __bool__(self) -> bool:
        return bool(self.entries)

    def check(self, target: AudioUrl) -> bool:
        """Whether ``target`` may be fetched: True if it also may use non-public addresses."""
        for e in self.entries:
            if e.scheme == "s3":
                # A bucket entry vouches for the data's owner, not for an unencrypted hop: plain
                # http to a bucket still needs an http:// entry naming the host.
                if target.bucket == e.host and (target.key or "").startswith(e.prefix) and target.kind != "http":
                    return False
                continue
            if e.scheme != target.kind or not _host_matches(e, target.host):
                continue
            default = 443 if e.scheme == "https" else 80
            if (e.port or default) == target.port:
                return e.scheme == "http" or e.ip_literal
        raise UrlNotAllowed(f"{redact_url(target.url)} is not in AUDIO_URL_ALLOWLIST")


def _host_matches(e: _Entry, host: str) -> bool:
    if e.wildcard:
        return host.endswith("." + e.host)
    return host == e.host


def _parse_entry(raw: str) -> _Entry:
    text = raw.strip()
    low = text.lower()
    bad = ConfigError(
        f"AUDIO_URL_ALLOWLIST: cannot read entry {text!r} (expected s3://bucket[/prefix], "
        "host[:port], https://host[:port] or http://host[:port])",
        field="AUDIO_URL_ALLOWLIST",
    )
    if low.startswith("s3://"):
        bucket, _, prefix = text[5:].partition("/")
        if not bucket:
            raise bad
        return _Entry("s3", bucket, prefix=prefix)
    scheme = "https"
    for s in ("https://", "http://"):
        if low.startswith(s):
            scheme, low = s[:-3], low[len(s) :]
    low = low.rstrip("/")
    if "/" in low or "@" in low or "?" in low:
        raise bad
    try:
        parts = urlsplit(f"//{low}")
        host, port = (parts.hostname or ""), parts.port
    except ValueError as e:
        raise bad from e
    wildcard = host.startswith("*.")
    host = host[2:] if wildcard else host
    ip = _ip(host)
    if not host or (ip is None and not _HOST.match(host)):
        raise bad
    return _Entry(scheme, host, port, wildcard=wildcard, ip_literal=ip is not None)


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def ensure_allowlist(settings: Settings) -> Allowlist:
    """The parsed allowlist; :class:`ConfigError` when it is empty or an entry is malformed.

    Anything that fetches remote URLs (the worker, ``anomaly score`` on URLs) calls this at start:
    an empty list would refuse every recording, which is a configuration mistake, not data.
    """
    allow = Allowlist(settings.audio_url_allowlist)
    if not allow:
        raise ConfigError(
            "AUDIO_URL_ALLOWLIST is empty: no recording could be fetched",
            field="AUDIO_URL_ALLOWLIST",
            hint="set it to the audio buckets and hosts, e.g. AUDIO_URL_ALLOWLIST=s3://nipun-audio",
        )
    return allow


#: IPv6 prefixes whose low 32 bits are an IPv4 address a gateway forwards to (NAT64 well-known and
#: local-use, RFC 6052 / 8215; IPv4-translated ::ffff:0:0/96, RFC 2765; IPv4-compatible ::/96, RFC 4291).
_EMBEDDING_V4 = tuple(
    ipaddress.ip_network(n) for n in ("64:ff9b::/96", "64:ff9b:1::/48", "::ffff:0:0:0/96", "::ffff:0:0/96", "::/96")
)


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (mapped, 6to4, Teredo, NAT64, translated, compatible)."""
    out: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped:
        out.append(ip.ipv4_mapped)
    if ip.sixtofour:
        out.append(ip.sixtofour)
    if ip.teredo:
        out.extend(ip.teredo)  # the server and the client: both must be public
    if any(ip in net for net in _EMBEDDING_V4) and int(ip) & 0xFFFFFFFF > 1:  # :: and ::1 are not IPv4
        out.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return out


def is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether ``ip`` may be fetched from without an explicit opt-in.

    ``is_global`` alone is not enough for IPv6: ``64:ff9b::7f00:1`` (NAT64 of 127.0.0.1) and
    ``2002:7f00:1::`` (6to4) count as global, yet a gateway delivers them to the embedded IPv4
    address. So an address that embeds IPv4 is judged by what it embeds, and the deprecated
    site-local ``fec0::/10`` (private by intent) is refused outright.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.is_site_local:
            return False
        inner = embedded_ipv4(ip)
        if inner:
            return all(v4.is_global for v4 in inner)
    return ip.is_global


def safe_addresses(host: str, port: int, resolve: Resolver, *, allow_private: bool) -> list[str]:
    """Resolve ``host`` and return its addresses; :class:`UrlNotAllowed` if any is not public
    (unless ``allow_private``). All must pass: a resolver that mixes a public and a private
    answer is how DNS rebinding attacks look."""
    import socket

    try:
        infos = resolve(host, port, type=socket.SOCK_STREAM)
    except OSError as e:
        from anomaly_cli.errors import FetchTransient

        raise FetchTransient(f"cannot resolve {host}: {e}") from e
    except UnicodeError as e:  # the IDNA codec refused the host (empty or > 63-character label)
        raise InvalidUrl(f"host {host[:80]!r} is not a valid domain name: {e}") from e
    addrs: list[str] = []
    for info in infos:
        ip = ipaddress.ip_address(info[4][0].split("%")[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        if not allow_private and not is_public(ip):
            raise UrlNotAllowed(f"{host} resolves to the non-public address {ip}")
        if str(ip) not in addrs:
            addrs.append(str(ip))
    if not addrs:
        raise UrlNotAllowed(f"{host} resolves to no address")
    return addrs
