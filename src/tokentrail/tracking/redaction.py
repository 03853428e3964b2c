"""Captured message content passes through the user's redaction hook before it is recorded."""

from __future__ import annotations

import logging
from typing import Any

from tokentrail.core import Content
from tokentrail.core.settings import Settings

logger = logging.getLogger("tokentrail")


def redacted_content(settings: Settings, messages: Any, result: Any) -> Content | None:
    """The content to record: the redactor's answer, or nothing when the redactor fails.

    A failing redactor must not leak what it was meant to hide, so the content is dropped
    (and the failure logged) rather than recorded unredacted.
    """
    content = Content(messages=messages, result=result)
    redactor = settings.content_redactor
    if redactor is None:
        return content
    try:
        redacted = redactor(content)
    except Exception:
        logger.exception("tokentrail content_redactor failed; the call's content is dropped")
        return None
    if redacted is None or isinstance(redacted, Content):
        return redacted
    logger.error("tokentrail content_redactor returned %s, not Content or None; content dropped", type(redacted))
    return None
