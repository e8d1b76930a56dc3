"""``allele chat``: talk to an LLM through an NLPAgent, one-shot (``-m``) or line by line.

The reply streams to stdout; errors and ``--stats`` go to stderr, so stdout is only the reply.
Errors are one line each (no traceback). Exit codes: 0 success, 1 a provider request failed,
2 invalid options or genome, 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from allele.cli import app

if TYPE_CHECKING:
    from allele.agent import NLPAgent
    from allele.genome import ConversationalGenome

EXIT_COMMANDS = frozenset({"/exit", "/quit"})


def _load_genome(path: Path | None, traits: list[str]) -> ConversationalGenome:
    """Return the genome from a JSON file (if given) with ``name=value`` trait flags applied."""
    import json

    from allele.errors import ValidationError
    from allele.genome import ConversationalGenome

    if path is None:
        genome = ConversationalGenome()
    else:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ValidationError(f"cannot read genome file {str(path)!r}: {exc}") from exc
        except ValueError as exc:
            raise ValidationError(f"genome file {str(path)!r} is not valid JSON: {exc}") from exc
        genome = ConversationalGenome.from_dict(data)
    for item in traits:
        name, sep, text = item.partition("=")
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not sep or value != value:
            raise ValidationError(f"--trait expects NAME=VALUE with VALUE in [0, 1], got {item!r}")
        genome.set_trait_value(name.strip(), value)
    return genome


async def _reply(agent: NLPAgent, message: str) -> None:
    wrote = False
    try:
        async for chunk in agent.chat(message):
            sys.stdout.write(chunk)
            sys.stdout.flush()
            wrote = True
    except BaseException:
        # End a partial reply's line so the error (on stderr) starts on its own line.
        if wrote:
            sys.stdout.write("\n")
            sys.stdout.flush()
        raise
    sys.stdout.write("\n")
    sys.stdout.flush()


def _print_error(err: Any, exc: BaseException, *, name: bool = True) -> None:
    """Print ``exc`` as one ``error:`` line, its text escaped from rich markup."""
    from rich.markup import escape

    text = f"{type(exc).__name__}: {exc}" if name else str(exc)
    attempts = getattr(exc, "attempts", 1)
    if attempts > 1:
        text += f" (gave up after {attempts} attempts)"
    err.print("[red]error:[/red] " + escape(text.replace("\n", " ")))


async def _session(agent: NLPAgent, message: str | None, err: Any) -> int:
    """Run one message or read stdin until EOF or /exit; return the exit code."""
    from allele.errors import ProviderError

    failed = False
    async with agent:
        if message is not None:
            await _reply(agent, message)
            return 0
        interactive = sys.stdin.isatty()
        while True:
            if interactive:
                err.print("[bold]you>[/bold] ", end="")
            line = sys.stdin.readline()
            if not line:
                break
            text = line.strip()
            if text in EXIT_COMMANDS:
                break
            if not text:
                continue
            try:
                await _reply(agent, text)
            except ProviderError as exc:
                # One failed turn should not end an interactive conversation.
                failed = True
                _print_error(err, exc)
    return 1 if failed else 0


def _print_stats(metrics: dict[str, Any], err: Any) -> None:
    from rich.table import Table

    table = Table(title="agent metrics", show_header=False)
    for key, value in metrics.items():
        if isinstance(value, dict):
            value = ", ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in value.items()
            )
        table.add_row(key, str(value))
    err.print(table)


@app.command()
def chat(
    provider: str = typer.Option(
        "openai",
        "--provider",
        "-p",
        help="openai (any compatible server), ollama, anthropic, "
        "or synthetic (offline generated load, not a language model).",
    ),
    model: str = typer.Option("", "--model", help="Model name (required except synthetic)."),
    base_url: str = typer.Option("", "--base-url", help="API root; default per provider."),
    api_key_env: str = typer.Option(
        "", "--api-key-env", help="Environment variable holding the API key."
    ),
    message: str | None = typer.Option(
        None, "--message", "-m", help="Send one message and exit; otherwise read stdin lines."
    ),
    genome_file: Path | None = typer.Option(None, "--genome", help="Genome JSON file."),
    trait: list[str] = typer.Option(
        [], "--trait", help="Set a trait, NAME=VALUE (repeatable), e.g. --trait empathy=0.9."
    ),
    temperature: float = typer.Option(0.7, help="Base temperature in [0, 2]."),
    max_tokens: int = typer.Option(512, help="Reply token ceiling."),
    stream: bool = typer.Option(True, "--stream/--no-stream", help="Stream the reply."),
    timeout: float = typer.Option(60.0, help="Seconds per network operation."),
    retries: int = typer.Option(3, help="Retries on rate limits, 5xx, timeouts, drops."),
    seed: int = typer.Option(0, help="Seed of the synthetic provider."),
    stats: bool = typer.Option(False, "--stats", help="Print the agent's metrics to stderr."),
) -> None:
    """Chat with an LLM whose personality comes from a genome."""
    import asyncio

    from rich.console import Console

    from allele.agent import AgentConfig, NLPAgent
    from allele.errors import AlleleError, ProviderError, ValidationError

    # soft_wrap: an error stays one line however narrow the terminal (and grep-able in logs).
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        genome = _load_genome(genome_file, trait)
        settings: dict[str, Any] = {
            "provider": provider,
            "model": model,
            "base_url": base_url,
            "temperature": temperature,
            "max_tokens": max_tokens,
            "streaming": stream,
            "request_timeout": timeout,
            "max_retries": retries,
            "synthetic": {"seed": seed},
        }
        if api_key_env:
            settings["api_key_env"] = api_key_env
        agent = NLPAgent(genome, AgentConfig(**settings))
    except ValidationError as exc:
        _print_error(err, exc, name=False)
        raise typer.Exit(2) from None
    if agent.synthetic:
        err.print(
            "[dim]synthetic provider: deterministic generated text, not a language model[/dim]"
        )
    code = 0
    try:
        code = asyncio.run(_session(agent, message, err))
    except ProviderError as exc:
        _print_error(err, exc)
        code = 1
    except KeyboardInterrupt:
        err.print("[dim]interrupted[/dim]")
        code = 130
    except ValidationError as exc:
        _print_error(err, exc, name=False)
        code = 2
    except AlleleError as exc:
        _print_error(err, exc)
        code = 1
    if stats:
        _print_stats(agent.get_metrics(), err)
    if code:
        raise typer.Exit(code)
