"""Fetcher against moto S3 and a misbehaving local HTTP server; the allowlist; local files."""

from __future__ import annotations

import io
import json
import socket
import time
from typing import Any, Callable

import pytest

from anomaly_cli.adapters.storage import Fetcher, ensure_allowlist, parse_audio_url, presign, read_local
from anomaly_cli.adapters.urls import Allowlist
from anomaly_cli.errors import (
    AccessDenied,
    ConfigError,
    FetchError,
    FetchTransient,
    InvalidUrl,
    NotFound,
    TooLarge,
    UrlNotAllowed,
    is_transient,
)
from tests.adapters.conftest import AUDIO

BUCKET = "nipun-audio"
KEY = "2025-12-20/STU-1/reading.m4a"


class Sleeps(list):
    """An injected ``sleep`` that records the backoff instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def fetcher_for(make_settings: Callable[..., Any]) -> Callable[..., tuple[Fetcher, Sleeps]]:
    def factory(
        allow: str, s3_client: Any = None, resolve: Any = socket.getaddrinfo, **kw: Any
    ) -> tuple[Fetcher, Sleeps]:
        kw = {
            "fetch_retries": 3,
            "fetch_read_timeout_seconds": 2.0,
            "fetch_connect_timeout_seconds": 2.0,
            "fetch_deadline_seconds": 10.0,
            **kw,
        }
        sleeps = Sleeps()
        return Fetcher(make_settings(audio_url_allowlist=allow, **kw), s3_client, sleep=sleeps, resolve=resolve), sleeps

    return factory


@pytest.fixture
def bucket(s3_client: Any) -> Any:
    s3_client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "ap-south-1"})
    s3_client.put_object(Bucket=BUCKET, Key=KEY, Body=AUDIO, ContentType="audio/mp4")
    return s3_client


# --- URL forms -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url,bucket,key",
    [
        (f"s3://{BUCKET}/{KEY}", BUCKET, KEY),
        (f"https://{BUCKET}.s3.ap-south-1.amazonaws.com/{KEY}", BUCKET, KEY),
        (f"https://{BUCKET}.s3.amazonaws.com/{KEY}", BUCKET, KEY),
        (f"https://{BUCKET}.s3-ap-south-1.amazonaws.com/{KEY}", BUCKET, KEY),
        (f"https://s3.ap-south-1.amazonaws.com/{BUCKET}/{KEY}", BUCKET, KEY),
        ("https://my.dotted.bucket.s3.amazonaws.com/a%20b.wav", "my.dotted.bucket", "a b.wav"),
    ],
)
def test_s3_url_forms_map_to_bucket_and_key(url: str, bucket: str, key: str) -> None:
    t = parse_audio_url(url)
    assert (t.kind, t.bucket, t.key) == ("s3", bucket, key)


def test_presigned_s3_url_is_fetched_as_https_not_remapped() -> None:
    t = parse_audio_url(f"https://{BUCKET}.s3.amazonaws.com/{KEY}?X-Amz-Signature=abc&X-Amz-Expires=300")
    assert t.kind == "https" and t.bucket == BUCKET


@pytest.mark.parametrize(
    "url,error",
    [
        ("", InvalidUrl),
        ("not a url", InvalidUrl),
        ("s3://bucket-only", InvalidUrl),
        ("ftp://h/x.wav", UrlNotAllowed),
        ("file:///etc/passwd", UrlNotAllowed),
        ("https://user:pw@host/x.wav", InvalidUrl),
        ("https:///nohost", InvalidUrl),
        ("https://h:99999/x", InvalidUrl),
    ],
)
def test_bad_urls_are_permanent_errors(url: str, error: type) -> None:
    with pytest.raises(error) as info:
        parse_audio_url(url)
    assert not is_transient(info.value)


# --- allowlist -------------------------------------------------------------------------------
def test_empty_allowlist_is_a_configuration_error(make_settings: Callable[..., Any]) -> None:
    with pytest.raises(ConfigError) as info:
        ensure_allowlist(make_settings())
    assert info.value.field == "AUDIO_URL_ALLOWLIST"


@pytest.mark.parametrize("entry", ["s3://", "https://h/path", "user@host", "bad host", "h:notaport"])
def test_malformed_entries_are_configuration_errors(make_settings: Callable[..., Any], entry: str) -> None:
    with pytest.raises(ConfigError, match="AUDIO_URL_ALLOWLIST"):
        ensure_allowlist(make_settings(audio_url_allowlist=entry))


@pytest.mark.parametrize(
    "url,allowed",
    [
        (f"s3://{BUCKET}/{KEY}", True),
        (f"https://{BUCKET}.s3.ap-south-1.amazonaws.com/{KEY}", True),
        (f"s3://other-bucket/{KEY}", False),
        ("s3://prefixed/ok/x.wav", True),
        ("s3://prefixed/elsewhere/x.wav", False),
        ("https://cdn.example.org/a.wav", True),
        ("https://cdn.example.org:8443/a.wav", False),  # port not named
        ("http://cdn.example.org/a.wav", False),  # plain http needs an http:// entry
        ("https://media.example.net:8443/a.wav", True),
        ("https://a.b.wild.example.com/x.wav", True),
        ("https://wild.example.com/x.wav", False),  # *.x matches subdomains only
        ("https://evil.example/x.wav", False),
        ("http://127.0.0.1:8080/a.wav", True),
        ("http://127.0.0.1:8081/a.wav", False),
    ],
)
def test_allowlist_grammar(url: str, allowed: bool) -> None:
    allow = Allowlist(
        [
            f"s3://{BUCKET}",
            "s3://prefixed/ok/",
            "cdn.example.org",
            "https://media.example.net:8443",
            "*.wild.example.com",
            "http://127.0.0.1:8080",
        ]
    )
    if allowed:
        allow.check(parse_audio_url(url))
    else:
        with pytest.raises(UrlNotAllowed):
            allow.check(parse_audio_url(url))


def fake_dns(answers: dict[str, list[str]]) -> Callable[..., list[tuple]]:
    def resolve(host: str, port: int, **kw: Any) -> list[tuple]:
        if host not in answers:
            raise socket.gaierror(f"unknown host {host}")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in answers[host]]

    return resolve


@pytest.mark.parametrize(
    "ips", [["10.1.2.3"], ["169.254.169.254"], ["127.0.0.1"], ["93.184.216.34", "192.168.0.7"], ["100.64.0.1"]]
)
def test_allowed_https_host_resolving_to_non_public_address_is_refused_before_connecting(fetcher_for, ips) -> None:
    fetcher, _ = fetcher_for("audio.example.org", resolve=fake_dns({"audio.example.org": ips}))
    with pytest.raises(UrlNotAllowed, match="non-public"):
        fetcher.fetch("https://audio.example.org/x.wav")


def test_http_entry_by_name_may_use_loopback_and_sends_the_real_host(fetcher_for, http_server) -> None:
    base, _ = http_server
    port = base.rsplit(":", 1)[1]
    fetcher, _ = fetcher_for(f"http://audio.test:{port}", resolve=fake_dns({"audio.test": ["127.0.0.1"]}))
    got = fetcher.fetch(f"http://audio.test:{port}/host")
    assert got.data == f"audio.test:{port}".encode()


def test_disallowed_url_is_refused_without_any_request(fetcher_for, http_server) -> None:
    base, state = http_server
    fetcher, _ = fetcher_for("http://127.0.0.2:1")
    with pytest.raises(UrlNotAllowed):
        fetcher.fetch(f"{base}/ok.wav")
    assert state.hits == {}


# --- http ------------------------------------------------------------------------------------
def test_http_fetch_ok(fetcher_for, http_server) -> None:
    base, _ = http_server
    fetcher, sleeps = fetcher_for(base)
    got = fetcher.fetch(f"{base}/ok.wav")
    assert got.data == AUDIO and got.kind == "http" and got.attempts == 1 and got.content_type == "audio/wav"
    assert sleeps == []


def test_500_then_200_is_retried_with_backoff(fetcher_for, http_server) -> None:
    base, state = http_server
    state.fail_first = 2
    fetcher, sleeps = fetcher_for(base)
    got = fetcher.fetch(f"{base}/flaky")
    assert got.data == AUDIO and got.attempts == 3 and state.hits["/flaky"] == 3
    assert len(sleeps) == 2 and all(s > 0 for s in sleeps)


def test_persistent_500_ends_as_transient_after_the_last_attempt(fetcher_for, http_server) -> None:
    base, state = http_server
    state.fail_first = 99
    fetcher, sleeps = fetcher_for(base, fetch_retries=3)
    with pytest.raises(FetchTransient) as info:
        fetcher.fetch(f"{base}/flaky")
    assert is_transient(info.value) and state.hits["/flaky"] == 3 and len(sleeps) == 2


@pytest.mark.parametrize(
    "path,error,code",
    [
        ("/missing", NotFound, "not_found"),
        ("/denied", AccessDenied, "access_denied"),
        ("/teapot", FetchError, "http_418"),
    ],
)
def test_permanent_http_errors_are_not_retried(fetcher_for, http_server, path, error, code) -> None:
    base, state = http_server
    fetcher, sleeps = fetcher_for(base)
    with pytest.raises(error) as info:
        fetcher.fetch(f"{base}{path}")
    assert info.value.code == code and not is_transient(info.value)
    assert state.hits[path] == 1 and sleeps == []


def test_redirect_inside_the_allowlist_is_followed(fetcher_for, http_server) -> None:
    base, state = http_server
    fetcher, _ = fetcher_for(base)
    assert fetcher.fetch(f"{base}/redirect-ok").data == AUDIO
    assert state.hits["/ok.wav"] == 1


@pytest.mark.parametrize(
    "location",
    [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "https://evil.example/steal",
        "file:///etc/passwd",
        "http://127.0.0.1:1/other-port",
    ],
)
def test_redirect_outside_the_allowlist_is_refused(fetcher_for, http_server, location) -> None:
    base, state = http_server
    state.redirects["x"] = location
    fetcher, sleeps = fetcher_for(base)
    with pytest.raises(UrlNotAllowed):
        fetcher.fetch(f"{base}/r/x")
    assert sleeps == []


def test_redirect_loop_is_cut(fetcher_for, http_server) -> None:
    base, state = http_server
    fetcher, _ = fetcher_for(base)
    with pytest.raises(FetchError) as info:
        fetcher.fetch(f"{base}/redirect-loop")
    assert info.value.code == "too_many_redirects" and state.hits["/redirect-loop"] == 6


def test_stream_past_the_size_cap_is_cut_while_streaming(fetcher_for, http_server) -> None:
    base, state = http_server
    fetcher, sleeps = fetcher_for(base, max_audio_bytes=1_000_000)
    with pytest.raises(TooLarge):
        fetcher.fetch(f"{base}/endless")
    assert sleeps == []  # permanent: no retry
    deadline = time.monotonic() + 10
    while state.sent.get("/endless", 0) < 1_000_000 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    # the server was stopped by the hang-up, long before its 200 MB
    assert state.sent["/endless"] < 50 * 1024 * 1024


def test_content_length_over_the_cap_is_refused_before_reading(fetcher_for, http_server) -> None:
    base, _ = http_server
    fetcher, _ = fetcher_for(base, max_audio_bytes=1_000_000)
    with pytest.raises(TooLarge, match="1000000000"):
        fetcher.fetch(f"{base}/biglen")


def test_dripping_server_is_cut_off_by_the_overall_deadline(fetcher_for, http_server) -> None:
    base, state = http_server
    fetcher, _ = fetcher_for(base, fetch_deadline_seconds=1.0, fetch_read_timeout_seconds=5.0)
    started = time.monotonic()
    with pytest.raises(FetchTransient, match="deadline"):
        fetcher.fetch(f"{base}/drip")
    assert time.monotonic() - started < 5.0  # a read timeout alone would never fire: bytes keep coming
    assert state.sent["/drip"] >= 2  # it really was dripping


def test_server_that_never_answers_times_out_as_transient(fetcher_for, http_server) -> None:
    base, state = http_server
    fetcher, sleeps = fetcher_for(base, fetch_read_timeout_seconds=0.3, fetch_retries=2)
    with pytest.raises(FetchTransient):
        fetcher.fetch(f"{base}/hang")
    assert state.hits["/hang"] == 2 and len(sleeps) == 1


def test_refused_connection_is_transient(fetcher_for) -> None:
    with socket.socket() as s:  # a port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    fetcher, _ = fetcher_for(f"http://127.0.0.1:{port}", fetch_retries=2)
    with pytest.raises(FetchTransient):
        fetcher.fetch(f"http://127.0.0.1:{port}/x.wav")


def test_logs_never_carry_presigned_signatures(fetcher_for, http_server) -> None:
    from anomaly_cli.log import configure_logging

    base, state = http_server
    state.fail_first = 99
    stream = io.StringIO()
    configure_logging("DEBUG", stream)
    fetcher, _ = fetcher_for(base, fetch_retries=2)
    with pytest.raises(FetchTransient):
        fetcher.fetch(f"{base}/flaky?X-Amz-Signature=supersecret&X-Amz-Credential=AKIAX")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert {"fetch_retrying", "fetch_failed"} <= {e["event"] for e in lines}
    assert "supersecret" not in stream.getvalue() and "AKIAX" not in stream.getvalue()


def test_https_fetch_verifies_the_certificate_of_the_checked_address(make_settings, https_server) -> None:
    base, ca, state = https_server
    settings = make_settings(audio_url_allowlist=base, fetch_retries=2)
    got = Fetcher(settings, ca_certs=ca).fetch(f"{base}/ok.wav")
    assert got.data == AUDIO and got.kind == "https"
    # without our CA the same server is refused, permanently (no retry would fix a certificate)
    sleeps = Sleeps()
    with pytest.raises(FetchError) as info:
        Fetcher(settings, sleep=sleeps).fetch(f"{base}/ok.wav")
    assert info.value.code == "tls_error" and not is_transient(info.value) and sleeps == []


def test_https_connects_to_the_checked_address_and_verifies_the_host_name(
    make_settings, https_server, monkeypatch
) -> None:
    import anomaly_cli.adapters.storage as storage

    base, ca, state = https_server
    port = base.rsplit(":", 1)[1]
    # Stand-in for a DNS answer with a public address that routes to this server: the address
    # check passes, and the connection must go to exactly that address with SNI = the host name.
    monkeypatch.setattr(storage, "safe_addresses", lambda host, port, resolve, allow_private: ["127.0.0.1"])
    settings = make_settings(audio_url_allowlist=f"audio.test:{port},other.test:{port}", fetch_retries=1)
    got = Fetcher(settings, ca_certs=ca).fetch(f"https://audio.test:{port}/host")
    assert got.data == f"audio.test:{port}".encode()  # the Host header names the host, not the IP
    with pytest.raises(FetchError) as info:  # certificate names audio.test, not other.test
        Fetcher(settings, ca_certs=ca).fetch(f"https://other.test:{port}/ok.wav")
    assert info.value.code == "tls_error"


# --- S3 (moto) -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        f"s3://{BUCKET}/{KEY}",
        f"https://{BUCKET}.s3.ap-south-1.amazonaws.com/{KEY}",
        f"https://s3.ap-south-1.amazonaws.com/{BUCKET}/{KEY}",
    ],
)
def test_s3_fetch_in_every_url_form(fetcher_for, bucket, url) -> None:
    fetcher, _ = fetcher_for(f"s3://{BUCKET}", s3_client=bucket)
    got = fetcher.fetch(url)
    assert got.data == AUDIO and got.kind == "s3" and got.content_type == "audio/mp4"


@pytest.mark.parametrize("url", [f"s3://{BUCKET}/missing.wav", "s3://no-such-bucket-here/x.wav"])
def test_s3_missing_key_or_bucket_is_not_found(fetcher_for, bucket, url) -> None:
    fetcher, sleeps = fetcher_for(f"s3://{BUCKET},s3://no-such-bucket-here", s3_client=bucket)
    with pytest.raises(NotFound):
        fetcher.fetch(url)
    assert sleeps == []


def test_s3_bucket_outside_the_allowlist_is_refused(fetcher_for, bucket) -> None:
    fetcher, _ = fetcher_for("s3://another-bucket", s3_client=bucket)
    with pytest.raises(UrlNotAllowed):
        fetcher.fetch(f"s3://{BUCKET}/{KEY}")


def test_s3_object_over_the_cap(fetcher_for, bucket) -> None:
    bucket.put_object(Bucket=BUCKET, Key="big.wav", Body=b"\x00" * 300_000)
    fetcher, _ = fetcher_for(f"s3://{BUCKET}", s3_client=bucket, max_audio_bytes=100_000)
    with pytest.raises(TooLarge):
        fetcher.fetch(f"s3://{BUCKET}/big.wav")


def test_s3_throttling_is_retried_then_succeeds(fetcher_for, bucket) -> None:
    from botocore.response import StreamingBody
    from botocore.stub import Stubber

    stubber = Stubber(bucket)
    params = {"Bucket": BUCKET, "Key": KEY}
    stubber.add_client_error("get_object", "SlowDown", "Reduce your request rate", 503, expected_params=params)
    stubber.add_client_error("get_object", "InternalError", "oops", 500, expected_params=params)
    stubber.add_response(
        "get_object", {"Body": StreamingBody(io.BytesIO(AUDIO), len(AUDIO)), "ContentLength": len(AUDIO)}, params
    )
    fetcher, sleeps = fetcher_for(f"s3://{BUCKET}", s3_client=bucket)
    with stubber:
        got = fetcher.fetch(f"s3://{BUCKET}/{KEY}")
    assert got.data == AUDIO and got.attempts == 3 and len(sleeps) == 2


def test_s3_access_denied_is_permanent(fetcher_for, bucket) -> None:
    from botocore.stub import Stubber

    stubber = Stubber(bucket)
    stubber.add_client_error("get_object", "AccessDenied", "Access Denied", 403)
    fetcher, sleeps = fetcher_for(f"s3://{BUCKET}", s3_client=bucket)
    with stubber, pytest.raises(AccessDenied):
        fetcher.fetch(f"s3://{BUCKET}/{KEY}")
    assert sleeps == []


def test_s3_archived_object_is_permanent_but_not_access_denied(fetcher_for, bucket) -> None:
    from botocore.stub import Stubber

    stubber = Stubber(bucket)
    stubber.add_client_error(
        "get_object", "InvalidObjectState", "The operation is not valid for the storage class", 403
    )
    fetcher, sleeps = fetcher_for(f"s3://{BUCKET}", s3_client=bucket)
    with stubber, pytest.raises(FetchError) as info:
        fetcher.fetch(f"s3://{BUCKET}/{KEY}")
    # not AccessDenied: a run of archived objects must not look like broken credentials
    assert info.value.code == "archived" and not isinstance(info.value, AccessDenied) and sleeps == []


def test_presigned_url_from_a_moto_server_is_fetched_over_http(fetcher_for, moto_server, make_settings) -> None:
    import boto3

    client = boto3.client("s3", region_name="ap-south-1", endpoint_url=moto_server)
    name = f"presign-{time.time_ns()}"
    client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "ap-south-1"})
    client.put_object(Bucket=name, Key="a.wav", Body=AUDIO)
    url = presign(client, f"s3://{name}/a.wav", expires_s=60)
    assert "X-Amz-Signature=" in url
    fetcher, _ = fetcher_for(moto_server)  # the endpoint is http://127.0.0.1:<port>: named, so allowed
    got = fetcher.fetch(url)
    assert got.data == AUDIO and got.kind == "http"


def test_s3_via_moto_server_endpoint(fetcher_for, moto_server) -> None:
    import boto3

    admin = boto3.client("s3", region_name="ap-south-1", endpoint_url=moto_server)
    name = f"endpoint-{time.time_ns()}"
    admin.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "ap-south-1"})
    admin.put_object(Bucket=name, Key="k.wav", Body=AUDIO)
    fetcher, _ = fetcher_for(f"s3://{name}", aws_endpoint_url=moto_server)  # default client built from settings
    assert fetcher.fetch(f"s3://{name}/k.wav").data == AUDIO


def test_presign_passes_other_https_urls_through() -> None:
    assert presign(None, "https://cdn.example.org/a.wav") == "https://cdn.example.org/a.wav"


# --- local files -----------------------------------------------------------------------------
def test_read_local(tmp_path) -> None:
    p = tmp_path / "a.wav"
    p.write_bytes(AUDIO)
    got = read_local(p, 10_000)
    assert got.data == AUDIO and got.kind == "file"
    with pytest.raises(TooLarge):
        read_local(p, 100)
    with pytest.raises(NotFound):
        read_local(tmp_path / "missing.wav", 100)
    with pytest.raises(InvalidUrl):
        read_local(tmp_path, 100)
