"""Deterministic token counting and prompt-prefix hashing.

The mock has no tokenizer: a text costs `ceil(len(text) / 4)` tokens (about 4 characters per
token, as OpenAI's rule of thumb), so a test can predict every count from its own strings. A
prompt is an ordered list of `Part`s (tool definitions, system text, message text, ...); each
part is counted on its own and the prompt costs the sum. Prompt caching compares prefixes of
that part sequence, hashed at token offsets ("boundaries").
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

CHARS_PER_TOKEN = 4


def count_tokens(text: str) -> int:
    """Tokens the mock bills for `text`: ceil(characters / 4); the empty string costs 0."""
    return -(-len(text) // CHARS_PER_TOKEN)


@dataclass(frozen=True, slots=True)
class Part:
    """One countable piece of a prompt, with the cache breakpoint it carries (Anthropic)."""

    text: str
    cache_ttl: str | None = None  # "5m" or "1h" when the block has `cache_control`

    @property
    def tokens(self) -> int:
        return count_tokens(self.text)


def as_text(value: Any) -> str:
    """A stable text form of a non-text part (tool schema, image reference, tool call)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def prompt_tokens(parts: Sequence[Part]) -> int:
    return sum(part.tokens for part in parts)


def prompt_seed(parts: Iterable[Part]) -> str:
    """The text a response is derived from (the whole prompt, in order)."""
    return "\x1e".join(part.text for part in parts)


def prefix_hashes(parts: Sequence[Part], boundaries: Sequence[int]) -> dict[int, bytes]:
    """Digest of the prompt prefix ending at each token offset in `boundaries` (ascending).

    A boundary inside a part cuts it at `4 * tokens` characters; parts are joined by a
    separator byte so that moving text between parts changes the hash.
    """
    out: dict[int, bytes] = {}
    if not boundaries:
        return out
    hasher = hashlib.blake2b(digest_size=16)
    pending = iter(sorted(boundaries))
    target = next(pending, None)
    start = 0  # token offset where the current part begins
    for part in parts:
        text = part.text
        end = start + part.tokens
        fed = 0  # characters of this part already hashed
        while target is not None and target <= end:
            cut = min(len(text), (target - start) * CHARS_PER_TOKEN)
            hasher.update(text[fed:cut].encode())
            fed = cut
            out[target] = hasher.copy().digest()
            target = next(pending, None)
        hasher.update(text[fed:].encode())
        hasher.update(b"\x1f")
        start = end
        if target is None:
            break
    return out


def block_boundaries(total: int, minimum: int, step: int) -> list[int]:
    """OpenAI-style cache boundaries: `minimum`, then every `step` tokens up to `total`."""
    if total < minimum:
        return []
    return list(range(minimum, total + 1, step))


def breakpoint_boundaries(parts: Sequence[Part], minimum: int) -> list[tuple[int, str]]:
    """Anthropic-style cache boundaries: the end of every part marked with `cache_control`
    whose prefix reaches `minimum` tokens, with the TTL of its mark."""
    out: list[tuple[int, str]] = []
    offset = 0
    for part in parts:
        offset += part.tokens
        if part.cache_ttl is not None and offset >= minimum:
            out.append((offset, part.cache_ttl))
    return out
