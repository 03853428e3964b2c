"""Deterministic response content: lorem text, JSON for a requested schema, embedding vectors.

Everything is derived from a seed string (the mock's seed, the model and the prompt), so the
same request always gets the same answer and tests can rely on it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import random
import re
import struct
from dataclasses import dataclass
from typing import Any

from tokentrail.mockprovider.tokens import CHARS_PER_TOKEN, count_tokens

_LOREM = (
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore "
    "et dolore magna aliqua enim ad minim veniam quis nostrud exercitation ullamco laboris nisi aliquip "
    "ex ea commodo consequat duis aute irure in reprehenderit voluptate velit esse cillum fugiat nulla "
    "pariatur excepteur sint occaecat cupidatat non proident sunt culpa qui officia deserunt mollit anim "
    "id est laborum"
)
_WORDS = tuple(_LOREM.split())

# Reasoning tokens a reasoning model spends per effort level (multiples of 64, like the
# recordings); `None` (not requested) means the provider default, medium.
REASONING_BY_EFFORT: dict[str, int] = {
    "none": 0,
    "minimal": 0,
    "low": 64,
    "medium": 192,
    "high": 512,
    "xhigh": 1024,
}
DEFAULT_EFFORT = "medium"


def reasoning_for(effort: str | None) -> int:
    """Reasoning tokens for an effort level; unknown levels count as the default."""
    if isinstance(effort, str) and effort.lower() in REASONING_BY_EFFORT:
        return REASONING_BY_EFFORT[effort.lower()]
    return REASONING_BY_EFFORT[DEFAULT_EFFORT]


def rng_for(*material: object) -> random.Random:
    digest = hashlib.sha256("\x1d".join(str(m) for m in material).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def lorem(rng: random.Random, min_chars: int) -> str:
    """Sentences of lorem words, at least `min_chars` long."""
    sentences: list[str] = []
    length = 0
    while length < min_chars:
        words = [rng.choice(_WORDS) for _ in range(rng.randint(5, 12))]
        sentence = " ".join(words).capitalize() + "."
        sentences.append(sentence)
        length += len(sentence) + 1
    return " ".join(sentences)


def natural_length(rng: random.Random) -> int:
    """Visible output length (tokens) of an answer nobody constrained: 12 to 47."""
    return 12 + rng.randrange(36)


@dataclass(frozen=True, slots=True)
class Completion:
    """One generated answer: visible text plus hidden reasoning, within the token limit."""

    text: str
    reasoning_tokens: int
    truncated: bool  # the limit cut it short (finish reason `length` / `max_tokens`)

    @property
    def text_tokens(self) -> int:
        return count_tokens(self.text)

    @property
    def output_tokens(self) -> int:
        return self.text_tokens + self.reasoning_tokens


def complete(
    *material: object,
    limit: int | None,
    reasoning: int = 0,
    exact_tokens: int | None = None,
    schema: Any = None,
    json_mode: bool = False,
) -> Completion:
    """Generate an answer. `limit` (max tokens) covers reasoning and visible text together, as
    OpenAI's `max_completion_tokens`, Anthropic's `max_tokens` with thinking and Gemini's
    `maxOutputTokens` do; reasoning is spent first."""
    rng = rng_for(*material)
    if limit is not None and reasoning >= limit:
        return Completion("", limit, True)
    if schema is not None or json_mode:
        text = json.dumps(instance_of(schema if schema is not None else _FREE_OBJECT, rng), ensure_ascii=False)
    else:
        tokens = exact_tokens if exact_tokens is not None else natural_length(rng)
        text = lorem(rng, tokens * CHARS_PER_TOKEN)
        if exact_tokens is not None:
            text = text[: tokens * CHARS_PER_TOKEN]
            if text.endswith(" "):  # keep the exact length without a dangling space
                text = text[:-1] + "."
    budget = None if limit is None else limit - reasoning
    if budget is not None and count_tokens(text) > budget:
        return Completion(text[: budget * CHARS_PER_TOKEN], reasoning, True)
    return Completion(text, reasoning, False)


def pieces(text: str) -> list[str]:
    """Stream deltas: one word each, with its leading whitespace (they join back to `text`)."""
    found = re.findall(r"\s*\S+", text)
    tail = text[len("".join(found)) :]
    if tail:
        found.append(tail)
    return found


# ---- JSON for a requested schema -----------------------------------------------------------
_FREE_OBJECT: dict[str, Any] = {
    "type": "object",
    "properties": {"answer": {"type": "string"}, "confidence": {"type": "number"}},
}


def instance_of(schema: Any, rng: random.Random, root: Any = None, depth: int = 0) -> Any:
    """A value valid for a (JSON Schema or Gemini OpenAPI-subset) schema: `$ref`/`$defs`,
    `anyOf`/`oneOf`, `enum`/`const`, objects (every property), arrays (one or two items),
    strings (formats date, date-time, email, uri), numbers, integers, booleans, null."""
    root = schema if root is None else root
    if not isinstance(schema, dict) or depth > 12:
        return None
    if "$ref" in schema:
        return instance_of(_resolve(root, schema["$ref"]), rng, root, depth + 1)
    for key in ("const",):
        if key in schema:
            return schema[key]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[rng.randrange(len(enum))]
    for key in ("anyOf", "oneOf", "allOf", "any_of"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            usable = [o for o in options if not (isinstance(o, dict) and _type_of(o) == "null")] or options
            return instance_of(usable[0], rng, root, depth + 1)
    kind = _type_of(schema)
    if kind == "object" or (kind is None and "properties" in schema):
        properties = schema.get("properties") or {}
        return {name: instance_of(sub, rng, root, depth + 1) for name, sub in properties.items()}
    if kind == "array":
        count = max(1, int(schema.get("minItems", schema.get("min_items", 1)) or 1))
        return [instance_of(schema.get("items") or {"type": "string"}, rng, root, depth + 1) for _ in range(count)]
    if kind == "integer":
        return int(schema.get("minimum", 0)) + rng.randrange(100)
    if kind == "number":
        return round(float(schema.get("minimum", 0)) + rng.random() * 100, 2)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    return _string(schema, rng)


def _type_of(schema: dict[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if str(k).lower() != "null"), None)
    return kind.lower() if isinstance(kind, str) else None


def _string(schema: dict[str, Any], rng: random.Random) -> str:
    fmt = schema.get("format")
    if fmt == "date-time":
        return "2025-01-01T00:00:00Z"
    if fmt == "date":
        return "2025-01-01"
    if fmt == "email":
        return "user@example.com"
    if fmt in ("uri", "url"):
        return "https://example.com/"
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 4)))


def _resolve(root: Any, ref: Any) -> Any:
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return {}
    node = root
    for key in ref[2:].split("/"):
        if not isinstance(node, dict):
            return {}
        node = node.get(key.replace("~1", "/").replace("~0", "~"))
    return node


# ---- embeddings ----------------------------------------------------------------------------
def embedding(text: str, dimensions: int, seed: int) -> list[float]:
    """A unit-length vector determined by the text (and the seed)."""
    rng = rng_for(seed, "embedding", text)
    values = [rng.gauss(0.0, 1.0) for _ in range(dimensions)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [round(v / norm, 8) for v in values]


def float32_base64(values: list[float]) -> str:
    """OpenAI's `encoding_format=base64`: little-endian float32 bytes, base64-encoded."""
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
