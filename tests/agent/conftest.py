"""Real HTTP servers on 127.0.0.1 that speak each provider's wire protocol, scripted per test.

``ProtocolServer`` is a small raw HTTP/1.1 server (``asyncio.start_server``) running in its own
thread and event loop, so the agent under test -- in the test's loop, or in a CLI's own
``asyncio.run`` -- talks to it over a real socket. Each request pops the next scripted ``Reply``:
a whole body, a chunked stream (SSE / NDJSON) that may be cut mid-way, a delay before the
headers, or a dropped connection. Every request received is recorded for assertions.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from allele.agent import AgentConfig


@dataclass
class Reply:
    """What the server answers to one request."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    chunks: list[bytes] | None = None  # chunked transfer encoding when set
    delay_s: float = 0.0  # before the status line
    cut_after: int | None = None  # close the socket after this many chunks, mid-body
    stall_after: int | None = None  # pause stall_s after this many chunks
    stall_s: float = 0.0
    drop: bool = False  # close the connection without answering


@dataclass
class Received:
    """One request as the server read it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class ProtocolServer:
    """A scripted HTTP server on 127.0.0.1:<free port> in a background thread."""

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.received: list[Received] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._server: asyncio.Server | None = None
        self.port = 0

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> ProtocolServer:
        self._thread.start()
        self._ready.wait(5)
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def serve() -> None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            self.port = self._server.sockets[0].getsockname()[1]
            self._ready.set()

        self._loop.run_until_complete(serve())
        self._loop.run_forever()
        # Let cancelled handlers finish, then release the loop's own sockets.
        pending = asyncio.all_tasks(self._loop)
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.close()

    def stop(self) -> None:
        async def shutdown() -> None:
            assert self._server is not None
            self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    # -- HTTP -----------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.received.append(Received(method, path, headers, body))
            reply = self.replies.popleft() if self.replies else Reply(500, body=b"unscripted")
            await self._answer(reply, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _answer(self, reply: Reply, writer: asyncio.StreamWriter) -> None:
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        if reply.drop:
            return
        head = [f"HTTP/1.1 {reply.status} X", "Connection: close"]
        head += [f"{k}: {v}" for k, v in reply.headers.items()]
        if reply.chunks is None:
            head.append(f"Content-Length: {len(reply.body)}")
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + reply.body)
            await writer.drain()
            return
        head.append("Transfer-Encoding: chunked")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
        for i, chunk in enumerate(reply.chunks):
            if reply.cut_after is not None and i == reply.cut_after:
                await writer.drain()
                # Abort: the client sees the body end without the chunked terminator.
                writer.transport.abort()
                return
            if reply.stall_after is not None and i == reply.stall_after:
                await asyncio.sleep(reply.stall_s)
            writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()


# -- wire-format builders -------------------------------------------------------------------
def json_reply(data: Any, status: int = 200, **headers: str) -> Reply:
    return Reply(status, {"Content-Type": "application/json", **headers}, json.dumps(data).encode())


def openai_stream(
    texts: list[str], usage: tuple[int, int] | None = (11, 7), done: bool = True
) -> list[bytes]:
    """Chunks as OpenAI sends them with ``stream_options.include_usage``.

    A first chunk with only the role, one chunk per text, a ``finish_reason`` chunk, every one
    with ``"usage": null``, then a usage-only chunk whose ``choices`` is empty, then ``[DONE]``.
    ``usage=None`` is a server that ignores ``include_usage`` (no usage key at all).
    """

    def chunk(delta: dict[str, str], finish: str | None = None) -> bytes:
        data: dict[str, Any] = {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": "test-model",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        if usage is not None:
            data["usage"] = None
        return f"data: {json.dumps(data)}\n\n".encode()

    chunks = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({"content": text}) for text in texts]
    chunks.append(chunk({}, "stop"))
    if usage is not None:
        last = {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "choices": [],
            "usage": {
                "prompt_tokens": usage[0],
                "completion_tokens": usage[1],
                "total_tokens": usage[0] + usage[1],
            },
        }
        chunks.append(f"data: {json.dumps(last)}\n\n".encode())
    if done:
        chunks.append(b"data: [DONE]\n\n")
    return chunks


def openai_reply(text: str, usage: tuple[int, int] | None = (11, 7)) -> Reply:
    data: dict[str, Any] = {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]
    }
    if usage is not None:
        data["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1]}
    return json_reply(data)


def sse_reply(chunks: list[bytes], **kwargs: Any) -> Reply:
    return Reply(200, {"Content-Type": "text/event-stream"}, chunks=chunks, **kwargs)


def ollama_stream(texts: list[str], counts: tuple[int, int] | None = (13, 5)) -> list[bytes]:
    """NDJSON lines as Ollama's /api/chat streams them; the last has ``done`` and the counts."""
    lines = [
        json.dumps(
            {
                "model": "m",
                "created_at": "2025-01-01T00:00:00Z",
                "message": {"role": "assistant", "content": t},
                "done": False,
            }
        )
        for t in texts
    ]
    if counts is not None:
        final = {
            "model": "m",
            "created_at": "2025-01-01T00:00:01Z",
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": "stop",
            "total_duration": 1_000_000,
            "prompt_eval_count": counts[0],
            "eval_count": counts[1],
        }
        lines.append(json.dumps(final))
    return [(line + "\n").encode() for line in lines]


def anthropic_stream(texts: list[str], usage: tuple[int, int] = (17, 9)) -> list[bytes]:
    def event(name: str, data: dict[str, Any]) -> bytes:
        return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()

    events = [
        event(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_1",
                    "role": "assistant",
                    "content": [],
                    "usage": {"input_tokens": usage[0], "output_tokens": 1},
                },
            },
        ),
        event(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        event("ping", {"type": "ping"}),
    ]
    for text in texts:
        events.append(
            event(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": text},
                },
            )
        )
    events += [
        event("content_block_stop", {"type": "content_block_stop", "index": 0}),
        event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": usage[1]},
            },
        ),
        event("message_stop", {"type": "message_stop"}),
    ]
    return events


class Wire:
    """The builders above, reachable from tests through the ``wire`` fixture."""

    Reply = Reply
    json_reply = staticmethod(json_reply)
    openai_stream = staticmethod(openai_stream)
    openai_reply = staticmethod(openai_reply)
    sse_reply = staticmethod(sse_reply)
    ollama_stream = staticmethod(ollama_stream)
    anthropic_stream = staticmethod(anthropic_stream)


@pytest.fixture
def wire() -> type[Wire]:
    return Wire


@pytest.fixture
def server() -> Iterator[ProtocolServer]:
    srv = ProtocolServer().start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def refused_url() -> str:
    """A loopback URL on which nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class SleepRecorder:
    """Stands in for asyncio.sleep in backoff waits: records the delays, waits no time."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


class ManualClock:
    """A monotonic clock that only moves when something sleeps on it (records the sleeps)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def fast_config(**overrides: Any) -> AgentConfig:
    settings: dict[str, Any] = {
        "model": "test-model",
        "request_timeout": 2.0,
        "max_retries": 2,
        "backoff_initial": 0.01,
        "backoff_max": 0.02,
    }
    settings.update(overrides)
    return AgentConfig(**settings)


@pytest.fixture
def make_config() -> Any:
    """Build an AgentConfig with small timeouts and backoffs for tests."""
    return fast_config
