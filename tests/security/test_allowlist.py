"""GIVEN an allowlist naming one local server and one bucket WHEN audio URLs point anywhere else
(other hosts, buckets, ports, the cloud metadata address, loopback, ``file://``, or a redirect
to any of these) THEN the fetcher refuses with ``url_not_allowed`` BEFORE any request: the
target server saw no request, DNS was not even asked, the S3 client sent nothing."""

from __future__ import annotations

import socket
from typing import Any, Callable, Iterator

import pytest

from anomaly_cli import errors
from anomaly_cli.adapters.storage import Fetcher
from tests.corpus.hostile import HostileServer

BUCKET = "nipun-audio"


class Resolver:
    """A DNS stand-in: records every name asked; answers from a table (never the network)."""

    def __init__(self, table: dict[str, list[str]] | None = None):
        self.table = table or {}
        self.asked: list[str] = []

    def __call__(self, host: str, port: int, *args: Any, **kw: Any) -> list[tuple]:
        self.asked.append(host)
        if host in ("127.0.0.1", "::1"):
            return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        if host not in self.table:
            raise socket.gaierror(f"{host}: unknown in this test")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in self.table[host]]


@pytest.fixture
def servers() -> Iterator[tuple[HostileServer, HostileServer]]:
    """``allowed`` is on the allowlist; ``target`` (another local port) is not."""
    with HostileServer() as allowed, HostileServer() as target:
        target.route("/x.wav", "bytes", b"RIFF-secret")
        allowed.route("/ok.wav", "bytes", b"RIFF-fine")
        yield allowed, target


@pytest.fixture
def s3_requests(s3_client: Any) -> list[str]:
    """Every HTTP request the (moto-backed) S3 client is about to send."""
    sent: list[str] = []
    s3_client.meta.events.register("before-send", lambda request, **kw: sent.append(request.url))
    s3_client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "ap-south-1"})
    s3_client.create_bucket(Bucket="other-bucket", CreateBucketConfiguration={"LocationConstraint": "ap-south-1"})
    s3_client.put_object(Bucket="other-bucket", Key="k.wav", Body=b"secret")
    s3_client.put_object(Bucket=BUCKET, Key="ok.wav", Body=b"fine")
    sent.clear()
    return sent


@pytest.fixture
def fetcher(make_settings: Callable, servers: tuple) -> Callable[..., Fetcher]:
    allowed, _ = servers

    def make(resolver: Resolver | None = None, extra: tuple[str, ...] = (), s3_client: Any = None) -> Fetcher:
        s = make_settings(
            audio_url_allowlist=(allowed.base, f"s3://{BUCKET}", "audio.example.org", *extra),
            fetch_retries=1,
            fetch_deadline_seconds=10.0,
            fetch_read_timeout_seconds=5.0,
        )
        return Fetcher(s, s3_client, resolve=resolver or Resolver(), sleep=lambda s: None)

    return make


def test_control_allowed_urls_are_fetched(fetcher: Callable, servers: tuple, s3_requests: list, s3_client: Any) -> None:
    allowed, _ = servers
    assert fetcher().fetch(allowed.base + "/ok.wav").data == b"RIFF-fine"
    assert fetcher(s3_client=s3_client).fetch(f"s3://{BUCKET}/ok.wav").data == b"fine" and s3_requests


REFUSED_DIRECT = {
    "other_port_on_loopback": lambda target: f"{target.base}/x.wav",
    "ipv6_loopback": lambda target: f"http://[::1]:{target.port}/x.wav",
    "localhost_name": lambda target: f"http://localhost:{target.port}/x.wav",
    "decimal_loopback": lambda target: f"http://2130706433:{target.port}/x.wav",
    "metadata_service": lambda target: "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "metadata_https": lambda target: "https://169.254.169.254/latest/api/token",
    "other_host": lambda target: "https://evil.example.org/a.wav",
    "lookalike_host": lambda target: "https://audio.example.org.evil.net/a.wav",
    "subdomain_not_wildcarded": lambda target: "https://x.audio.example.org/a.wav",
    "https_on_other_port": lambda target: "https://audio.example.org:8443/a.wav",
    "plain_http_to_https_host": lambda target: "http://audio.example.org/a.wav",
    "file_scheme": lambda target: "file:///etc/passwd",
    "ftp_scheme": lambda target: "ftp://127.0.0.1/a.wav",
    "gopher_scheme": lambda target: f"gopher://127.0.0.1:{target.port}/_GET",
}


@pytest.mark.parametrize("name", sorted(REFUSED_DIRECT))
def test_refused_before_any_request(name: str, fetcher: Callable, servers: tuple) -> None:
    allowed, target = servers
    resolver = Resolver()
    with pytest.raises(errors.UrlNotAllowed):
        fetcher(resolver).fetch(REFUSED_DIRECT[name](target))
    assert target.total_hits == 0 and allowed.total_hits == 0
    assert resolver.asked == []  # refused from the allowlist alone, before DNS


