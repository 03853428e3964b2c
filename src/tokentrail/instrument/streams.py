"""Streams: the caller gets an object that behaves exactly like the SDK's stream, and the call
is recorded once — when the stream is exhausted, closed, left early (marked partial) or fails.

Nothing is buffered: each chunk goes to the plug-in's `StreamState.feed` (which keeps only what
it needs, e.g. the last usage block) and straight on to the caller. Per chunk the engine adds
one generator step, a `feed` call and, until the first content arrives, an `is_content` check.

SDK stream objects (the OpenAI/Anthropic `Stream` and `AsyncStream`) are proxied by an
instance of a subclass of their own class that shares their `__dict__`, so attributes
(`.response`, ...), `isinstance` checks and the SDK's own helpers keep working; plain
generators are wrapped by a generator; anything else by a delegating proxy.
"""

from __future__ import annotations

import contextlib
import inspect
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from types import AsyncGeneratorType, GeneratorType
from typing import Any, Protocol

from tokentrail.instrument.engine import Call
from tokentrail.tracking.guard import guard, record_internal_error, reraise_enabled


class StreamState(Protocol):
    """What a plug-in keeps while a stream runs. `hide` (may be None) names chunks the caller
    must not see, such as a usage chunk tokentrail asked for on the caller's behalf."""

    hide: Callable[[Any], bool] | None

    def feed(self, chunk: Any) -> None: ...

    def is_content(self, chunk: Any) -> bool:
        """True for the first chunk that carries generated output (time to first token)."""
        ...

    def finish(self, call: Call, *, partial: bool) -> None:
        """Record usage and response metadata from what was seen (`partial`: the stream ended early)."""
        ...


def _ignore(chunk: Any) -> None:
    return None


class StreamTracking:
    """The bookkeeping of one tracked stream; `end` records the call exactly once."""

    __slots__ = ("call", "done", "feed", "hide", "owner", "state")

    def __init__(self, call: Call, state: StreamState) -> None:
        self.call = call
        self.state = state
        self.feed: Callable[[Any], None] = state.feed
        self.hide = getattr(state, "hide", None)
        self.done = False
        self.owner = 0  # id() of the proxy handed to the caller: only its collection ends the call

    def first(self, chunk: Any) -> bool:
        """Whether `chunk` is the first with content; marks the time to first token then."""
        try:
            hit = bool(self.state.is_content(chunk))
        except Exception as exc:
            self._internal("instrument.stream.is_content", exc)
            return True  # stop checking
        if hit:
            self.call.tracker.set_time_to_first_token()
        return hit

    def feed_failed(self, exc: Exception) -> Callable[[Any], None]:
        """`feed` raised: stop feeding this stream (the chunk still reaches the caller)."""
        self.feed = _ignore
        self._internal("instrument.stream.feed", exc)
        return _ignore

    def hidden(self, chunk: Any) -> bool:
        hide = self.hide
        if hide is None:
            return False
        try:
            return bool(hide(chunk))
        except Exception as exc:
            self.hide = None
            self._internal("instrument.stream.hide", exc)
            return False

    def step(self, chunk: Any, waiting: bool) -> tuple[bool, bool]:
        """One chunk through the slow path (`__next__`): (still waiting for content, hidden)."""
        if waiting:
            waiting = not self.first(chunk)
        try:
            self.feed(chunk)
        except Exception as exc:
            self.feed_failed(exc)
        return waiting, self.hidden(chunk)

    def end(self, exc: BaseException | None, *, partial: bool) -> None:
        if self.done:
            return
        self.done = True
        call = self.call
        partial = partial and exc is None
        with guard("instrument.stream.finish"):
            self.state.finish(call, partial=partial)
            if partial:
                call.tracker.set_provider_specific(partial=True)
        call.tracker.finish(exc)

    def _internal(self, where: str, exc: Exception) -> None:
        record_internal_error(where, exc)
        if reraise_enabled():
            raise exc


def iterate(
    tt: StreamTracking, source: Iterator[Any], *, close_source: bool = False, owner: Any = None
) -> Iterator[Any]:
    """Yield `source`'s chunks, feeding each to the stream state on the way. `owner` (the
    proxy) is kept alive while the loop runs, so its collection cannot end the call early."""
    feed = tt.feed
    hide = tt.hide
    waiting = True
    try:
        for chunk in source:
            if waiting:
                waiting = not tt.first(chunk)
            try:
                feed(chunk)
            except Exception as exc:
                feed = tt.feed_failed(exc)
            if hide is not None and tt.hidden(chunk):
                continue
            yield chunk
    except GeneratorExit:
        tt.end(None, partial=True)  # the caller left the loop early
        if close_source:
            close = getattr(source, "close", None)
            if close is not None:
                close()
        raise
    except BaseException as exc:
        tt.end(exc, partial=True)
        raise
    tt.end(None, partial=False)


