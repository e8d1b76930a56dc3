"""The stdlib metrics server under hostile clients: bad lengths, idle sockets, too many peers."""

from __future__ import annotations

import socket
import threading

import pytest

from allele.observability.collector import MetricsCollector
from allele.observability.export.prometheus import metrics_asgi_app
from allele.observability.export.server import MetricsServer


def _raw(server: MetricsServer, request: bytes, timeout: float = 10.0) -> bytes:
    with socket.create_connection((server.host, server.port), timeout=timeout) as conn:
        conn.sendall(request)
        chunks = []
        while True:
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


@pytest.fixture
def server():
    collector = MetricsCollector()
    collector.counter("allele_requests").inc(3)
    collector.fold()  # exposition serves what the last fold left
    with MetricsServer(
        metrics_asgi_app(collector), port=0, idle_timeout_s=0.5, max_connections=2
    ) as running:
        yield running


@pytest.mark.parametrize("length", [b"abc", b"-1", b"1e3", b"99999999999"])
def test_a_bad_content_length_is_answered_400_or_413_and_closed(server, length):
    reply = _raw(
        server, b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + b"\r\n\r\n"
    )
    status = reply.split(b"\r\n", 1)[0]
    assert status in (b"HTTP/1.1 400 Bad Request", b"HTTP/1.1 413 Request Entity Too Large")
    assert b"Content-Length" in reply
    # The server still answers scrapes afterwards.
    ok = _raw(server, b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert b"allele_requests_total{instance=" in ok and b'"} 3.0\n' in ok


def test_idle_connections_are_closed_and_do_not_exhaust_the_threads(server):
    idle = [socket.create_connection((server.host, server.port)) for _ in range(2)]
    try:
        for conn in idle:
            conn.settimeout(10.0)
            # The server closes each idle connection after its idle timeout: recv sees EOF.
            assert conn.recv(1024) == b""
    finally:
        for conn in idle:
            conn.close()
    ok = _raw(server, b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert ok.startswith(b"HTTP/1.1 200")


def test_connections_over_the_bound_get_503_instead_of_a_thread(server):
    before = threading.active_count()
    held = [socket.create_connection((server.host, server.port)) for _ in range(2)]
    try:
        # Both slots are taken by connections that have not sent a request yet.
        for conn in held:
            conn.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # headers not finished
        reply = _raw(server, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 503")
        assert threading.active_count() <= before + 2
    finally:
        for conn in held:
            conn.close()
