"""Agent overhead per streamed chunk, beside a raw httpx streaming loop over the same server.

A local OpenAI-compatible server streams N chunks of SSE (``data: {...}``, one HTTP chunk each,
no delay) and ``data: [DONE]``. Both clients read the same replies from it:

* anchor -- the minimal client a user would write: ``httpx`` ``aiter_lines``, ``json.loads`` of
  each ``data:`` line, pick ``choices[0].delta.content``;
* ours -- ``NLPAgent.chat`` with the OpenAI provider: SSE parsing, typed errors, usage, TTFT,
  metrics, listeners' record.

The server runs in a separate process (spawned): on this 2-core machine it then gets its own
core and its own GIL, so its cost does not land on the measured client's time. Both clients run
alternately in one process, ``--repeats`` times each; medians are reported, and the overhead
is the median of the paired (agent - raw) differences.

    .venv/bin/python benchmarks/bench_agent.py [--quick]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

TARGET_US = 50.0


def _serve(n_chunks: int, port_queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """Run the SSE server forever (in the child process), reporting its port once bound."""
    events = []
    for i in range(n_chunks):
        chunk = {
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {"content": f"tok{i % 10} "}}],
        }
        events.append(f"data: {json.dumps(chunk)}\n\n".encode())
    usage = {"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": n_chunks}}
    events += [f"data: {json.dumps(usage)}\n\n".encode(), b"data: [DONE]\n\n"]
    # One HTTP chunk per SSE event, as a server flushing per token sends them.
    body = b"".join(f"{len(e):x}\r\n".encode() + e + b"\r\n" for e in events) + b"0\r\n\r\n"
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    )

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in request.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                writer.write(head + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port_queue.put(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(main())


async def _raw_httpx(client, n_chunks: int) -> float:  # type: ignore[no-untyped-def]
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    count = 0
    start = time.perf_counter()
    async with client.stream("POST", "/chat/completions", json=body) as response:
        async for line in response.aiter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                choices = json.loads(line[6:])["choices"]
                if choices and choices[0]["delta"].get("content"):
                    count += 1
    elapsed = time.perf_counter() - start
    assert count == n_chunks, count
    return elapsed / n_chunks


async def _agent(agent, n_chunks: int) -> float:  # type: ignore[no-untyped-def]
    count = 0
    start = time.perf_counter()
    async for _chunk in agent.chat("hi"):
        count += 1
    elapsed = time.perf_counter() - start
    assert count == n_chunks, count
    return elapsed / n_chunks


async def _measure(url: str, n_chunks: int, repeats: int) -> tuple[list[float], list[float]]:
    import httpx

    from allele.agent import AgentConfig, NLPAgent
    from allele.genome import ConversationalGenome

    # No history: the anchor sends the same small request every time, so must the agent.
    config = AgentConfig(
        provider="openai",
        model="m",
        base_url=url,
        api_key_env=None,
        history_length=0,
        max_tokens=4096,
        max_retries=0,
    )
    agent = NLPAgent(ConversationalGenome(), config)
    raw: list[float] = []
    ours: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as client, agent:
        await _raw_httpx(client, n_chunks)  # warm both connection pools and code paths
        await _agent(agent, n_chunks)
        for _ in range(repeats):
            raw.append(await _raw_httpx(client, n_chunks))
            ours.append(await _agent(agent, n_chunks))
    metrics = agent.get_metrics()
    assert metrics["errors"] == 0 and metrics["usage_sources"] == {"provider": repeats + 1}
    return raw, ours


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--chunks", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    repeats = args.repeats or (5 if args.quick else 15)

    ctx = multiprocessing.get_context("spawn")
    ports = ctx.Queue()
    server = ctx.Process(target=_serve, args=(args.chunks, ports), daemon=True)
    server.start()
    try:
        url = f"http://127.0.0.1:{ports.get(timeout=30)}"
        raw, ours = asyncio.run(_measure(url, args.chunks, repeats))
    finally:
        server.terminate()
        server.join(5)
    raw_us = statistics.median(raw) * 1e6
    ours_us = statistics.median(ours) * 1e6
    # Paired: each agent run is compared with the raw run just before it, so load from other
    # processes on this shared machine shifts both sides of a pair alike.
    overhead_us = statistics.median(o - r for o, r in zip(ours, raw, strict=True)) * 1e6
    verdict = "ok" if overhead_us <= TARGET_US else "OVER TARGET"
    print(f"chunks={args.chunks} repeats={repeats} server=separate process")
    print(
        f"RATIO agent time per streamed chunk: ours={ours_us:.1f}us anchor={raw_us:.1f}us "
        f"ratio={ours_us / raw_us:.2f} overhead={overhead_us:.1f}us "
        f"(target overhead <= {TARGET_US:.0f} us: {verdict})"
    )


if __name__ == "__main__":
    main()
