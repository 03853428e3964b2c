"""Webhook delivery: one JSON POST per alert attempt, retried with exponential backoff.

The body is the alert's payload plus `alert_id`; `dedupe_key` is in it too, so a receiver
can drop the rare repeat (an attempt whose answer was lost is retried: at-least-once).
A 2xx answer is success; anything else, a timeout or a connection error is retried until
`max_attempts`, then the alert is marked `failed`. Each outcome is logged.

HTTP client: the standard library's `http.client` (no dependency, no proxies), a new
connection per attempt — alerts are rare.
"""

from __future__ import annotations

import http.client
import json
import logging
import time
from urllib.parse import urlsplit

from tokentrail.server.alerts import store
from tokentrail.server.db.engine import Database

logger = logging.getLogger("tokentrail.alerts")
USER_AGENT = "tokentrail-alerts/1"


def post_json(url: str, body: bytes, timeout: float) -> str | None:
    """POST `body`; None on a 2xx answer, else what went wrong."""
    parts = urlsplit(url)
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    conn = cls(parts.hostname or "", parts.port, timeout=timeout)
    try:
        conn.request(
            "POST",
            path,
            body=body,
            headers={"Content-Type": "application/json", "User-Agent": USER_AGENT, "Connection": "close"},
        )
        response = conn.getresponse()
        answer = response.read(2000)
        if 200 <= response.status < 300:
            return None
        return f"HTTP {response.status}: {answer.decode(errors='replace')[:300]}"
    except (OSError, http.client.HTTPException) as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        conn.close()


def _now() -> int:
    return time.time_ns() // 1000


def deliver_due(
    db: Database,
    *,
    timeout: float,
    max_attempts: int,
    backoff: float,
    backoff_max: float,
    lease: float,
    limit: int = 50,
) -> int:
    """Attempt every pending alert that is due; returns how many attempts were made."""
    with db.read() as conn:
        candidates = store.due(conn, _now(), limit)
    attempts = 0
    for alert_id, seen in candidates:
        with db.write() as conn:
            delivery = store.lease(conn, alert_id, seen, _now() + int(lease * 1_000_000))
        if delivery is None:
            continue  # another sender has it
        body = json.loads(delivery.payload)
        body["alert_id"] = delivery.id
        error = post_json(delivery.webhook_url, json.dumps(body, separators=(",", ":")).encode(), timeout)
        attempts += 1
        done = delivery.attempts + 1
        retry_at = None
        if error is not None and done < max_attempts:
            retry_at = _now() + int(min(backoff * 2 ** (done - 1), backoff_max) * 1_000_000)
        with db.write() as conn:
            status = store.finish_attempt(conn, delivery, error=error, now=_now(), retry_at=retry_at)
        if error is None:
            logger.info("tokentrail alert %d delivered to %s (attempt %d)", alert_id, delivery.webhook_url, done)
        elif status == store.FAILED:
            logger.error(
                "tokentrail alert %d: delivery to %s failed after %d attempts: %s",
                alert_id,
                delivery.webhook_url,
                done,
                error,
            )
        else:
            logger.warning(
                "tokentrail alert %d: delivery to %s failed (attempt %d of %d, retrying): %s",
                alert_id,
                delivery.webhook_url,
                done,
                max_attempts,
                error,
            )
    return attempts


__all__ = ["USER_AGENT", "deliver_due", "post_json"]
