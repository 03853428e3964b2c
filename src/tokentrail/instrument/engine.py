"""The one patching engine: a provider plug-in says what a call asked for and what came back;
the engine times the call, keeps the host safe, and hands streams to `streams`.

A wrapped SDK method runs as:

    call = plugin.begin(endpoint, instance, args, kwargs)   # request side; starts the tracker
    result = original(*args, **call.kwargs)                 # the SDK, untouched (kwargs may be a copy)
    out = plugin.end(call, result)  /  plugin.fail(call, exc); raise
    # the engine then finishes the record, unless `end` handed a stream to `track_stream`

Every plug-in hook runs under `tracking.guard`: if one raises, the caller still gets exactly
the SDK's result (the same object) or the SDK's own exception. While a call is in flight the
engine's context variable holds it (`current_call()`), so transport-level hooks can add what
they see (HTTP response, retry count) and SDK methods that call each other are recorded once.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from tokentrail.core import ModelOperation
from tokentrail.tracking.guard import guard
from tokentrail.tracking.llm import LLMTracker


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One SDK method a plug-in records: `operation` and `api` (the endpoint family that
    `extract_usage` understands) say what kind of call it is; `options` is the plug-in's own."""

    name: str  # e.g. "openai.chat.completions.create", used in logs
    operation: ModelOperation
    api: str
    options: Mapping[str, Any] = field(default_factory=dict)


class Call:
    """One SDK call in flight. `kwargs` are the arguments the SDK will receive (a plug-in may
    replace them with a changed copy); `http_response` and `attempt` are filled by transport
    hooks; `data` belongs to the plug-in."""

    __slots__ = ("attempt", "data", "deferred", "endpoint", "http_response", "instance", "kwargs", "plugin", "tracker")

    def __init__(
        self, plugin: Plugin, endpoint: Endpoint, instance: Any, kwargs: dict[str, Any], tracker: LLMTracker
    ) -> None:
        self.plugin = plugin
        self.endpoint = endpoint
        self.instance = instance
        self.kwargs = kwargs
        self.tracker = tracker
        self.http_response: Any = None
        self.attempt: int | None = None
        self.data: Any = None
        self.deferred = False  # a stream proxy finishes the record later


