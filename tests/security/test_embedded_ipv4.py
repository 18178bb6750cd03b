"""GIVEN an allowed host name WHEN it resolves to an IPv6 address that embeds a non-public IPv4
address (NAT64, 6to4, Teredo, IPv4-compatible / -translated) or to site-local ``fec0::/10``
THEN the fetcher refuses before connecting; hosts the IDNA codec rejects are a terminal
``invalid_url``, never an exception out of ``getaddrinfo``."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any, Callable

import pytest

from anomaly_cli import errors
from anomaly_cli.adapters.urls import is_public, parse_audio_url, safe_addresses
from tests.security.test_allowlist import fetcher, servers  # noqa: F401 - fixtures

REFUSED = {
    "nat64_loopback": "64:ff9b::7f00:1",
    "nat64_local_use_private": "64:ff9b:1::a00:7",
    "sixtofour_loopback": "2002:7f00:1::1",
    "sixtofour_metadata": "2002:a9fe:a9fe::1",
    "ipv4_compatible": "::127.0.0.1",
    "ipv4_translated": "::ffff:0:7f00:1",
    "ipv4_mapped": "::ffff:10.0.0.7",
    "teredo_private_client": "2001:0:4136:e378:8000:63bf:f5ff:fff8",  # client 10.0.0.7
    "site_local": "fec0::1",
}
ACCEPTED = {
    "nat64_public": "64:ff9b::5db8:d822",  # 93.184.216.34
    "sixtofour_public": "2002:5db8:d822::1",
    "plain_global_v6": "2606:4700:4700::1111",
    "plain_global_v4": "93.184.216.34",
}


class V6Resolver:
    def __init__(self, ip: str):
        self.ip = ip
        self.asked = 0

    def __call__(self, host: str, port: int, *args: Any, **kw: Any) -> list[tuple]:
        self.asked += 1
        family = socket.AF_INET6 if ":" in self.ip else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (self.ip, port))]


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_embedded_non_public_ipv4_is_refused(name: str) -> None:
    assert not is_public(ipaddress.ip_address(REFUSED[name]))
    with pytest.raises(errors.UrlNotAllowed, match="non-public"):
        safe_addresses("audio.example.org", 443, V6Resolver(REFUSED[name]), allow_private=False)


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_public_addresses_still_pass(name: str) -> None:
    assert is_public(ipaddress.ip_address(ACCEPTED[name]))
    assert safe_addresses("audio.example.org", 443, V6Resolver(ACCEPTED[name]), allow_private=False)


def test_the_fetcher_never_connects_to_a_nat64_loopback(fetcher: Callable, servers: tuple) -> None:
    allowed, target = servers
    resolver = V6Resolver("64:ff9b::7f00:1")
    with pytest.raises(errors.UrlNotAllowed):
        fetcher(resolver).fetch("https://audio.example.org/a.wav")
    assert resolver.asked == 1 and target.total_hits == 0 and allowed.total_hits == 0


@pytest.mark.parametrize(
    "url", ["https://.cdn.example/x.wav", "https://" + "a" * 70 + ".cdn.example/x.wav", "https://a..cdn.example/x.wav"]
)
def test_hosts_the_idna_codec_rejects_are_invalid_urls(url: str, fetcher: Callable) -> None:
    with pytest.raises(errors.InvalidUrl):
        parse_audio_url(url)

    def exploding(*a: Any, **kw: Any) -> list:
        raise UnicodeError("label empty or too long")

    f = fetcher(exploding, extra=("*.cdn.example",))
    with pytest.raises(errors.InvalidUrl) as e:
        f.fetch(url)
    assert not e.value.transient and e.value.code == "invalid_url"


def test_a_resolver_raising_unicode_error_is_an_invalid_url() -> None:
    def exploding(*a: Any, **kw: Any) -> list:
        raise UnicodeError("label empty or too long")

    with pytest.raises(errors.InvalidUrl):
        safe_addresses("xn--.example", 443, exploding, allow_private=False)
