"""A threaded HTTP server on 127.0.0.1 that misbehaves on demand, for the fetch tests."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest

AUDIO = b"RIFF" + b"\x00" * 2000  # bytes are bytes here: fetch does not decode


@dataclass
class ServerState:
    """What the server saw: request counts per path, bytes the endless streams managed to send."""

    hits: dict[str, int] = field(default_factory=dict)
    sent: dict[str, int] = field(default_factory=dict)
    fail_first: int = 1
    redirects: dict[str, str] = field(default_factory=dict)  # /r/<name> -> Location
    stop: threading.Event = field(default_factory=threading.Event)


class Handler(BaseHTTPRequestHandler):
    state: ServerState

    def log_message(self, *args: object) -> None:  # keep pytest output clean
        pass

    def _send(self, status: int, body: bytes = b"", ctype: str = "audio/wav", **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k.replace("_", "-"), v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # http.server's naming
        st = self.state
        path = self.path.split("?")[0]
        st.hits[path] = st.hits.get(path, 0) + 1
        if path == "/ok.wav":
            self._send(200, AUDIO)
        elif path == "/host":
            self._send(200, self.headers.get("Host", "").encode(), ctype="text/plain")
        elif path == "/flaky":
            self._send(500, b"oops", ctype="text/plain") if st.hits[path] <= st.fail_first else self._send(200, AUDIO)
        elif path == "/missing":
            self._send(404, b"<html>Not Found</html>", ctype="text/html")
        elif path == "/denied":
            self._send(403, b"<Error><Code>AccessDenied</Code></Error>", ctype="application/xml")
        elif path == "/teapot":
            self._send(418, b"no")
        elif path == "/redirect-ok":
            self._send(302, Location="/ok.wav")
        elif path == "/redirect-loop":
            self._send(302, Location="/redirect-loop")
        elif path.startswith("/r/"):
            self._send(302, Location=st.redirects[path[3:]])
        elif path == "/biglen":
            self.send_response(200)
            self.send_header("Content-Length", str(10**9))
            self.end_headers()
        elif path in ("/endless", "/drip"):
            self._endless(path)
        elif path == "/hang":
            st.stop.wait(30)
        else:
            self._send(404)

    def _endless(self, path: str) -> None:
        """Stream without Content-Length until the client hangs up: 200 MB fast, or a byte every
        50 ms for 4 s (so a client without a deadline gets the whole drip and the test fails)."""
        self.send_response(200)
        self.send_header("Content-Type", "audio/wav")
        self.send_header("Connection", "close")
        self.end_headers()
        chunk, pause, limit = (b"\x00" * 65536, 0.0, 200 * 1024 * 1024) if path == "/endless" else (b"\x01", 0.05, 80)
        sent = 0
        try:
            while sent < limit and not self.state.stop.is_set():
                self.wfile.write(chunk)
                self.wfile.flush()
                sent += len(chunk)
                self.state.sent[path] = sent
                if pause:
                    time.sleep(pause)
        except OSError:
            pass  # the client hung up: that is what the test wants


@pytest.fixture
def http_server() -> Iterator[tuple[str, ServerState]]:
    """``(base_url, state)`` of a fresh misbehaving server on 127.0.0.1."""
    state = ServerState()
    handler = type("BoundHandler", (Handler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        state.stop.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def https_server(tmp_path) -> Iterator[tuple[str, str, ServerState]]:
    """``(base_url, ca_file, state)``: the same server over TLS with a throwaway CA whose
    certificate names 127.0.0.1 (IP SAN) and ``audio.test``."""
    import datetime as dt
    import ipaddress
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "anomaly test")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("audio.test"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_file, key_file)
    state = ServerState()
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("TlsHandler", (Handler,), {"state": state}))
    server.daemon_threads = True
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", str(cert_file), state
    finally:
        state.stop.set()
        server.shutdown()
        server.server_close()
