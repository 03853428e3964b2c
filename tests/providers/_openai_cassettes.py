"""Reading the recorded OpenAI cassettes (vcrpy YAML) and turning bodies into openai SDK objects."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from openai._models import construct_type
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.completion import Completion
from openai.types.responses import Response, ResponseStreamEvent

CASSETTE_DIR = (
    Path(__file__).parents[1]
    / "fixtures"
    / "cassettes"
    / "otel-python-contrib"
    / "instrumentation-genai"
    / "opentelemetry-instrumentation-openai-v2"
    / "tests"
    / "cassettes"
)


@dataclass(frozen=True)
class Recorded:
    """One recorded HTTP exchange: the request JSON and the response status and parsed body."""

    cassette: str
    request: dict[str, Any]
    status: int
    body: Any  # a dict (JSON body) or a list of dicts (SSE stream events)

    @property
    def is_stream(self) -> bool:
        return isinstance(self.body, list)


def parse_sse(text: str) -> list[dict[str, Any]]:
    """Events of an SSE body: blank-line separated, `data:` lines joined, `[DONE]` skipped."""
    events: list[dict[str, Any]] = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        data = "\n".join(line[5:].lstrip() for line in block.split("\n") if line.startswith("data:"))
        if data and data != "[DONE]":
            events.append(json.loads(data))
    return events


def load(name: str) -> list[Recorded]:
    """Every interaction of one cassette file (name without `.yaml`)."""
    raw = yaml.safe_load((CASSETTE_DIR / f"{name}.yaml").read_text(encoding="utf-8"))
    out: list[Recorded] = []
    for interaction in raw["interactions"]:
        response = interaction["response"]
        text = response["body"]["string"]
        body: Any = json.loads(text) if text.lstrip().startswith("{") else parse_sse(text)
        request_body = interaction["request"].get("body") or "{}"
        out.append(Recorded(name, json.loads(request_body), int(response["status"]["code"]), body))
    return out


def cassette_names() -> list[str]:
    return sorted(path.stem for path in CASSETTE_DIR.glob("*.yaml"))


def to_sdk(kind: str, value: dict[str, Any]) -> Any:
    """Build the openai SDK object the client would return for `value`.

    `construct_type` is the SDK's own response parser (it does not validate, so bodies recorded
    before a field became required, like Responses `cache_write_tokens`, still load as the
    client loads them). Chat and embeddings bodies are additionally strictly validated.
    """
    strict = {
        "chat": ChatCompletion,
        "chunk": ChatCompletionChunk,
        "embeddings": CreateEmbeddingResponse,
        "completion": Completion,
    }
    lenient = {"response": Response, "event": ResponseStreamEvent, "azure_chunk": ChatCompletionChunk}
    if kind in strict:
        return strict[kind].model_validate(value)
    return construct_type(type_=lenient[kind], value=value)
