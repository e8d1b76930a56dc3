"""A small HTTP server for ASGI apps on the standard library (no framework, no uvicorn).

Each request runs the ASGI app to completion on a private event loop in the handler's thread
(``ThreadingHTTPServer``: one thread per connection). It is meant for ``/metrics`` scrapes, not
for streaming responses: the body is sent once the app has finished.

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


async def _complete(call: Awaitable[None]) -> None:
    await call


def _handler_for(app: ASGIApp) -> type[BaseHTTPRequestHandler]:
    class ASGIHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _run(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("content-length") or 0)
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


class MetricsServer:
    """Serves an ASGI app on ``host:port`` (port 0: a free port) from a background thread."""

    def __init__(self, app: ASGIApp, host: str = "127.0.0.1", port: int = 9464) -> None:
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValidationError(f"port={port!r} must be an integer in 0..65535 (0: any free)")
        self._httpd = ThreadingHTTPServer((host, port), _handler_for(app))
        self._httpd.daemon_threads = True
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
