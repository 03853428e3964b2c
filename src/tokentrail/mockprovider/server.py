"""The HTTP server: `MockProvider(port=0).start()` in-process, or `serve_forever()` for the CLI.

Built on the standard library's `ThreadingHTTPServer` (one thread per connection, HTTP/1.1
keep-alive, Nagle off): no dependency beyond the base install, starts in about a millisecond,
never shares an event loop with the code under test (sync, asyncio and trio clients all work),
and gives exact control over chunked SSE framing and the per-token pacing of streams.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tokentrail.core import ValidationError
from tokentrail.mockprovider.config import MockConfig, RequestOptions, error_kind
from tokentrail.mockprovider.errors import error_reply
from tokentrail.mockprovider.exchange import Context, MockError, MockRequest, Reply, StreamReply, json_reply
from tokentrail.mockprovider.headers import BASE62, anthropic_request_id, openai_request_id
from tokentrail.mockprovider.routes import Route, guess_provider, resolve
from tokentrail.mockprovider.state import MockCall, MockState

log = logging.getLogger("tokentrail.mockprovider")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4320
_MAX_BODY = 64 * 1024 * 1024


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # idle keep-alive connections must not hold up stop()

    def __init__(self, address: tuple[str, int], provider: MockProvider) -> None:
        self.provider = provider
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "tokentrail-mock/1"
    sys_version = ""
    disable_nagle_algorithm = True  # small SSE writes go out at once
    timeout = 300  # an idle keep-alive connection is closed after this
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.connections_lock:
                self.server.connections.discard(self.connection)

    def do_POST(self) -> None:
        self.server.provider._serve(self)

    do_GET = do_POST
    do_PUT = do_POST
    do_DELETE = do_POST

    def log_message(self, format: str, *args: Any) -> None:  # the provider logs (without headers)
        return


class MockProvider:
    """A local server speaking the OpenAI, Azure OpenAI, Anthropic and Gemini wire formats.

    >>> with MockProvider(port=0, latency_ms=5) as mock:
    ...     client = openai.OpenAI(base_url=mock.openai_base_url, api_key="test")

    Settings are `MockConfig` fields, passed as keyword arguments or as `config=`.
    """

    def __init__(
        self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *, config: MockConfig | None = None, **settings: Any
    ) -> None:
        base = config or MockConfig()
        self._state = MockState(base.with_changes(**settings) if settings else base)
        self._host = host
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()  # wakes paced streams and latency sleeps on stop
        self._serving = threading.Event()

    # ---- lifecycle --------------------------------------------------------------------------
    def start(self) -> MockProvider:
        """Bind and serve on a background thread; returns self (`.url` is then known)."""
        if self._serving.is_set():
            raise RuntimeError("the mock provider is already running")
        if self._server is None:
            self.bind()
        self._serving.set()  # before the thread runs, so an immediate stop() still shuts it down
        self._thread = threading.Thread(target=self._run, name="tokentrail-mock-provider", daemon=True)
        self._thread.start()
        return self

    def bind(self) -> None:
        """Open the listening socket (`start` and `serve_forever` do it when needed)."""
        if self._server is not None:
            raise RuntimeError("the mock provider is already bound")
        self._stopping.clear()
        self._server = _Server((self._host, self._port), self)

    def serve_forever(self) -> None:
        """Serve on this thread until `stop()` from another thread or KeyboardInterrupt (the CLI)."""
        if self._server is None:
            self.bind()
        self._serving.set()
        try:
            self._run()
        finally:
            self._stopping.set()
            self._close()

    def _run(self) -> None:
        server = self._server
        try:
            if server is not None:
                server.serve_forever(poll_interval=0.05)  # stop() returns within 50 ms
        finally:
            self._serving.clear()

    def stop(self) -> None:
        """Stop serving, end open connections and streams, free the port. Idempotent."""
        server = self._server
        if server is None:
            return
        self._stopping.set()
        if self._serving.is_set():
            server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._close()

    def _close(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        with server.connections_lock:
            open_connections = list(server.connections)
        for connection in open_connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)
        server.server_close()

    def __enter__(self) -> MockProvider:
        return self if self._serving.is_set() else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- addresses --------------------------------------------------------------------------
    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        if self._server is None:
            return self._port
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT`: Anthropic's and Gemini's base URL, and Azure's endpoint."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"

    # ---- control ----------------------------------------------------------------------------
    @property
    def config(self) -> MockConfig:
        return self._state.config

    def configure(self, **changes: Any) -> MockConfig:
        """Change settings while running (e.g. `configure(latency_ms=50)`)."""
        self._state.config = self._state.config.with_changes(**changes)
        return self._state.config

    def fail_next(self, error: str = "rate_limit", count: int = 1, provider: str | None = None) -> None:
        """Answer the next `count` requests (of `provider`: openai, azure, anthropic, gemini;
        any when None) with `error` (a kind such as `rate_limit`, or a status like `529`)."""
        if provider is not None and provider not in ("openai", "azure", "anthropic", "gemini"):
            raise ValidationError(
                "provider", f"unknown provider {provider!r}; expected openai, azure, anthropic or gemini"
            )
        self._state.errors.fail_next(error_kind(error), count, provider)

    @property
    def calls(self) -> list[MockCall]:
        """Every answered request, oldest first (the last 10,000)."""
        return self._state.calls()

    def reset(self) -> None:
        """Forget cached prompts, rate-limit usage, queued errors and the call log."""
        self._state.reset()

    # ---- one request --------------------------------------------------------------------------
    def _serve(self, handler: _Handler) -> None:
        started = time.monotonic()
        parts = urlsplit(handler.path)
        path = parts.path
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        headers = {key.lower(): value for key, value in handler.headers.items()}
        try:
            raw = _read_body(handler, headers)
        except ValueError as exc:
            handler.close_connection = True
            self._write(handler, json_reply({"error": {"message": str(exc)}}, status=400))
            return
        if path == "/health" or path.startswith("/mock/"):
            self._write(handler, self._admin(handler.command, path, raw))
            return
        route = resolve(path) if handler.command == "POST" else None
        if route is None:
            request = MockRequest(handler.command, path, query, headers, None, guess_provider(path), "unknown", "")
            request.request_id = self._request_id(request.provider)
            message = f"Invalid URL ({handler.command} {path})"
            self._write(handler, error_reply(request, MockError("not_found", message), 0))
            return
        request = self._request(handler.command, path, query, headers, raw, route)
        reply, options = self._answer(request, route)
        if options.latency_ms and not self._pause(options.latency_ms / 1000):
            return
        self._write(handler, reply, options.token_latency_ms / 1000)
        status = reply.status
        log.info("%s %s %s %.1fms", handler.command, path, status, (time.monotonic() - started) * 1000)

    def _answer(self, request: MockRequest, route: Route) -> tuple[Reply | StreamReply, RequestOptions]:
        """The reply to a provider request (an error in the provider's shape when it fails),
        with the options in force; every outcome goes into the call log."""
        config = self._state.config
        options = RequestOptions.from_headers(config, {})
        body = request.body if isinstance(request.body, dict) else {}
        stream = bool(body.get("stream")) or route.api == "streamGenerateContent"
        try:
            options = RequestOptions.from_headers(config, request.headers)
            if not isinstance(request.body, dict):
                raise MockError("bad_request", "We could not parse the JSON body of your request.")
            if not request.model:
                raise MockError("bad_request", "you must provide a model parameter", param="model")
            kind = options.forced_error or self._state.errors.draw(
                route.provider, options.error_rate, config.error_kinds
            )
            if kind is not None:
                raise MockError(kind, retry_after_s=options.retry_after_ms / 1000)
            reply = route.handler(request, Context(self._state, options, request))
        except Exception as exc:  # every failure becomes an answer in the provider's error shape
            if isinstance(exc, ValidationError):
                error = MockError("bad_request", str(exc))
            elif isinstance(exc, MockError):
                error = exc
            else:  # a request the mock cannot make sense of: say so and keep serving
                log.warning("mock provider could not answer %s", request.path, exc_info=True)
                error = MockError("bad_request", f"the mock could not process this request: {exc!r}")
            retry = error.retry_after_s if error.retry_after_s is not None else options.retry_after_ms / 1000
            reply = error_reply(request, error, retry)
            call = MockCall(
                route.provider, route.api, request.model, reply.status, stream, request.request_id, None, error.kind
            )
        else:
            call = MockCall(route.provider, route.api, request.model, 200, stream, request.request_id, reply.usage)
        self._state.record(call)
        return reply, options

    def _request(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], raw: bytes, route: Route
    ) -> MockRequest:
        try:
            body: Any = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        model = route.model
        if model is None and isinstance(body, dict) and isinstance(body.get("model"), str):
            model = body["model"]
        if route.provider == "azure":
            deployment = route.deployment or model or ""
            model = self._state.config.azure_deployments.get(deployment, model or deployment)
        request = MockRequest(method, path, query, headers, body, route.provider, route.api, model or "")
        request.deployment = route.deployment
        request.request_id = self._request_id(route.provider)
        return request

    def _request_id(self, provider: str) -> str:
        if provider == "anthropic":
            return anthropic_request_id(self._state.new_id(20, BASE62))
        if provider == "azure":
            raw = self._state.new_id(32)
            return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"
        if provider == "gemini":
            return ""
        return openai_request_id(self._state.new_id(32))

    def _admin(self, method: str, path: str, raw: bytes) -> Reply:
        if path == "/health":
            return json_reply({"status": "ok", "providers": ["openai", "azure", "anthropic", "gemini"]})
        if path == "/mock/calls" and method == "GET":
            return json_reply({"calls": [call.to_dict() for call in self.calls]})
        if path == "/mock/config" and method == "GET":
            config = self.config
            fields = {name: getattr(config, name) for name in config.__dataclass_fields__}
            fields["azure_deployments"] = dict(config.azure_deployments)
            fields["error_kinds"] = list(config.error_kinds)
            return json_reply(fields)
        if path == "/mock/reset" and method == "POST":
            self.reset()
            return json_reply({"status": "reset"})
        if path == "/mock/fail-next" and method == "POST":
            try:
                spec = json.loads(raw) if raw else {}
                if not isinstance(spec, dict):
                    raise ValidationError("body", "must be a JSON object")
                count = spec.get("count", 1)
                if not isinstance(count, int) or isinstance(count, bool) or count < 1:
                    raise ValidationError("count", f"must be a positive integer, got {count!r}")
                self.fail_next(str(spec.get("error", "rate_limit")), count, spec.get("provider"))
            except (ValueError, ValidationError) as exc:
                return json_reply({"error": {"message": str(exc)}}, status=400)
            return json_reply({"status": "queued"})
        return json_reply({"error": {"message": f"unknown mock control endpoint {method} {path}"}}, status=404)

    # ---- writing ----------------------------------------------------------------------------
    def _pause(self, seconds: float) -> bool:
        """Sleep unless the server is stopping; False when it is."""
        if seconds <= 0:
            return not self._stopping.is_set()
        return not self._stopping.wait(seconds)

    def _write(self, handler: _Handler, reply: Reply | StreamReply, per_token_s: float = 0.0) -> None:
        try:
            if isinstance(reply, StreamReply):
                self._write_stream(handler, reply, per_token_s)
                return
            if per_token_s and reply.output_tokens and not self._pause(per_token_s * reply.output_tokens):
                return
            handler.send_response(reply.status)
            for name, value in reply.headers:
                handler.send_header(name, value)
            handler.send_header("Content-Type", reply.content_type)
            handler.send_header("Content-Length", str(len(reply.body)))
            handler.end_headers()
            handler.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError):
            handler.close_connection = True  # the client went away

    def _write_stream(self, handler: _Handler, reply: StreamReply, per_token_s: float) -> None:
        handler.send_response(reply.status)
        for name, value in reply.headers:
            handler.send_header(name, value)
        handler.send_header("Content-Type", reply.content_type)
        handler.send_header("Cache-Control", "no-cache")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        events: Iterator[tuple[bytes, int]] = reply.events
        try:
            for data, tokens in events:
                if per_token_s and tokens and not self._pause(per_token_s * tokens):
                    handler.close_connection = True
                    return
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            handler.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError):
            handler.close_connection = True
        except Exception:  # a broken event generator: cut the stream (the client sees it end early)
            log.warning("mock provider stream failed", exc_info=True)
            handler.close_connection = True


def _read_body(handler: _Handler, headers: dict[str, str]) -> bytes:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks: list[bytes] = []
        size = 0
        while True:
            line = handler.rfile.readline(65537)
            length = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if length == 0:
                while handler.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            size += length
            if size > _MAX_BODY:
                raise ValueError("request body too large")
            chunks.append(handler.rfile.read(length))
            handler.rfile.readline(65537)
    length_header = headers.get("content-length")
    if not length_header:
        return b""
    length = int(length_header)
    if length < 0 or length > _MAX_BODY:
        raise ValueError("request body too large")
    return handler.rfile.read(length)
