"""A small HTTP server for ASGI apps on the standard library (no framework, no uvicorn).

Each request runs the ASGI app to completion on a private event loop in the handler's thread
(one thread per connection). It is meant for ``/metrics`` scrapes, not for streaming responses:
the body is sent once the app has finished.

Hardened for a port anyone on the host may reach: a bad ``Content-Length`` (not a number,
negative, or over ``MAX_BODY_BYTES``) gets 400 / 413 instead of a traceback or a thread stuck
reading; a connection idle for ``idle_timeout_s`` is closed; at most ``max_connections`` are
served at once, and one more is answered 503 and closed at once rather than given a thread.

>>> server = MetricsServer(metrics_asgi_app(collector), port=0).start()   # doctest: +SKIP
>>> server.url                                                             # doctest: +SKIP
'http://127.0.0.1:40123/metrics'
>>> server.stop()                                                          # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from allele.errors import ValidationError
from allele.observability.export.prometheus import ASGIApp
from allele.observability.intervals import MIN_TIMEOUT_S, check_seconds

#: The largest request body read (scrapes send none).
MAX_BODY_BYTES = 1 << 20


async def _complete(call: Awaitable[None]) -> None:
    await call


def _handler_for(app: ASGIApp, idle_timeout_s: float) -> type[BaseHTTPRequestHandler]:
    class ASGIHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Socket timeout: an idle keep-alive connection (or a client that stops sending
        # mid-request) is closed instead of holding its thread for ever.
        timeout = idle_timeout_s

        def _length(self) -> int | None:
            """The request's body length, or None after answering 400 / 413."""
            text = (self.headers.get("content-length") or "0").strip()
            if not text.isdigit():
                self._refuse(400, f"Content-Length {text[:40]!r} is not a non-negative integer")
                return None
            length = int(text)
            if length > MAX_BODY_BYTES:
                self._refuse(413, f"Content-Length {length} is over {MAX_BODY_BYTES} bytes")
                return None
            return length

        def _refuse(self, status: int, reason: str) -> None:
            body = (reason + "\n").encode()
            self.close_connection = True
            self.send_response(status)
            self.send_header("content-type", "text/plain; charset=utf-8")
            self.send_header("content-length", str(len(body)))
            self.send_header("connection", "close")
            self.end_headers()
            self.wfile.write(body)

        def _run(self) -> None:
            parts = urlsplit(self.path)
            length = self._length()
            if length is None:
                return
            body = self.rfile.read(length) if length else b""
            scope = {
                "type": "http",
                "asgi": {"version": "3.0", "spec_version": "2.3"},
                "http_version": "1.1",
                "method": self.command,
                "scheme": "http",
                "path": parts.path,
                "raw_path": parts.path.encode(),
                "query_string": parts.query.encode(),
                "root_path": "",
                "headers": [(k.lower().encode(), v.encode()) for k, v in self.headers.items()],
                "client": self.client_address[:2],
                "server": self.connection.getsockname()[:2],
            }
            response: dict[str, Any] = {"status": 500, "headers": [], "body": b""}
            delivered = False

            async def receive() -> dict[str, Any]:
                nonlocal delivered
                if delivered:
                    return {"type": "http.disconnect"}
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}

            async def send(message: Any) -> None:
                if message["type"] == "http.response.start":
                    response["status"] = message["status"]
                    response["headers"] = list(message.get("headers", []))
                elif message["type"] == "http.response.body":
                    response["body"] += message.get("body", b"")

            asyncio.run(_complete(app(scope, receive, send)))
            self.send_response(response["status"])
            for name, value in response["headers"]:
                self.send_header(name.decode("latin-1"), value.decode("latin-1"))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response["body"])

        do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _run

        def log_message(self, format: str, *args: Any) -> None:
            pass  # scrapes every few seconds would flood stderr

    return ASGIHandler


class _BoundedServer(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` with at most ``max_connections`` handler threads."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: Any, max_connections: int) -> None:
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            # Full: answer on the accepting thread, briefly, and close.
            try:
                request.settimeout(1.0)
                request.sendall(
                    b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n"
                    b"connection: close\r\nretry-after: 1\r\n\r\n"
                )
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away or timed out is not worth a traceback on stderr.
        pass


class MetricsServer:
    """Serves an ASGI app on ``host:port`` (port 0: a free port) from a background thread.

    ``idle_timeout_s`` closes connections idle that long; ``max_connections`` bounds the
    connections (threads) served at once.
    """

    def __init__(
        self,
        app: ASGIApp,
        host: str = "127.0.0.1",
        port: int = 9464,
        *,
        idle_timeout_s: float = 10.0,
        max_connections: int = 32,
    ) -> None:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValidationError(f"port={port!r} must be an integer in 0..65535 (0: any free)")
        idle = check_seconds(idle_timeout_s, "idle_timeout_s", minimum=MIN_TIMEOUT_S)
        if (
            isinstance(max_connections, bool)
            or not isinstance(max_connections, int)
            or not 1 <= max_connections <= 10_000
        ):
            raise ValidationError(
                f"max_connections={max_connections!r} must be an integer in 1..10000"
            )
        self._httpd = _BoundedServer((host, port), _handler_for(app, idle), max_connections)
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        """The address the server is bound to."""
        return str(self._httpd.server_address[0])

    @property
    def port(self) -> int:
        """The port the server is bound to (the real one when 0 was asked for)."""
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """The URL of the metrics endpoint."""
        return f"http://{self.host}:{self.port}/metrics"

    def start(self) -> MetricsServer:
        """Serve in a daemon thread; returns ``self``."""
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="allele-metrics-server", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until ``stop()`` or KeyboardInterrupt."""
        try:
            self._httpd.serve_forever()
        finally:
            self._httpd.server_close()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> MetricsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
