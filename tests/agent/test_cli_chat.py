"""``allele chat`` against a local OpenAI-compatible server."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from allele.cli import app

runner = CliRunner()


def test_one_shot_streams_the_reply_with_the_genome_from_flags(server, wire):
    server.script(wire.sse_reply(wire.openai_stream(["Hello", ", world"], usage=(20, 4))))
    result = runner.invoke(
        app,
        [
            "chat",
            "--provider",
            "openai",
            "--model",
            "m1",
            "--base-url",
            server.url,
            "--api-key-env",
            "ALLELE_TEST_NO_KEY",
            "--trait",
            "empathy=0.9",
            "--trait",
            "creativity=1",
            "--temperature",
            "0.5",
            "-m",
            "hi",
            "--stats",
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == "Hello, world\n"
    body = server.received[0].json
    assert "empathy 0.90" in body["messages"][0]["content"]
    assert body["messages"][-1] == {"role": "user", "content": "hi"}
    assert body["temperature"] == 0.8
    assert "tokens_out" in result.stderr and "requests" in result.stderr


def test_interactive_reads_lines_until_exit_with_a_genome_file(server, wire, tmp_path):
    from allele.genome import ConversationalGenome

    genome = ConversationalGenome(traits={"technical_knowledge": 0.95})
    path = tmp_path / "genome.json"
    path.write_text(json.dumps(genome.to_dict()))
    server.script(
        wire.sse_reply(wire.openai_stream(["first"])),
        wire.sse_reply(wire.openai_stream(["second"])),
    )
    result = runner.invoke(
        app,
        ["chat", "--model", "m", "--base-url", server.url, "--genome", str(path)],
        input="one\n\ntwo\n/exit\nnever sent\n",
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == "first\nsecond\n"
    assert len(server.received) == 2
    second = server.received[1].json["messages"]
    assert "technical knowledge 0.95" in second[0]["content"]
    assert [m["content"] for m in second[1:]] == ["one", "first", "two"]


def test_provider_failure_exits_non_zero_with_a_clear_message(server, wire):
    server.script(wire.json_reply({"error": {"message": "Incorrect API key"}}, 401))
    result = runner.invoke(app, ["chat", "--model", "m", "--base-url", server.url, "-m", "hi"])
    assert result.exit_code == 1
    assert "AuthenticationError" in result.stderr and "Incorrect API key" in result.stderr


def test_bad_options_exit_2_naming_the_problem(tmp_path):
    result = runner.invoke(app, ["chat", "--model", "m", "--trait", "empathy", "-m", "x"])
    assert result.exit_code == 2 and "NAME=VALUE" in result.stderr
    result = runner.invoke(app, ["chat", "--model", "m", "--temperature", "5", "-m", "x"])
    assert result.exit_code == 2 and "'temperature'" in result.stderr
    result = runner.invoke(app, ["chat", "--genome", str(tmp_path / "none.json"), "-m", "x"])
    assert result.exit_code == 2 and "cannot read genome file" in result.stderr


def test_synthetic_provider_is_announced(tmp_path):
    result = runner.invoke(app, ["chat", "--provider", "synthetic", "--seed", "5", "-m", "x"])
    assert result.exit_code == 0
    assert "synthetic provider" in result.stderr and result.stdout.strip()


def test_connection_refused_is_one_clear_line_and_exit_1(refused_url):
    result = runner.invoke(
        app, ["chat", "--model", "m", "--base-url", refused_url, "--retries", "1", "-m", "hi"]
    )
    assert result.exit_code == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line == (
        f"error: ProviderConnectionError: cannot connect to openai at {refused_url}: "
        "All connection attempts failed (gave up after 2 attempts)"
    )
    assert "Traceback" not in result.output


def test_interactive_turn_failure_is_reported_and_the_session_continues(server, wire):
    cut = wire.openai_stream(["par", "tial", " more"])
    server.script(
        wire.sse_reply(cut, cut_after=3),  # role chunk, "par", "tial", then the socket dies
        wire.sse_reply(wire.openai_stream(["recovered"])),
    )
    result = runner.invoke(
        app, ["chat", "--model", "m", "--base-url", server.url], input="one\ntwo\n"
    )
    assert result.exit_code == 1  # a turn failed
    # The partial reply's line is ended, so the next reply starts on its own line.
    assert result.stdout == "partial\nrecovered\n"
    assert result.stderr.count("error: ProtocolError: openai stream was cut mid-reply") == 1
    # Only the completed exchange is history: the second request does not carry the first.
    assert [m["content"] for m in server.received[1].json["messages"][1:]] == ["two"]


def test_ollama_provider_whole_reply(server, wire):
    final = {
        "model": "llama3.2",
        "message": {"role": "assistant", "content": "Bonjour."},
        "done": True,
        "prompt_eval_count": 9,
        "eval_count": 3,
    }
    server.script(wire.json_reply(final))
    args = ["chat", "--provider", "ollama", "--model", "llama3.2", "--base-url", server.url]
    result = runner.invoke(app, [*args, "--no-stream", "-m", "salut"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "Bonjour.\n"
    (request,) = server.received
    assert request.path == "/api/chat" and request.json["stream"] is False
    assert request.json["model"] == "llama3.2"
