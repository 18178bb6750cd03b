"""A local HTTP server that misbehaves on purpose (127.0.0.1 only), counting every request.

Routes (``server.route(path, kind, ...)``):
``bytes`` (a status and a body), ``forever`` (streams bytes as fast as it can, no
Content-Length), ``drip`` (one byte every ``interval`` seconds, forever), ``never`` (accepts the
request and never answers), ``huge_length`` (announces a 10 GB Content-Length, then streams),
``redirect`` (a ``Location`` header). Unknown paths answer 404. ``hits`` counts requests per
path, so a test can prove that a refused URL caused no request at all.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CHUNK = b"\x00\x11" * 32 * 1024


@dataclass
class Route:
    kind: str
    body: bytes = b""
    status: int = 200
    location: str = ""
    interval: float = 0.2


class HostileServer:
    """See the module docstring; start with ``with HostileServer() as srv:`` or :meth:`start`."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        self.sent: Counter[str] = Counter()  # bytes written per path
        self.stop = threading.Event()
        self._lock = threading.Lock()
        srv = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # the connection closes after each answer

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # http.server's naming
                path = self.path.split("?")[0]
                with srv._lock:
                    srv.hits[path] += 1
                route = srv.routes.get(path, Route("bytes", b"not found", 404))
                try:
                    srv._serve(self, path, route)
                except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    # ----- routes -------------------------------------------------------------------------------
    def route(
        self,
        path: str,
        kind: str = "bytes",
        body: bytes = b"",
        *,
        status: int = 200,
        location: str = "",
        interval: float = 0.2,
    ) -> str:
        """Register ``path`` and return its full URL."""
        self.routes[path] = Route(kind, body, status, location, interval)
        return self.base + path

    @property
    def total_hits(self) -> int:
        return sum(self.hits.values())

    def _count(self, path: str, n: int) -> None:
        with self._lock:
            self.sent[path] += n

    def _serve(self, h: BaseHTTPRequestHandler, path: str, r: Route) -> None:
        if r.kind == "never":
            self.stop.wait(60)  # holds the connection, says nothing
            return
        if r.kind == "redirect":
            h.send_response(r.status if r.status in (301, 302, 303, 307, 308) else 302)
            h.send_header("Location", r.location)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        if r.kind == "bytes":
            h.send_response(r.status)
            h.send_header("Content-Length", str(len(r.body)))
            h.send_header("Content-Type", "application/octet-stream")
            h.end_headers()
            h.wfile.write(r.body)
            self._count(path, len(r.body))
            return
        h.send_response(200)
        if r.kind == "huge_length":
            h.send_header("Content-Length", str(10 * 1024**3))
        h.end_headers()
        deadline = time.monotonic() + 60
        while not self.stop.is_set() and time.monotonic() < deadline:
            if r.kind == "drip":
                h.wfile.write(b"\x00")
                h.wfile.flush()
                self._count(path, 1)
                self.stop.wait(r.interval)
            else:  # forever / huge_length: as fast as the client reads
                h.wfile.write(CHUNK)
                self._count(path, len(CHUNK))

    # ----- lifecycle ----------------------------------------------------------------------------
    def start(self) -> "HostileServer":
        self._thread.start()
        return self

    def close(self) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> "HostileServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()
