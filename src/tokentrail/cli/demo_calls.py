"""The workload `tokentrail demo` runs: a small product's day, through the real `openai` and
`anthropic` clients pointed at the mock provider, with tokentrail's automatic instrumentation
recording every call.

Several users, tenants and features (`tokentrail.attribution`), a long support system prompt
repeated so the prompt cache hits (OpenAI automatic caching, Anthropic `cache_control`), a
stream from each SDK, a reasoning model, an embedding batch, a call retried after a 429, a call
failing after retries, a model nobody priced (recorded unpriced, never $0), an OCR job logged
with `log_ocr_usage`, and an LLM-judge evaluation attached to a call through the collector.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tokentrail import testing
from tokentrail.mockprovider import MockProvider
from tokentrail.tracking import attribution, log_ocr_usage

# A support-bot policy long enough (~1,900 tokens) for both providers' prompt caches.
_POLICY = (
    "Refunds are granted within 30 days of purchase when the item is unused. "
    "Shipping to the EU takes 3 to 5 business days; express shipping takes 1 to 2. "
    "Never promise a delivery date that the carrier has not confirmed. "
    "Escalate to a human when the customer mentions legal action, a safety issue or a chargeback. "
)
SUPPORT_SYSTEM = "You are Acme's support assistant. Answer briefly and cite the policy.\n" + _POLICY * 22
JUDGE_SYSTEM = "You grade answers for relevancy from 0 to 1. Reply with a score and one sentence."

SUPPORT_QUESTIONS: tuple[tuple[str, str, str], ...] = (
    # (user, tenant, question)
    ("alice", "acme", "Can I return shoes I wore once?"),
    ("bob", "acme", "How long does express shipping to Berlin take?"),
    ("alice", "acme", "My parcel is late, can you promise it arrives Friday?"),
    ("carol", "globex", "I want a refund for an unopened blender bought 10 days ago."),
)
DOCUMENTS = (
    "Acme blender B-200: 900 W, 1.5 l jar, two-year warranty.",
    "Acme kettle K-12: 2 kW, auto shut-off, limescale filter.",
    "Returns policy: 30 days, unused items, original packaging.",
)


@dataclass(slots=True)
class Workload:
    """What the run did, for the summary the demo prints."""

    errors_seen: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def run_workload(openai_client: Any, anthropic_client: Any, mock: MockProvider, *, openai_errors: Any) -> Workload:
    """Every step of the demo's workload; `openai_errors` is the `openai` module (its error types)."""
    done = Workload()
    _support_bot(openai_client, anthropic_client)
    _search(openai_client)
    _summarizer(openai_client, anthropic_client)
    _planner(openai_client)
    _failures(openai_client, mock, openai_errors, done)
    _ocr()
    return done


def _support_bot(openai_client: Any, anthropic_client: Any) -> None:
    # the same long system prompt on every turn: from the second call on, both caches hit
    for user, tenant, question in SUPPORT_QUESTIONS:
        with attribution(user_id=user, tenant_id=tenant, feature="support-bot", session_id=f"{user}-chat"):
            openai_client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "system", "content": SUPPORT_SYSTEM}, {"role": "user", "content": question}],
            )
            anthropic_client.messages.create(
                model="claude-sonnet-4-6",
                max_tokens=400,
                system=[{"type": "text", "text": SUPPORT_SYSTEM, "cache_control": {"type": "ephemeral"}}],
                messages=[{"role": "user", "content": question}],
            )


def _search(openai_client: Any) -> None:
    with attribution(user_id="indexer", tenant_id="globex", feature="search"):
        openai_client.embeddings.create(model="text-embedding-3-small", input=list(DOCUMENTS))
        openai_client.embeddings.create(model="text-embedding-3-small", input="warranty of the blender")
    with attribution(user_id="carol", tenant_id="globex", feature="search"):
        openai_client.chat.completions.create(
            model="gpt-4o",
            messages=[
                {"role": "system", "content": "Answer from these documents:\n" + "\n".join(DOCUMENTS)},
                {"role": "user", "content": "How long is the blender's warranty?"},
            ],
        )


def _summarizer(openai_client: Any, anthropic_client: Any) -> None:
    with attribution(user_id="dave", tenant_id="acme", feature="summarizer"):
        stream = openai_client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Summarize this week's support tickets in three bullets."}],
            stream=True,
            stream_options={"include_usage": True},
        )
        for _chunk in stream:
            pass
        with anthropic_client.messages.stream(
            model="claude-haiku-4-5",
            max_tokens=300,
            messages=[{"role": "user", "content": "Write a two-line summary of the refund policy."}],
        ) as messages:
            for _text in messages.text_stream:
                pass


