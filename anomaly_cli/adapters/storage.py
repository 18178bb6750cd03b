"""Fetch recordings from S3 (boto3) and https (urllib3) under timeouts, caps and the allowlist.

- Separate connect and read timeouts per attempt, and an overall deadline per download that
  spans attempts and is checked while streaming, so a server dripping a byte a second is cut off.
- Retries (:data:`anomaly_cli.retry.S3_GET`: ``FETCH_RETRIES`` calls, backoff with jitter, none
  started after the deadline) only for transient failures: timeouts, resets, 5xx,
  429/throttling/SlowDown. botocore's own retries are off (``adapters.aws.make_client``) so the
  two never multiply. 404/NoSuchKey -> :class:`NotFound`, 401/403 -> :class:`AccessDenied`.
- The byte cap is enforced while streaming (and up front from Content-Length).
- http(s): every hop (the first request and each redirect, followed by hand) passes the
  allowlist and the address check; the connection goes to the address that was checked (TLS
  still verifies the host name), so a DNS answer cannot change between check and connect.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import urljoin

from anomaly_cli import errors as E
from anomaly_cli.adapters.urls import Allowlist, AudioUrl, ensure_allowlist, parse_audio_url, safe_addresses
from anomaly_cli.config import Settings
from anomaly_cli.log import get_logger
from anomaly_cli.redact import redact_text, redact_url
from anomaly_cli.retry import S3_GET

if TYPE_CHECKING:
    import urllib3

    from anomaly_cli.adapters.protocols import S3Client

__all__ = ["Fetcher", "FetchedAudio", "parse_audio_url", "ensure_allowlist", "read_local", "presign"]

MAX_REDIRECTS = 5
CHUNK_BYTES = 64 * 1024
_S3_NOT_FOUND = {"NoSuchKey", "NoSuchBucket", "404", "NotFound", "NoSuchVersion"}
_S3_DENIED = {
    "AccessDenied",
    "403",
    "401",
    "AllAccessDisabled",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "AccountProblem",
}
_S3_TRANSIENT = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "InternalError",
    "ServiceUnavailable",
    "503",
    "500",
    "502",
    "504",
    "429",
}
log = get_logger("fetch")


@dataclass(frozen=True)
class FetchedAudio:
    """The bytes of one recording and how they were got."""

    data: bytes
    url: str
    kind: str  # s3 | https | http | file
    attempts: int
    elapsed_ms: float
    content_type: str | None = None


class Fetcher:
    """Downloads audio URLs. Clients are injected; a default S3 client is built on first use."""

    def __init__(
        self,
        settings: Settings,
        s3_client: S3Client | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        resolve: Callable[..., Any] = socket.getaddrinfo,
        ca_certs: str | None = None,
    ):
        self.settings = settings
        self.allowlist = Allowlist(settings.audio_url_allowlist)
        self._s3 = s3_client
        self._sleep = sleep
        self._resolve = resolve
        self._ca_certs = ca_certs  # None: the system / certifi bundle
        self._pools: dict[tuple[str, str, int, str], urllib3.HTTPConnectionPool] = {}

    # ----- public ------------------------------------------------------------------------
    def fetch(self, url: str) -> FetchedAudio:
        """Fetch ``url`` (s3:// or https) with retries; raises a :class:`errors.FetchError` subclass."""
        started = time.monotonic()
        deadline = started + self.settings.fetch_deadline_seconds
        target = parse_audio_url(url)  # InvalidUrl / UrlNotAllowed are permanent: no retry
        if not self.allowlist:
            raise E.UrlNotAllowed("AUDIO_URL_ALLOWLIST is empty: nothing may be fetched")

        def before_sleep(attempt: int, seconds: float, error: BaseException) -> None:
            log.warning(
                "fetch_retrying", url=url, attempt=attempt, error=E.error_code(error), reason=str(error), wait_s=seconds
            )

        retrying = S3_GET.with_attempts(self.settings.fetch_retries).retrying(
            sleep=self._sleep,
            retry_on=lambda e: isinstance(e, E.FetchTransient),
            deadline=deadline,  # no attempt starts after the download deadline
            before_sleep=before_sleep,
        )
        attempts = 0
        try:
            for attempt in retrying:
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    data, ctype = self._once(target, deadline)
        except E.FetchError as e:
            log.info(
                "fetch_failed",
                url=url,
                error=e.code,
                attempts=attempts,
                reason=str(e),
                elapsed_ms=round((time.monotonic() - started) * 1000, 1),
            )
            raise
        elapsed = (time.monotonic() - started) * 1000
        log.debug("fetch_completed", url=url, bytes=len(data), attempts=attempts, elapsed_ms=round(elapsed, 1))
        return FetchedAudio(data, url, target.kind, attempts, elapsed, ctype)

    def _once(self, target: AudioUrl, deadline: float) -> tuple[bytes, str | None]:
        if target.kind == "s3":
            self.allowlist.check(target)
            return self._s3_get(target, deadline)
        return self._http_get(target, deadline)

    # ----- S3 ------------------------------------------------------------------------------
    def _client(self) -> S3Client:
        if self._s3 is None:
            from anomaly_cli.adapters.aws import make_client

            self._s3 = make_client(
                "s3",
                self.settings,
                connect_timeout=self.settings.fetch_connect_timeout_seconds,
                read_timeout=self.settings.fetch_read_timeout_seconds,
            )
        return self._s3

    def _s3_get(self, t: AudioUrl, deadline: float) -> tuple[bytes, str | None]:
        assert t.bucket is not None and t.key is not None  # parse_audio_url sets both for kind "s3"
        try:
            resp = self._client().get_object(Bucket=t.bucket, Key=t.key)
            size = resp.get("ContentLength")
            if size is not None and size > self.settings.max_audio_bytes:
                resp["Body"].close()
                raise self._too_large(t, size)
            body = resp["Body"]
            chunks, total = [], 0
            while True:
                chunk = body.read(CHUNK_BYTES)
                if not chunk:
                    break
                total += len(chunk)
                if total > self.settings.max_audio_bytes:
                    body.close()
                    raise self._too_large(t, total)
                if time.monotonic() > deadline:
                    body.close()
                    raise E.FetchTransient(
                        f"download deadline of {self.settings.fetch_deadline_seconds:g} s passed after {total} bytes"
                    )
                chunks.append(chunk)
            return b"".join(chunks), resp.get("ContentType")
        except E.FetchError:
            raise
        except Exception as e:  # translated into the error tree
            raise _translate_s3(e, t) from e

    def _too_large(self, t: AudioUrl, size: int) -> E.TooLarge:
        return E.TooLarge(
            f"{redact_url(t.url)} exceeds MAX_AUDIO_BYTES={self.settings.max_audio_bytes} ({size} bytes or more)"
        )

    # ----- http(s) -------------------------------------------------------------------------
    def _http_get(self, target: AudioUrl, deadline: float) -> tuple[bytes, str | None]:
        import urllib3

        current = target
        for _hop in range(MAX_REDIRECTS + 1):
            allow_private = self.allowlist.check(current)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise E.FetchTransient("download deadline passed before the request")
            ips = safe_addresses(current.host, current.port, self._resolve, allow_private=allow_private)
            timeout = urllib3.Timeout(
                connect=min(self.settings.fetch_connect_timeout_seconds, remaining),
                read=min(self.settings.fetch_read_timeout_seconds, remaining),
            )
            try:
                resp = self._pool(current, ips[0]).urlopen(
                    "GET",
                    current.path,
                    headers={
                        "Host": _host_header(current),
                        "Accept": "audio/*, */*;q=0.5",
                        "User-Agent": "anomaly-cli",
                    },
                    redirect=False,
                    retries=False,
                    preload_content=False,
                    timeout=timeout,
                    assert_same_host=False,
                )
            except urllib3.exceptions.HTTPError as e:
                raise _translate_urllib3(e, current) from e
            if resp.status in (301, 302, 303, 307, 308) and resp.headers.get("Location"):
                resp.close()  # a redirect body is never read; the connection is not reused
                current = parse_audio_url(urljoin(current.url, resp.headers["Location"]))
                if current.kind == "s3":  # an https S3 address reached by redirect: fetch it with boto3
                    self.allowlist.check(current)
                    return self._s3_get(current, deadline)
                continue
            try:
                _raise_for_status(resp.status, current)
                data = self._stream(resp, current, deadline)
            except BaseException:
                resp.close()  # never drain a hostile or broken stream back into the pool
                raise
            resp.release_conn()
            return data, resp.headers.get("Content-Type")
        raise E.FetchError(
            f"more than {MAX_REDIRECTS} redirects from {redact_url(target.url)}", code="too_many_redirects"
        )

    def _pool(self, t: AudioUrl, ip: str) -> urllib3.HTTPConnectionPool:
        import urllib3

        key = (t.kind, t.host, t.port, ip)
        if key not in self._pools:
            if t.kind == "https":
                # Connect to the checked address; SNI and certificate checks use the real host name.
                self._pools[key] = urllib3.HTTPSConnectionPool(
                    ip,
                    t.port,
                    server_hostname=t.host,
                    assert_hostname=t.host,
                    cert_reqs="CERT_REQUIRED",
                    ca_certs=self._ca_certs,
                    maxsize=4,
                    block=False,
                )
            else:
                self._pools[key] = urllib3.HTTPConnectionPool(ip, t.port, maxsize=4, block=False)
        return self._pools[key]

    def _stream(self, resp: urllib3.BaseHTTPResponse, t: AudioUrl, deadline: float) -> bytes:
        import urllib3

        cap = self.settings.max_audio_bytes
        length = resp.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > cap:
            raise self._too_large(t, int(length))
        chunks, total = [], 0
        try:
            while True:
                # read1 returns as soon as any bytes arrive, so the deadline is checked even
                # when a server drips; read(n) would block until n bytes came.
                chunk = resp.read1(CHUNK_BYTES)
                if not chunk:
                    break
                total += len(chunk)
                if total > cap:
                    raise self._too_large(t, total)
                if time.monotonic() > deadline:
                    raise E.FetchTransient(
                        f"download deadline of {self.settings.fetch_deadline_seconds:g} s passed "
                        f"after {total} bytes from {t.host}"
                    )
                chunks.append(chunk)
        except E.FetchError:
            raise
        except (urllib3.exceptions.HTTPError, OSError) as e:
            raise _translate_urllib3(e, t) from e
        return b"".join(chunks)


def _host_header(t: AudioUrl) -> str:
    default = 443 if t.kind == "https" else 80
    host = f"[{t.host}]" if ":" in t.host else t.host
    return host if t.port == default else f"{host}:{t.port}"


def _raise_for_status(status: int, t: AudioUrl) -> None:
    if 200 <= status < 300:
        return
    where = f"{redact_url(t.url)}: HTTP {status}"
    if status in (404, 410):
        raise E.NotFound(where)
    if status in (401, 403):
        raise E.AccessDenied(where)
    if status in (408, 425, 429) or status >= 500:
        raise E.FetchTransient(where)
    raise E.FetchError(where, code=f"http_{status}")


def _translate_urllib3(e: BaseException, t: AudioUrl) -> E.FetchError:
    import urllib3

    name = type(e).__name__
    if isinstance(e, urllib3.exceptions.SSLError) and any(
        s in str(e) for s in ("CERTIFICATE_VERIFY_FAILED", "hostname", "doesn't match")
    ):
        # A certificate that does not verify will not verify on the next try either; other TLS
        # failures (a reset mid-handshake) are network trouble like any other.
        return E.FetchError(redact_text(f"TLS certificate of {t.host} does not verify: {e}"), code="tls_error")
    return E.FetchTransient(redact_text(f"{name} talking to {t.host}:{t.port}: {e}"))


def _translate_s3(e: BaseException, t: AudioUrl) -> E.FetchError:
    from botocore.exceptions import ClientError, NoCredentialsError, ParamValidationError

    where = f"s3://{t.bucket}/{t.key}"
    if isinstance(e, ClientError):
        err = e.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0
        if code == "InvalidObjectState":  # archived to Glacier: permanent, but not a credentials issue
            return E.FetchError(f"{where}: object is archived ({code})", code="archived")
        if code in _S3_NOT_FOUND or status == 404:
            return E.NotFound(f"{where}: {code or status}")
        if code in _S3_DENIED or status in (401, 403):
            return E.AccessDenied(f"{where}: {code or status}")
        if code in _S3_TRANSIENT or status >= 500 or status == 429:
            return E.FetchTransient(f"{where}: {code or status}")
        return E.FetchError(f"{where}: {code}: {err.get('Message', '')[:200]}", code="s3_error")
    if isinstance(e, NoCredentialsError):
        return E.AccessDenied(f"{where}: no AWS credentials found")
    if isinstance(e, ParamValidationError):
        return E.InvalidUrl(f"{where}: {e}")
    # Connection errors, timeouts, resets, a body that stopped mid-stream: all worth a retry.
    return E.FetchTransient(redact_text(f"{where}: {type(e).__name__}: {e}"))


def read_local(path: str | Path, max_bytes: int) -> FetchedAudio:
    """Read a local file for ``anomaly score`` under the same byte cap (read in chunks, so a
    device or FIFO cannot make us read forever)."""
    started = time.monotonic()
    p = Path(path)
    try:
        if p.is_dir():
            raise E.InvalidUrl(f"{p} is a directory")
        with p.open("rb") as fh:
            chunks, total = [], 0
            while chunk := fh.read(CHUNK_BYTES):
                total += len(chunk)
                if total > max_bytes:
                    raise E.TooLarge(f"{p} exceeds the cap of {max_bytes} bytes")
                chunks.append(chunk)
    except FileNotFoundError as e:
        raise E.NotFound(f"{p}: no such file") from e
    except PermissionError as e:
        raise E.AccessDenied(f"{p}: permission denied") from e
    except IsADirectoryError as e:
        raise E.InvalidUrl(f"{p} is a directory") from e
    except OSError as e:
        raise E.FetchError(f"{p}: {e.strerror or e}", code="read_failed") from e
    return FetchedAudio(b"".join(chunks), str(p), "file", 1, (time.monotonic() - started) * 1000, None)


def presign(s3_client: S3Client, url: str, expires_s: int = 300) -> str:
    """A presigned GET URL for an S3 recording (``results show``); unsigned https URLs come back
    as they are (they are already fetchable); a signed https URL is presigned afresh when it is an
    S3 object and refused otherwise. Raises :class:`InvalidUrl` for anything else."""
    t = parse_audio_url(url)
    if t.kind != "s3":
        if t.kind == "https" and "?" in t.path:
            # A stored presigned URL carries someone else's signature (and maybe session token):
            # never re-shared. An S3 object gets a fresh link of our own; anything else, none.
            if not (t.bucket and t.key):
                raise E.InvalidUrl(f"{redact_url(url)} is a signed URL of another host; it is not re-shared")
            t = AudioUrl(t.url, "s3", bucket=t.bucket, key=t.key, region=t.region)
        elif t.kind == "https":
            return t.url
        else:
            raise E.InvalidUrl(f"cannot presign {redact_url(url)}")
    try:
        return str(
            s3_client.generate_presigned_url(
                "get_object", Params={"Bucket": t.bucket, "Key": t.key}, ExpiresIn=int(expires_s)
            )
        )
    except Exception as e:
        raise _translate_s3(e, t) from e
