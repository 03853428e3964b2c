"""The OpenAI wire format apart from usage: which service a base URL names, the request
parameters a call sets, the JSON schema it asks for, and what the response says about itself.

Works on plain values (host/port/path, keyword-argument mappings, SDK objects or parsed JSON),
so it does not depend on the `openai` package. Usage extraction lives in `providers.openai`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tokentrail.core import normalize_provider
from tokentrail.providers._access import get

DEFAULT_COMPATIBLE_PROVIDER = "vllm"

# Hosts of OpenAI-compatible services -> provider name (SPEC §3 names).
HOST_PROVIDERS: dict[str, str] = {
    "api.openai.com": "openai",
    "api.deepseek.com": "deepseek",
    "api.groq.com": "groq",
    "api.together.xyz": "together",
    "api.together.ai": "together",
    "api.mistral.ai": "mistral_ai",
    "api.x.ai": "x_ai",
    "openrouter.ai": "openrouter",
    "api.fireworks.ai": "fireworks",
    "api.perplexity.ai": "perplexity",
}
_AZURE_HOST_SUFFIXES = (".openai.azure.com", ".cognitiveservices.azure.com")
AZURE = "azure.ai.openai"
OLLAMA_PORT = 11434
_DEFAULT_PORTS = {"https": 443, "http": 80, "wss": 443, "ws": 80}


@dataclass(frozen=True, slots=True)
class Service:
    """Who a client talks to: the provider name and the OpenTelemetry `server.*` values."""

    provider: str
    server_address: str | None
    server_port: int | None
    azure: bool = False
    deployment: str | None = None  # an Azure deployment named by the base URL itself


def azure_deployment(path: str | None) -> str | None:
    """The deployment of an Azure OpenAI URL path (`/openai/deployments/{name}/...`), else None."""
    if not path:
        return None
    marker = "/deployments/"
    at = path.find(marker)
    if at < 0:
        return None
    name = path[at + len(marker) :].split("/", 1)[0]
    return name or None


def describe_endpoint(
    scheme: str | None,
    host: str | None,
    port: int | None,
    path: str | None,
    *,
    azure_client: bool = False,
    compatible_provider: str | None = None,
) -> Service:
    """Provider and server of a base URL.

    api.openai.com is `openai`; Azure hosts, `/openai/deployments/...` paths and Azure clients
    are `azure.ai.openai`; the known OpenAI-compatible services are named by host; port 11434
    is Ollama's; anything else (self-hosted vLLM, gateways, local mock servers) takes
    `compatible_provider` (default `vllm`).
    """
    host = (host or "").lower() or None
    if port is None and scheme:
        port = _DEFAULT_PORTS.get(scheme.lower())
    deployment = azure_deployment(path)
    is_azure = (
        azure_client
        or (host is not None and host.endswith(_AZURE_HOST_SUFFIXES))
        or (deployment is not None and "/openai/deployments/" in (path or ""))
    )
    if is_azure:
        provider = AZURE
    elif host in HOST_PROVIDERS:
        provider = HOST_PROVIDERS[host]
    elif port == OLLAMA_PORT:
        provider = "ollama"
    else:
        provider = normalize_provider(compatible_provider or DEFAULT_COMPATIBLE_PROVIDER)
    return Service(provider, host, port, is_azure, deployment if is_azure else None)


# ---- request ------------------------------------------------------------------------------
# SDK keyword -> RequestParameters field (LLMTracker.set_request_params accepts these too)
REQUEST_PARAMETERS: dict[str, str] = {
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "max_completion_tokens": "max_tokens",  # before max_tokens: the current name wins when both are set
    "max_output_tokens": "max_tokens",
    "max_tokens": "max_tokens",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
    "stop": "stop_sequences",
    "seed": "seed",
    "n": "n",
    "stream": "stream",
    "service_tier": "service_tier",
}
_NUMBERS = frozenset({"temperature", "top_p", "frequency_penalty", "presence_penalty"})
_COUNTS = frozenset({"top_k", "max_tokens", "n"})
# request options worth keeping beside the record's parameters (provider_specific.request_params)
EXTRA_PARAMETERS: tuple[str, ...] = ("reasoning_effort", "verbosity", "dimensions", "encoding_format")


def is_unset(value: Any) -> bool:
    """The OpenAI SDK's `NOT_GIVEN` / `omit` sentinels (frameworks pass them explicitly)."""
    return value is None or value.__class__.__name__ in ("NotGiven", "Omit")