def _planner(openai_client: Any) -> None:
    with attribution(user_id="erin", tenant_id="acme", feature="planner"):
        openai_client.chat.completions.create(
            model="o4-mini",
            reasoning_effort="medium",
            messages=[{"role": "user", "content": "Plan the rollout of express shipping to Austria."}],
        )
    with attribution(user_id="erin", tenant_id="acme", feature="experiments"):
        # a self-hosted model with no price anywhere: stored as unpriced, never as $0
        openai_client.chat.completions.create(
            model="acme-private-llm-7b", messages=[{"role": "user", "content": "Draft a tagline."}]
        )


def _failures(openai_client: Any, mock: MockProvider, openai_errors: Any, done: Workload) -> None:
    with attribution(user_id="bob", tenant_id="acme", feature="code-review"):
        # one 429, then success: the SDK retries and the record notes the attempt
        mock.fail_next("rate_limit", count=1, provider="openai")
        openai_client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "Review this diff: - x = 1\n+ x = 2"}]
        )
        # 500 on every attempt: the call fails after its retry and is recorded as an error
        mock.fail_next("server_error", count=2, provider="openai")
        try:
            openai_client.with_options(max_retries=1).chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "Review this diff too."}]
            )
        except openai_errors.APIStatusError as exc:
            done.errors_seen.append(f"{type(exc).__name__} {exc.status_code} after a retry")


def _ocr() -> None:
    with attribution(user_id="ops", tenant_id="globex", feature="invoice-ocr"):
        log_ocr_usage("mistral_ai", "mistral-ocr-latest", pages=3, latency_ms=1850.0)


# ---- the evaluation, through the collector's API ----------------------------------------------
def _request(base: str, key: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read()).get("detail")
        except (ValueError, AttributeError, OSError):
            detail = None
        return exc.code, detail


def evaluate_one_answer(
    openai_client: Any, collector_url: str, api_key: str, since: str, flush: Callable[[], object]
) -> str:
    """Grade a stored support-bot answer with an LLM judge (itself a recorded call) and attach
    the result to the call; returns a line for the summary."""
    query = urllib.parse.urlencode({"feature": "support-bot", "limit": 1, "since": since})
    status, page = _request(collector_url, api_key, "GET", f"/v1/calls?{query}")
    if status != 200 or not page or not page.get("calls"):
        return f"evaluation skipped: no support-bot call found (HTTP {status})"
    call_id = page["calls"][0]["id"]
    entry = {"name": "answer-relevancy", "source": "llm_judge", "vendor_name": "DeepEval", "adapter": "DeepEvalAdapter"}
    status, _ = _request(collector_url, api_key, "POST", "/v1/evaluations/catalog", entry)
    if status in (404, 405):
        return "evaluation skipped: this collector has no evaluations API"
    if status not in (200, 201):
        return f"evaluation skipped: the catalog refused the entry (HTTP {status})"
    started = time.perf_counter()
    with attribution(user_id="eval-bot", feature="evaluation"), testing.capture() as judged:
        openai_client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[
                {"role": "system", "content": JUDGE_SYSTEM},
                {"role": "user", "content": "Question: Can I return shoes I wore once?\nAnswer: (the bot's answer)"},
            ],
        )
    elapsed_ms = (time.perf_counter() - started) * 1000.0
    flush()
    result = {
        "evaluation": "answer-relevancy",
        "score": 0.86,
        "passed": True,
        "reason": "Cites the 30-day unused-item rule and declines the worn item.",
        "execution_time_ms": round(elapsed_ms, 3),
        "llm_metadata": judged[0].to_dict() if judged else None,
    }
    status, stored = _request(collector_url, api_key, "POST", f"/v1/calls/{call_id}/evaluations", result)
    if status not in (200, 201):
        return f"evaluation skipped: the collector refused it (HTTP {status}: {stored})"
    cost = (stored or {}).get("evaluation_cost")
    return f"evaluation 'answer-relevancy' (DeepEval, judge gpt-4o-mini{f', ${cost}' if cost else ''}) on {call_id}"


__all__ = ["SUPPORT_SYSTEM", "Workload", "evaluate_one_answer", "run_workload"]
