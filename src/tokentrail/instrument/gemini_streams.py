"""The stream state of the google-genai plug-in (`generate_content_stream`, sync and async).

Every chunk carries `usage_metadata` as running totals: the last one with counts wins, never
a sum (`providers.gemini`). `feed` keeps references only: the usage block, the last chunk, and
the last chunk with candidates (its finish reason); everything is parsed once, in `finish`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tokentrail.instrument.engine import Call
from tokentrail.providers.gemini import GenerateContentStreamState
from tokentrail.providers.gemini_calls import finish_reasons, output_text, response_facts


class GeminiStreamState:
    __slots__ = ("collect", "hide", "last", "last_candidates", "owner", "texts", "usage")

    def __init__(self, owner: Any, *, collect: bool) -> None:
        self.owner = owner  # the plug-in: records metadata and content at the end
        self.hide: Callable[[Any], bool] | None = None
        self.collect = collect
        self.usage = GenerateContentStreamState()
        self.last: Any = None
        self.last_candidates: Any = None
        self.texts: list[str] = []

    def feed(self, chunk: Any) -> None:
        self.last = chunk
        if chunk.usage_metadata is not None:
            self.usage.feed(chunk)
        if chunk.candidates:
            self.last_candidates = chunk
            if self.collect:
                text = output_text(chunk)
                if text:
                    self.texts.append(text)

    def is_content(self, chunk: Any) -> bool:
        candidates = chunk.candidates
        if not candidates:
            return False
        content = candidates[0].content
        return content is not None and bool(content.parts)

    def finish(self, call: Call, *, partial: bool) -> None:
        usage = self.usage.result()
        if usage is not None:
            call.tracker.usage = usage
        reason = None
        if self.last_candidates is not None:
            reason = finish_reasons(self.last_candidates.candidates)
        self.owner.record_facts(call, response_facts(self.last, reason))
        self.owner.record_attempt(call)
        if self.collect:
            self.owner.record_content(call, "".join(self.texts))


__all__ = ["GeminiStreamState"]