@pytest.mark.parametrize(
    "url",
    [
        "s3://other-bucket/k.wav",
        "https://other-bucket.s3.ap-south-1.amazonaws.com/k.wav",
        "https://s3.ap-south-1.amazonaws.com/other-bucket/k.wav",
        f"s3://{BUCKET}.evil/k.wav",
    ],
)
def test_other_buckets_are_refused_before_any_s3_call(
    url: str, fetcher: Callable, s3_requests: list, s3_client: Any
) -> None:
    with pytest.raises(errors.UrlNotAllowed):
        fetcher(s3_client=s3_client).fetch(url)
    assert s3_requests == []


@pytest.mark.parametrize(
    "answers",
    [["127.0.0.1"], ["169.254.169.254"], ["10.0.0.7"], ["93.184.216.34", "127.0.0.1"]],
    ids=["loopback", "metadata", "private", "rebinding_mix"],
)
def test_allowed_name_resolving_to_a_non_public_address_is_refused(
    answers: list, fetcher: Callable, servers: tuple
) -> None:
    allowed, target = servers
    resolver = Resolver({"audio.example.org": answers})
    with pytest.raises(errors.UrlNotAllowed, match="non-public"):
        fetcher(resolver).fetch("https://audio.example.org/a.wav")
    assert resolver.asked == ["audio.example.org"]
    assert target.total_hits == 0 and allowed.total_hits == 0


REDIRECTS = {
    "to_other_local_port": lambda target: f"{target.base}/x.wav",
    "to_metadata_service": lambda target: "http://169.254.169.254/latest/meta-data/",
    "to_file": lambda target: "file:///etc/passwd",
    "to_other_bucket_s3": lambda target: "s3://other-bucket/k.wav",
    "to_other_bucket_https": lambda target: "https://other-bucket.s3.ap-south-1.amazonaws.com/k.wav",
    "to_allowed_name_on_private_address": lambda target: "https://audio.example.org/a.wav",
    "to_ipv6_loopback": lambda target: f"http://[::1]:{target.port}/x.wav",
}


@pytest.mark.parametrize("name", sorted(REDIRECTS))
def test_redirects_out_of_the_allowlist_are_refused(
    name: str, fetcher: Callable, servers: tuple, s3_requests: list, s3_client: Any
) -> None:
    allowed, target = servers
    url = allowed.route("/hop.wav", "redirect", location=REDIRECTS[name](target))
    resolver = Resolver({"audio.example.org": ["10.1.2.3"]})
    with pytest.raises(errors.UrlNotAllowed):
        fetcher(resolver, s3_client=s3_client).fetch(url)
    assert allowed.hits["/hop.wav"] == 1  # the allowed first hop was asked...
    assert target.total_hits == 0 and s3_requests == []  # ...the refused second hop never was


def test_redirect_chains_are_bounded(fetcher: Callable, servers: tuple) -> None:
    allowed, _ = servers
    loop = allowed.route("/loop.wav", "redirect", location="/loop.wav")
    with pytest.raises(errors.FetchError) as info:
        fetcher().fetch(loop)
    assert info.value.code == "too_many_redirects" and not info.value.transient


def test_credentials_inside_urls_are_refused(fetcher: Callable, servers: tuple) -> None:
    allowed, _ = servers
    with pytest.raises(errors.InvalidUrl):
        fetcher().fetch(allowed.base.replace("http://", "http://user:pw@") + "/ok.wav")
    assert allowed.total_hits == 0


def test_the_worker_writes_a_terminal_result_and_the_target_sees_nothing(
    sqs_client: Any, make_queue: Callable, make_settings: Callable, mongo: Any, servers: tuple, engine_model: Any
) -> None:
    """Through the real worker: refused URLs (direct and by redirect) are answers, not requests."""
    from anomaly_cli.worker.shutdown import MaxMessages
    from tests.conftest import queue_counts
    from tests.corpus.conftest import run_worker
    from tests.corpus.test_messages import valid_item

    allowed, target = servers
    hop = allowed.route("/hop.wav", "redirect", location="http://169.254.169.254/latest/meta-data/")
    items = [
        valid_item(u, subject_id=f"s{i}")
        for i, u in enumerate(
            [f"{target.base}/x.wav", hop, "file:///etc/passwd", "http://169.254.169.254/latest/meta-data/"]
        )
    ]
    url = make_queue()
    for it in items:
        sqs_client.send_message(QueueUrl=url, MessageBody=it.to_body())
    settings = make_settings(
        sqs_queue_url=url,
        audio_url_allowlist=(allowed.base,),
        sqs_wait_seconds=0,
        flush_seconds=0.2,
        fetch_retries=1,
        mongo_uri="mongomock://unused",
    )
    db = mongo["nipun"]
    report = run_worker(settings, sqs_client=sqs_client, db=db, model=engine_model, policy=MaxMessages(len(items)))

    assert report.error is None
    docs = list(db["anomaly_detection_results"].find({}))
    assert len(docs) == len(items)
    assert {d["processing"]["error"]["code"] for d in docs} == {"url_not_allowed"}
    assert all(d["inference"]["reason_codes"] == ["unavailable"] for d in docs)
    assert target.total_hits == 0 and allowed.hits["/hop.wav"] == 1
    assert queue_counts(sqs_client, url) == {"visible": 0, "in_flight": 0}  # permanent: acked, never looping