class Plugin:
    """A provider's part. Subclasses set `name` and implement the hooks below; see
    docs/instrumentation.md for a worked example."""

    name: str = ""

    def available(self) -> bool:
        """Whether the SDK is installed (it is imported only when patched)."""
        return False

    def patches(self) -> list[Patch]:
        """The methods to patch on the SDK's classes, so every client is covered (`instrument()`)."""
        return []

    def client_patches(self, client: Any, **options: Any) -> list[Patch]:
        """The methods to patch on one client's objects (`wrap_<name>(client, **options)`);
        `options` apply to that client only."""
        raise TypeError(f"{self.name}: wrapping a single client is not supported")

    def begin(self, endpoint: Endpoint, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Call | None:
        """Request side: start a call (`start_call`) and record what the request asks for.
        Returning None leaves this call unrecorded."""
        raise NotImplementedError

    def end(self, call: Call, result: Any) -> Any:
        """Response side: record the result and return what the caller gets — `result`
        itself, or for a stream `track_stream(call, result, state)`."""
        return result

    def fail(self, call: Call, exc: BaseException) -> None:
        """The SDK raised `exc` (it is re-raised unchanged): record what it tells (status, headers)."""

    def configure(self, **options: Any) -> None:
        """Options given to `instrument()` / `wrap_<name>()`; unknown ones are ignored."""


@dataclass(frozen=True, slots=True)
class Patch:
    """Replace `owner.attr` (a class, or one client's object): with a recording wrapper for an
    `endpoint`, or with `hook(original)` for auxiliary patches such as transport hooks."""

    owner: Any
    attr: str
    endpoint: Endpoint | None = None
    hook: Callable[[Callable[..., Any]], Callable[..., Any]] | None = None


_CURRENT: ContextVar[Call | None] = ContextVar("tokentrail_instrumented_call", default=None)
current_call = _CURRENT.get  # the call in flight in this context (transport hooks add to it)


def first_in_call(call: Call, generator: Iterator[Any]) -> Iterator[Any]:
    """`generator`, with `call` in flight while its first item is made.

    A lazy SDK stream (a generator that sends its request on the first `next()`) runs that
    request after the wrapped method has returned; this puts the call back in the context
    for it, so transport hooks (retry counts, headers) still find it. Later items run
    without it: the context is never left set across a `yield`.
    """
    token = _CURRENT.set(call)
    try:
        first = next(generator)
    except StopIteration:
        return
    finally:
        _CURRENT.reset(token)
    yield first
    yield from generator


def start_call(
    plugin: Plugin,
    endpoint: Endpoint,
    instance: Any,
    kwargs: dict[str, Any],
    *,
    provider: str,
    model: str | None,
) -> Call:
    """A started call (timing begins now). Streams outlive the caller's frame, so the tracker
    never becomes the parent span of what runs next in the context."""
    tracker = LLMTracker(provider, model, endpoint.operation)
    tracker.start(push_span=False)
    return Call(plugin, endpoint, instance, kwargs, tracker)


class Switch:
    """Turns one installed wrapper into a pass-through when it cannot be removed (another
    library wrapped it after us) or while it is being removed."""

    __slots__ = ("on",)

    def __init__(self) -> None:
        self.on = True


def _begin(
    plugin: Plugin, endpoint: Endpoint, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Call | None:
    with guard("instrument.begin"):
        return plugin.begin(endpoint, instance, args, kwargs)
    return None


def _end(call: Call, result: Any) -> Any:
    out = result
    with guard("instrument.end"):
        out = call.plugin.end(call, result)
    if out is not result and not call.deferred:
        out = result  # only a tracked stream may stand in for the SDK's object
    if not call.deferred:
        call.tracker.finish()
    return out


def _fail(call: Call, exc: BaseException) -> None:
    with guard("instrument.fail"):
        call.plugin.fail(call, exc)
    call.tracker.finish(exc)


def wrap_method(
    original: Callable[..., Any], endpoint: Endpoint, plugin: Plugin, switch: Switch, bound_to: Any = None
) -> Callable[..., Any]:
    """A recording wrapper of `original`: a function found on a class (the instance is the
    first argument) or, with `bound_to`, a bound method of that object.

    An `async def` original gets an `async def` wrapper. A plain function that returns a
    coroutine (the OpenAI SDK's async methods, behind a validating decorator) keeps its
    synchronous part synchronous: its coroutine is awaited inside a recording one.
    """
    if inspect.iscoroutinefunction(original):

        @functools.wraps(original)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            if not switch.on or _CURRENT.get() is not None:
                return await original(*args, **kwargs)
            instance = bound_to if bound_to is not None else (args[0] if args else None)
            call = _begin(plugin, endpoint, instance, args, kwargs)
            if call is None:
                return await original(*args, **kwargs)
            token = _CURRENT.set(call)
            try:
                result = await original(*args, **call.kwargs)
            except BaseException as exc:
                _CURRENT.reset(token)
                _fail(call, exc)
                raise
            _CURRENT.reset(token)
            return _end(call, result)

        async_wrapper.__tokentrail_original__ = original  # type: ignore[attr-defined]
        return async_wrapper

    returns_coroutine = inspect.iscoroutinefunction(inspect.unwrap(original))

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not switch.on or _CURRENT.get() is not None:
            return original(*args, **kwargs)
        instance = bound_to if bound_to is not None else (args[0] if args else None)
        call = _begin(plugin, endpoint, instance, args, kwargs)
        if call is None:
            return original(*args, **kwargs)
        token = _CURRENT.set(call)
        try:
            result = original(*args, **call.kwargs)
        except BaseException as exc:
            _CURRENT.reset(token)
            _fail(call, exc)
            raise
        _CURRENT.reset(token)
        if returns_coroutine and inspect.isawaitable(result):
            return _awaited(call, result)
        return _end(call, result)

    wrapper.__tokentrail_original__ = original  # type: ignore[attr-defined]
    return wrapper


async def _awaited(call: Call, awaitable: Any) -> Any:
    token = _CURRENT.set(call)
    try:
        result = await awaitable
    except BaseException as exc:
        _CURRENT.reset(token)
        _fail(call, exc)
        raise
    _CURRENT.reset(token)
    return _end(call, result)


def is_wrapper(value: Any) -> bool:
    return hasattr(value, "__tokentrail_original__")


__all__ = [
    "Call",
    "Endpoint",
    "Patch",
    "Plugin",
    "Switch",
    "current_call",
    "first_in_call",
    "is_wrapper",
    "start_call",
    "wrap_method",
]