async def aiterate(
    tt: StreamTracking, source: AsyncIterator[Any], *, close_source: bool = False, owner: Any = None
) -> AsyncIterator[Any]:
    """The async twin of `iterate`."""
    feed = tt.feed
    hide = tt.hide
    waiting = True
    try:
        async for chunk in source:
            if waiting:
                waiting = not tt.first(chunk)
            try:
                feed(chunk)
            except Exception as exc:
                feed = tt.feed_failed(exc)
            if hide is not None and tt.hidden(chunk):
                continue
            yield chunk
    except GeneratorExit:
        tt.end(None, partial=True)
        if close_source:
            aclose = getattr(source, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(RuntimeError):  # closed from a finalizer: no awaiting there
                    await aclose()
        raise
    except BaseException as exc:
        tt.end(exc, partial=True)
        raise
    tt.end(None, partial=False)


# ---- proxies of SDK stream objects: a subclass sharing the original's __dict__ --------------
class _SyncMixin:
    __slots__ = ("_tt", "_tt_waiting")
    _tt: StreamTracking
    _tt_waiting: bool
    _tt_base: Any

    def __iter__(self) -> Iterator[Any]:
        return iterate(self._tt, self._tt_base.__iter__(self), owner=self)

    def __next__(self) -> Any:
        tt = self._tt
        base_next = self._tt_base.__next__
        while True:
            try:
                chunk = base_next(self)
            except StopIteration:
                tt.end(None, partial=False)
                raise
            except BaseException as exc:
                tt.end(exc, partial=True)
                raise
            self._tt_waiting, hidden = tt.step(chunk, self._tt_waiting)
            if not hidden:
                return chunk

    def __del__(self) -> None:
        tt = getattr(self, "_tt", None)
        # a copy the SDK made of the proxy (Anthropic's Stream iterates over `copy(self)`)
        # shares `_tt` but is not the caller's object: its collection is not the caller leaving
        if tt is not None and not tt.done and tt.owner == id(self):
            tt.end(None, partial=True)  # dropped without being closed
        base_del = getattr(self._tt_base, "__del__", None)
        if base_del is not None:
            base_del(self)


class _IterMixin:
    """Objects that are iterable but not iterators (botocore's `EventStream`)."""

    __slots__ = ("_tt", "_tt_waiting")
    _tt: StreamTracking
    _tt_waiting: bool
    _tt_base: Any

    def __iter__(self) -> Iterator[Any]:
        return iterate(self._tt, self._tt_base.__iter__(self), owner=self)

    __del__ = _SyncMixin.__del__


class _AsyncMixin:
    __slots__ = ("_tt", "_tt_waiting")
    _tt: StreamTracking
    _tt_waiting: bool
    _tt_base: Any

    def __aiter__(self) -> AsyncIterator[Any]:
        return aiterate(self._tt, self._tt_base.__aiter__(self), owner=self)

    async def __anext__(self) -> Any:
        tt = self._tt
        base_anext = self._tt_base.__anext__
        while True:
            try:
                chunk = await base_anext(self)
            except StopAsyncIteration:
                tt.end(None, partial=False)
                raise
            except BaseException as exc:
                tt.end(exc, partial=True)
                raise
            self._tt_waiting, hidden = tt.step(chunk, self._tt_waiting)
            if not hidden:
                return chunk

    __del__ = _SyncMixin.__del__


def _closing(name: str, base_fn: Callable[..., Any]) -> Callable[..., Any]:
    """`close`/`__exit__`-like methods: the SDK's own, then the record (partial if not exhausted)."""
    if inspect.iscoroutinefunction(base_fn):

        async def aclosing(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return await base_fn(self, *args, **kwargs)
            finally:
                self._tt.end(None, partial=True)

        aclosing.__name__ = name
        return aclosing

    def closing(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return base_fn(self, *args, **kwargs)
        finally:
            self._tt.end(None, partial=True)

    closing.__name__ = name
    return closing


_CLOSERS = ("close", "aclose", "__exit__", "__aexit__")
_classes: dict[type, type | None] = {}
_classes_lock = threading.Lock()


def _proxy_class(cls: type) -> type | None:
    found = _classes.get(cls, False)
    if found is not False:
        return found  # type: ignore[return-value]
    with _classes_lock:
        made: type | None = None
        try:
            if hasattr(cls, "__aiter__"):
                mixin: type = _AsyncMixin
            elif hasattr(cls, "__iter__") and hasattr(cls, "__next__"):
                mixin = _SyncMixin
            elif hasattr(cls, "__iter__"):
                mixin = _IterMixin
            else:
                mixin = None  # type: ignore[assignment]
            if mixin is not None:
                namespace: dict[str, Any] = {"__slots__": (), "_tt_base": cls, "__module__": cls.__module__}
                for name in _CLOSERS:
                    base_fn = getattr(cls, name, None)
                    if base_fn is not None and inspect.isfunction(base_fn):
                        namespace[name] = _closing(name, base_fn)
                made = type(cls.__name__, (mixin, cls), namespace)
                made.__qualname__ = cls.__qualname__
        except TypeError:  # slots, final classes, layout conflicts: use the delegating proxy
            made = None
        _classes[cls] = made
        return made


class StreamProxy:
    """Delegating proxy for stream objects that cannot be subclassed."""

    __slots__ = ("__weakref__", "_tt", "_tt_stream", "_tt_waiting")

    def __init__(self, stream: Any, tt: StreamTracking) -> None:
        self._tt_stream = stream
        self._tt = tt
        self._tt_waiting = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tt_stream, name)

    def __iter__(self) -> Iterator[Any]:
        return iterate(self._tt, iter(self._tt_stream), owner=self)

    def __next__(self) -> Any:
        tt = self._tt
        while True:
            try:
                chunk = next(self._tt_stream)
            except StopIteration:
                tt.end(None, partial=False)
                raise
            except BaseException as exc:
                tt.end(exc, partial=True)
                raise
            self._tt_waiting, hidden = tt.step(chunk, self._tt_waiting)
            if not hidden:
                return chunk

    def __aiter__(self) -> AsyncIterator[Any]:
        return aiterate(self._tt, self._tt_stream.__aiter__(), owner=self)

    async def __anext__(self) -> Any:
        tt = self._tt
        while True:
            try:
                chunk = await self._tt_stream.__anext__()
            except StopAsyncIteration:
                tt.end(None, partial=False)
                raise
            except BaseException as exc:
                tt.end(exc, partial=True)
                raise
            self._tt_waiting, hidden = tt.step(chunk, self._tt_waiting)
            if not hidden:
                return chunk

    def close(self) -> Any:
        try:
            return self._tt_stream.close()
        finally:
            self._tt.end(None, partial=True)

    async def aclose(self) -> Any:
        try:
            return await self._tt_stream.aclose()
        finally:
            self._tt.end(None, partial=True)

    def __enter__(self) -> Any:
        self._tt_stream.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> Any:
        try:
            return self._tt_stream.__exit__(*exc_info)
        finally:
            self._tt.end(None, partial=True)

    async def __aenter__(self) -> Any:
        await self._tt_stream.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> Any:
        try:
            return await self._tt_stream.__aexit__(*exc_info)
        finally:
            self._tt.end(None, partial=True)

    def __del__(self) -> None:
        tt = getattr(self, "_tt", None)
        if tt is not None and not tt.done:
            tt.end(None, partial=True)


def track_stream(call: Call, stream: Any, state: StreamState) -> Any:
    """What the caller gets instead of `stream`: the same behaviour, recorded once.

    Marks the call deferred (the engine leaves finishing it to the stream). If no proxy can
    be made the stream itself is returned and the call is finished as it is.
    """
    tt = StreamTracking(call, state)
    proxy: Any
    if isinstance(stream, GeneratorType):
        proxy = iterate(tt, stream, close_source=True)
    elif isinstance(stream, AsyncGeneratorType):
        proxy = aiterate(tt, stream, close_source=True)
    else:
        cls = _proxy_class(type(stream))
        proxy = None
        if cls is not None and hasattr(stream, "__dict__"):
            try:
                proxy = object.__new__(cls)
                proxy.__dict__ = stream.__dict__
            except TypeError:
                proxy = None
            else:
                proxy._tt = tt
                proxy._tt_waiting = True
        if proxy is None:
            proxy = StreamProxy(stream, tt)
        tt.owner = id(proxy)
    call.deferred = True
    return proxy


__all__ = ["StreamProxy", "StreamState", "StreamTracking", "aiterate", "iterate", "track_stream"]
