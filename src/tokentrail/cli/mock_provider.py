"""`tokentrail mock-provider`: run the local OpenAI / Azure / Anthropic / Gemini mock in the foreground."""

from __future__ import annotations

import logging
import signal
import sys
from types import FrameType
from typing import Annotated

import typer

from tokentrail.cli.app import app
from tokentrail.core import ValidationError
from tokentrail.mockprovider import DEFAULT_HOST, DEFAULT_PORT, MockConfig, MockProvider

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _deployments(values: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        name, sep, model = value.partition("=")
        if not sep or not name.strip() or not model.strip():
            raise typer.BadParameter(f"{value!r} is not NAME=MODEL", param_hint="--azure-deployment")
        out[name.strip()] = model.strip()
    return out


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the server like Ctrl-C does


@app.command("mock-provider")
def mock_provider(
    host: Annotated[
        str, typer.Option("--host", help="Address to bind; loopback unless you say otherwise.")
    ] = DEFAULT_HOST,
    port: Annotated[int, typer.Option("--port", help="Port to listen on (0 picks a free one).")] = DEFAULT_PORT,
    latency_ms: Annotated[float, typer.Option("--latency-ms", help="Delay before the first byte.")] = 0.0,
    token_latency_ms: Annotated[float, typer.Option("--token-latency-ms", help="Delay per generated token.")] = 0.0,
    error_rate: Annotated[float, typer.Option("--error-rate", help="Share of requests (0-1) that fail.")] = 0.0,
    error_kind: Annotated[
        list[str] | None,
        typer.Option(
            "--error-kind", help="Error injected by --error-rate (repeatable): rate_limit, server_error, overloaded."
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for generated text, ids and injected errors.")] = 0,
    rpm: Annotated[int, typer.Option("--rpm", help="Requests per minute per API key.")] = 500,
    tpm: Annotated[int, typer.Option("--tpm", help="Tokens per minute per API key.")] = 200_000,
    no_rate_limits: Annotated[
        bool, typer.Option("--no-rate-limits", help="Report rate-limit headers but never answer 429 for them.")
    ] = False,
    retry_after_ms: Annotated[int, typer.Option("--retry-after-ms", help="Wait advertised on injected 429s.")] = 1_000,
    cache_min_tokens: Annotated[int, typer.Option("--cache-min-tokens", help="Shortest cacheable prefix.")] = 1024,
    auto_cache_system: Annotated[
        bool,
        typer.Option(
            "--auto-cache-system/--no-auto-cache-system",
            help="Anthropic: cache long system prompts even without cache_control.",
        ),
    ] = True,
    output_tokens: Annotated[
        int | None, typer.Option("--output-tokens", help="Fixed answer length in tokens (default: from the prompt).")
    ] = None,
    azure_deployment: Annotated[
        list[str] | None,
        typer.Option("--azure-deployment", help="Azure deployment and the model it serves, NAME=MODEL (repeatable)."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Do not log each request.")] = False,
) -> None:
    """Serve the OpenAI, Azure OpenAI, Anthropic and Gemini wire formats locally, with realistic
    usage, caching, reasoning tokens, rate-limit headers, latency and errors. Ctrl-C stops it."""
    try:
        config = MockConfig(
            latency_ms=latency_ms,
            token_latency_ms=token_latency_ms,
            error_rate=error_rate,
            error_kinds=tuple(error_kind) if error_kind else MockConfig().error_kinds,
            seed=seed,
            requests_per_minute=rpm,
            tokens_per_minute=tpm,
            enforce_rate_limits=not no_rate_limits,
            retry_after_ms=retry_after_ms,
            cache_min_tokens=cache_min_tokens,
            auto_cache_system=auto_cache_system,
            output_tokens=output_tokens,
            azure_deployments=_deployments(azure_deployment or []),
        )
    except ValidationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if host not in _LOOPBACK:
        typer.echo(f"warning: binding {host}: the mock provider is reachable from other machines", err=True)
    logger = logging.getLogger("tokentrail.mockprovider")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    if not quiet:  # one line per request: method, path, status, time (never headers or keys)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    mock = MockProvider(host, port, config=config)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        mock.bind()
        url = mock.url
        typer.echo(f"tokentrail mock provider listening on {url}")
        typer.echo(f"  OpenAI     base_url={url}/v1")
        typer.echo(f"  Azure      azure_endpoint={url}")
        typer.echo(f"  Anthropic  base_url={url}")
        typer.echo(f"  Gemini     http_options=HttpOptions(base_url={url!r})")
        typer.echo("Press Ctrl-C to stop.")
        mock.serve_forever()
    except OSError as exc:
        typer.echo(f"error: cannot listen on {host}:{port}: {exc.strerror or exc}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        typer.echo("stopped")
    finally:
        signal.signal(signal.SIGTERM, previous)
        logger.removeHandler(handler)
        mock.stop()