def request_parameters(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The record's request parameters set in a call's keyword arguments, by field name.

    Values of the wrong type are left out rather than failing the record: the SDK (or the
    service) is the one to reject them.
    """
    out: dict[str, Any] = {}
    for key, field in REQUEST_PARAMETERS.items():
        value = kwargs.get(key)
        if value is None or is_unset(value):
            continue
        if field in _NUMBERS:
            if value.__class__ is bool or not isinstance(value, int | float) or value != value:
                continue
        elif field in _COUNTS:
            if value.__class__ is bool or not isinstance(value, int) or value < 0:
                continue
        elif field == "seed":
            if value.__class__ is bool or not isinstance(value, int):
                continue
        elif field == "stop_sequences":
            if isinstance(value, str):
                value = [value]
            elif isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
                value = list(value)
            else:
                continue
        elif field == "stream":
            if not isinstance(value, bool):
                continue
        elif not isinstance(value, str):  # service_tier
            continue
        if field == "max_tokens" and field in out:
            continue  # max_completion_tokens and max_tokens both given: the first listed wins
        out[field] = value
    return out


def extra_parameters(kwargs: Mapping[str, Any]) -> dict[str, Any] | None:
    """Request options without a record field (reasoning effort, embedding dimensions, ...)."""
    out: dict[str, Any] | None = None
    for key in EXTRA_PARAMETERS:
        value = kwargs.get(key)
        if value is not None and not is_unset(value) and isinstance(value, str | int | float):
            if out is None:
                out = {}
            out[key] = value
    reasoning = kwargs.get("reasoning")  # Responses API: {"effort": ..., "summary": ...}
    if isinstance(reasoning, Mapping) and isinstance(reasoning.get("effort"), str):
        out = out or {}
        out["reasoning_effort"] = reasoning["effort"]
    return out


def include_usage_requested(kwargs: Mapping[str, Any]) -> bool:
    """Whether a streamed request already asks for the final usage chunk."""
    options = kwargs.get("stream_options")
    return isinstance(options, Mapping) and bool(options.get("include_usage"))


def with_stream_usage(kwargs: dict[str, Any]) -> dict[str, Any]:
    """A copy of `kwargs` whose `stream_options` asks for usage (other options kept)."""
    options = kwargs.get("stream_options")
    merged = dict(options) if isinstance(options, Mapping) else {}
    merged["include_usage"] = True
    return {**kwargs, "stream_options": merged}


def schema_of_format(response_format: Any) -> dict[str, Any] | None:
    """The JSON schema of a `response_format` / Responses `text.format` given as JSON.

    `{"type": "json_schema", "json_schema": {"name":..., "schema": {...}}}` (Chat) and
    `{"type": "json_schema", "name":..., "schema": {...}}` (Responses) give the schema;
    `json_object`, `text` and anything else give None.
    """
    if not isinstance(response_format, Mapping) or response_format.get("type") != "json_schema":
        return None
    inner = response_format.get("json_schema")
    schema = inner.get("schema") if isinstance(inner, Mapping) else response_format.get("schema")
    return dict(schema) if isinstance(schema, Mapping) else None


# ---- response -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ResponseFacts:
    response_id: str | None = None
    model: str | None = None
    finish_reason: str | None = None
    system_fingerprint: str | None = None
    service_tier: str | None = None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _finish_reasons(choices: Any) -> str | None:
    if not isinstance(choices, list | tuple) or not choices:
        return None
    reasons = [r for r in (get(c, "finish_reason") for c in choices) if isinstance(r, str) and r]
    return ",".join(reasons) if reasons else None


def response_facts(response: Any, api: str) -> ResponseFacts:
    """Id, model, finish reason(s), system fingerprint and service tier of one response.

    Chat and legacy completions: `choices[].finish_reason`, joined with commas when there are
    several choices. Responses API: no finish reason exists; the incomplete reason
    (`max_output_tokens`, `content_filter`) or else the `status` stands for it.
    Embeddings have no id.
    """
    if response is None:
        return ResponseFacts()
    if api == "responses":
        finish = _text(get(response, "incomplete_details", "reason")) or _text(get(response, "status"))
        fingerprint = None
    elif api == "embeddings":
        return ResponseFacts(model=_text(get(response, "model")))
    else:
        finish = _finish_reasons(get(response, "choices"))
        fingerprint = _text(get(response, "system_fingerprint"))
    return ResponseFacts(
        response_id=_text(get(response, "id")),
        model=_text(get(response, "model")),
        finish_reason=finish,
        system_fingerprint=fingerprint,
        service_tier=_text(get(response, "service_tier")),
    )


def output_text(response: Any, api: str) -> Any:
    """The generated text of a response, for content capture (None when there is none)."""
    if api == "responses":
        text = get(response, "output_text")
        if isinstance(text, str):
            return text
        parts: list[str] = []
        for item in get(response, "output") or ():
            for piece in get(item, "content") or ():
                value = get(piece, "text")
                if isinstance(value, str):
                    parts.append(value)
        return "".join(parts) or None
    if api == "embeddings":
        return None
    choices = get(response, "choices")
    if not isinstance(choices, list | tuple):
        return None
    texts: list[Any] = []
    for choice in choices:
        message = get(choice, "message")
        if message is not None:
            content = get(message, "content")
            calls = get(message, "tool_calls")
            if calls:
                texts.append({"content": content, "tool_calls": [_tool_call(c) for c in calls]})
            else:
                texts.append(content)
        else:
            texts.append(get(choice, "text"))
    if not texts:
        return None
    return texts[0] if len(texts) == 1 else texts


def _tool_call(call: Any) -> dict[str, Any]:
    return {
        "id": get(call, "id"),
        "name": get(call, "function", "name"),
        "arguments": get(call, "function", "arguments"),
    }


__all__ = [
    "AZURE",
    "DEFAULT_COMPATIBLE_PROVIDER",
    "EXTRA_PARAMETERS",
    "HOST_PROVIDERS",
    "REQUEST_PARAMETERS",
    "ResponseFacts",
    "Service",
    "azure_deployment",
    "describe_endpoint",
    "extra_parameters",
    "include_usage_requested",
    "is_unset",
    "output_text",
    "request_parameters",
    "response_facts",
    "schema_of_format",
    "with_stream_usage",
]
