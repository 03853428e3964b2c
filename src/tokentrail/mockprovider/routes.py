"""Which provider, API and handler a request path names."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from tokentrail.mockprovider import anthropic, gemini, openai, responses
from tokentrail.mockprovider.exchange import Context, MockRequest, Reply, StreamReply

Handler = Callable[[MockRequest, Context], "Reply | StreamReply"]

# OpenAI-style path tail -> (api name, handler); the SDK's base URL may or may not end in /v1
_OPENAI: dict[str, tuple[str, Handler]] = {
    "chat/completions": ("chat.completions", openai.chat),
    "completions": ("completions", openai.completions),
    "embeddings": ("embeddings", openai.embeddings),
    "responses": ("responses", responses.create),
}
_ANTHROPIC: dict[str, tuple[str, Handler]] = {
    "messages": ("messages", anthropic.messages),
    "messages/count_tokens": ("count_tokens", anthropic.count_tokens_endpoint),
}
_GEMINI: dict[str, Handler] = {
    "generateContent": gemini.generate,
    "streamGenerateContent": gemini.generate,
    "embedContent": gemini.embed,
    "batchEmbedContents": gemini.embed,
    "countTokens": gemini.count_tokens_endpoint,
}
_AZURE_DEPLOYMENT = re.compile(
    r"^/openai/deployments/(?P<deployment>[^/]+)/(?P<tail>chat/completions|completions|embeddings)$"
)
_AZURE_V1 = re.compile(r"^/openai/v1/(?P<tail>chat/completions|completions|embeddings|responses)$")
_GEMINI_PATH = re.compile(
    r"^/(?:v1|v1beta|v1alpha|v1beta1)/(?:projects/[^/]+/locations/[^/]+/publishers/[^/]+/)?"
    r"(?:models|tunedModels)/(?P<model>[^/:]+):(?P<method>\w+)$"
)


@dataclass(frozen=True, slots=True)
class Route:
    provider: str  # openai | azure | anthropic | gemini
    api: str
    handler: Handler
    model: str | None = None  # from the path (Gemini)
    deployment: str | None = None  # from the path (Azure)


def resolve(path: str) -> Route | None:
    match = _GEMINI_PATH.match(path)
    if match:
        handler = _GEMINI.get(match["method"])
        return None if handler is None else Route("gemini", match["method"], handler, model=match["model"])
    match = _AZURE_DEPLOYMENT.match(path)
    if match:
        api, handler = _OPENAI[match["tail"]]
        return Route("azure", api, handler, deployment=match["deployment"])
    match = _AZURE_V1.match(path)
    if match:
        api, handler = _OPENAI[match["tail"]]
        return Route("azure", api, handler)
    tail = path[4:] if path.startswith("/v1/") else path.lstrip("/")
    if tail in _ANTHROPIC:
        api, handler = _ANTHROPIC[tail]
        return Route("anthropic", api, handler)
    if tail in _OPENAI:
        api, handler = _OPENAI[tail]
        return Route("openai", api, handler)
    return None


def guess_provider(path: str) -> str:
    """Whose error shape a request for an unknown path gets."""
    if path.startswith(("/v1beta", "/v1alpha", "/v1beta1")) or ":" in path:
        return "gemini"
    if path.startswith("/openai/"):
        return "azure"
    return "openai"
