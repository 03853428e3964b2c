"""Automatic instrumentation of provider SDKs: `instrument()`, `uninstrument()`, `wrap_openai()`.

One engine (`engine`, `streams`) patches sync, async and streaming methods; each provider is a
`Plugin` registered here (see docs/instrumentation.md for how to add one).
"""

from __future__ import annotations

from typing import Any, TypeVar

from tokentrail.instrument import openai_support
from tokentrail.instrument.anthropic_sdk import AnthropicPlugin
from tokentrail.instrument.bedrock_sdk import BedrockPlugin
from tokentrail.instrument.engine import Call, Endpoint, Patch, Plugin, current_call, start_call
from tokentrail.instrument.gemini_sdk import GeminiPlugin
from tokentrail.instrument.openai_sdk import OpenAIPlugin
from tokentrail.instrument.registry import REGISTRY
from tokentrail.instrument.streams import StreamState, track_stream

C = TypeVar("C")

REGISTRY.register(OpenAIPlugin())
REGISTRY.register(AnthropicPlugin())
REGISTRY.register(GeminiPlugin())
REGISTRY.register(BedrockPlugin())


def register_plugin(plugin: Plugin) -> None:
    """Make a provider plug-in known to `instrument()` under `plugin.name`."""
    REGISTRY.register(plugin)


def instrument(
    *names: str,
    inject_stream_usage: bool | None = None,
    openai_compatible_provider: str | None = None,
) -> list[str]:
    """Patch the named SDKs, or every installed supported SDK when none is named, so that
    every client's calls are recorded. Returns the names now instrumented.

    Names: `"openai"`, `"anthropic"`, `"gemini"` (also `"google"`, `"google-genai"`),
    `"bedrock"` (also `"boto3"`).

    - `inject_stream_usage`: for OpenAI streams that do not ask for usage, add
      `stream_options={"include_usage": True}` and hide the extra usage chunk from the caller
      (default: the `inject_stream_usage` setting; otherwise usage is estimated and marked so).
    - `openai_compatible_provider`: the provider name of OpenAI-compatible base URLs that are
      not recognised (self-hosted servers, gateways); default `vllm`.

    Instrumenting an SDK twice patches nothing more (options given again are applied).
    An unknown name raises `ValidationError`; a named SDK that is not installed is skipped.
    """
    options = {"inject_stream_usage": inject_stream_usage, "openai_compatible_provider": openai_compatible_provider}
    return REGISTRY.instrument(tuple(names), {k: v for k, v in options.items() if v is not None})


def uninstrument(*names: str) -> None:
    """Put back exactly what `instrument()` replaced (the named SDKs, or all of them and every
    client wrapped by `wrap_openai()` and the like when none is named)."""
    REGISTRY.uninstrument(tuple(names))


def instrumented() -> list[str]:
    """The SDKs `instrument()` has patched."""
    return REGISTRY.instrumented()


def wrap_openai(
    client: C,
    *,
    provider: str | None = None,
    inject_stream_usage: bool | None = None,
    openai_compatible_provider: str | None = None,
) -> C:
    """Record the calls of this one `OpenAI` / `AsyncOpenAI` / `AzureOpenAI` client (and of its
    `with_options()` copies); returns the same client. `provider` forces the provider name
    (otherwise it comes from the base URL); the other options are those of `instrument()`,
    for this client only."""
    options: dict[str, Any] = {
        "provider": provider,
        "inject_stream_usage": inject_stream_usage,
        "openai_compatible_provider": openai_compatible_provider,
    }
    return REGISTRY.wrap_client("openai", client, {k: v for k, v in options.items() if v is not None})  # type: ignore[no-any-return]


def wrap_anthropic(client: C, *, provider: str | None = None) -> C:
    """Record the calls of this one `Anthropic` / `AsyncAnthropic` client (or `AnthropicBedrock`,
    `AnthropicVertex`, ..., and their `with_options()` copies); returns the same client.
    `provider` forces the provider name (otherwise `anthropic`, `aws.bedrock` or
    `gcp.vertex_ai` by client class)."""
    options: dict[str, Any] = {"provider": provider}
    return REGISTRY.wrap_client("anthropic", client, {k: v for k, v in options.items() if v is not None})  # type: ignore[no-any-return]


def wrap_gemini(client: C, *, provider: str | None = None) -> C:
    """Record the calls of this one `google.genai.Client` (`client.models` and
    `client.aio.models`); returns the same client. `provider` forces the provider name
    (otherwise `gcp.vertex_ai` for a Vertex client, else `gcp.gemini`)."""
    options: dict[str, Any] = {"provider": provider}
    return REGISTRY.wrap_client("gemini", client, {k: v for k, v in options.items() if v is not None})  # type: ignore[no-any-return]


def wrap_bedrock(client: C, *, provider: str | None = None) -> C:
    """Record the calls of this one boto3 `bedrock-runtime` client; returns the same client.
    `provider` forces the provider name (otherwise `aws.bedrock`)."""
    options: dict[str, Any] = {"provider": provider}
    return REGISTRY.wrap_client("bedrock", client, {k: v for k, v in options.items() if v is not None})  # type: ignore[no-any-return]


def _wrap_copy(client: Any, options: dict[str, Any]) -> Any:
    return REGISTRY.wrap_client("openai", client, options)


openai_support.WRAP_CLIENT[0] = _wrap_copy

__all__ = [
    "Call",
    "Endpoint",
    "Patch",
    "Plugin",
    "StreamState",
    "current_call",
    "instrument",
    "instrumented",
    "register_plugin",
    "start_call",
    "track_stream",
    "uninstrument",
    "wrap_anthropic",
    "wrap_bedrock",
    "wrap_gemini",
    "wrap_openai",
]
