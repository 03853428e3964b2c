"""`tokentrail demo` (and `make demo`): the whole product in a newcomer's first minute.

It starts the mock provider and the collector (in this process, on the embedded SQLite
default `$TOKENTRAIL_HOME/tokentrail.db`, with an admin key), points the SDK's collector sink
at it, instruments the real `openai` and `anthropic` SDKs, runs the workload of `demo_calls`
against the mock, attaches an LLM-judge evaluation, prints what the run cost (read back
through the collector's `/v1/usage`) and the dashboard's login URL, then keeps serving until
Ctrl-C (`--no-serve` exits instead, for tests and CI).
"""

from __future__ import annotations

import importlib
import os
import signal
import socket
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType, ModuleType
from typing import Annotated, Any

import typer

from tokentrail.cli._format import console
from tokentrail.cli._usage_source import Query, RemoteSource, SourceError
from tokentrail.cli.app import app
from tokentrail.cli.demo_calls import Workload, evaluate_one_answer, run_workload
from tokentrail.cli.report import build_report, render_table
from tokentrail.core import MissingExtraError
from tokentrail.core.settings import default_home
from tokentrail.instrument import instrument, instrumented, uninstrument
from tokentrail.mockprovider import MockProvider
from tokentrail.tracking import configure, flush, stats
from tokentrail.tracking.runtime import reset as reset_runtime

try:  # the collector runs in this process: the `server` extra
    import uvicorn
    from fastapi import FastAPI

    from tokentrail.server import auth
    from tokentrail.server.app import create_app
    from tokentrail.server.settings import ServerSettings, sqlite_url

    _SERVER_MISSING: str | None = None
except ImportError:
    _SERVER_MISSING = str(MissingExtraError("server", "tokentrail demo"))
try:  # the dashboard's one-time login URL, when the dashboard is installed
    from tokentrail.server.dashboard.sessions import issue_login_token, login_url
except ImportError:
    issue_login_token = None  # type: ignore[assignment]
    login_url = None  # type: ignore[assignment]

HOST = "127.0.0.1"
DEFAULT_PORT = 4319
# Enough latency for realistic charts (time to first token, p95), little enough to stay quick.
_HINTS = (
    "tokentrail report --since 1h --by feature,user",
    "tokentrail whatif --model claude-haiku-4-5 --since 1h",
    "tokentrail export --format csv --since 1h --output calls.csv",
)
MOCK_SETTINGS: dict[str, Any] = {"latency_ms": 25.0, "token_latency_ms": 1.0, "retry_after_ms": 50, "seed": 4}


class CollectorThread:
    """The collector app on uvicorn in a background thread, on a socket bound beforehand (so
    `--port 0` works and a busy port fails before anything starts)."""

    def __init__(self, application: FastAPI, sock: socket.socket) -> None:
        self.sock = sock
        self.server = uvicorn.Server(uvicorn.Config(application, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, name="tokentrail-demo-collector", daemon=True
        )

    def start(self, timeout: float = 30.0) -> CollectorThread:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the collector did not start (see the log above)")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


def bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as exc:
        sock.close()
        raise SourceError(f"cannot listen on {HOST}:{port} ({exc.strerror or exc}); pass another --port") from None
    return sock


def _sdks() -> tuple[ModuleType, ModuleType]:
    """The provider SDKs the workload drives (imported here: they are optional extras)."""
    modules = []
    for name in ("openai", "anthropic"):
        try:
            modules.append(importlib.import_module(name))
        except ImportError:
            raise SourceError(str(MissingExtraError(name, "tokentrail demo")), exit_code=2) from None
    return modules[0], modules[1]


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM stops like Ctrl-C


@app.command("demo")
def demo(
    port: Annotated[int, typer.Option("--port", help="Collector and dashboard port (0: any free one).")] = DEFAULT_PORT,
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="Exit after printing, instead of serving until Ctrl-C.")
    ] = False,
    home: Annotated[
        str | None, typer.Option("--home", help="Where the SQLite file lives (default: TOKENTRAIL_HOME).")
    ] = None,
) -> None:
    """Run a workload through the real OpenAI and Anthropic SDKs into a local collector and serve the dashboard.

    The SDKs talk to the local mock provider; the report printed is read back from the collector."""
    if _SERVER_MISSING is not None:
        typer.echo(f"error: {_SERVER_MISSING}", err=True)
        raise typer.Exit(2)
    try:
        openai, anthropic = _sdks()
        sock = bind(port)
    except SourceError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    port = sock.getsockname()[1]
    home_path = Path(home).expanduser() if home else default_home()
    home_path.mkdir(parents=True, exist_ok=True)
    env_key = os.environ.get("TOKENTRAIL_ADMIN_KEY")
    admin_key = env_key or auth.generate_key()
    settings = ServerSettings.load(
        database_url=sqlite_url(home_path / "tokentrail.db"), host=HOST, port=port, admin_key=admin_key
    )
    application = create_app(settings)
    try:
        collector = CollectorThread(application, sock).start()
    except RuntimeError as exc:
        sock.close()
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    url = f"http://{HOST}:{port}"
    try:
        console.print(f"[bold]tokentrail demo[/bold]: collector on {url}, database {home_path / 'tokentrail.db'}")
        started = datetime.now(UTC)
        work, evaluation = _record(openai, anthropic, home_path, url, admin_key, started)
        try:
            _print_run(url, admin_key, started, work, evaluation)
        except SourceError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None
        login = _login_url(application, port)
        console.print(f"\n[bold]Dashboard:[/bold] {login}")
        if not env_key:
            console.print(f"Admin API key for this run (also for the dashboard's login page): {admin_key}")
        console.print("Try:")
        for hint in _HINTS:
            console.print(f"  {hint}")
        if no_serve:
            return
        _serve_until_interrupted(url)
    finally:
        collector.stop()


def _record(
    openai: ModuleType, anthropic: ModuleType, home: Path, url: str, admin_key: str, started: datetime
) -> tuple[Workload, str]:
    """Mock provider up, SDK configured and instrumented, workload and evaluation run, all
    records delivered; everything put back afterwards."""
    before = set(instrumented())
    with MockProvider(port=0, **MOCK_SETTINGS) as mock:
        configure(
            sinks=["collector"],
            collector_url=url,
            api_key=admin_key,
            home=str(home),
            openai_compatible_provider="openai",  # the mock speaks OpenAI's API on 127.0.0.1
            flush_interval=0.2,
        )
        added = [name for name in instrument("openai", "anthropic") if name not in before]
        try:
            openai_client = openai.OpenAI(base_url=mock.openai_base_url, api_key="demo-key", max_retries=2)
            anthropic_client = anthropic.Anthropic(base_url=mock.url, api_key="demo-key", max_retries=2)
            with console.status("running the workload through the openai and anthropic SDKs..."):
                work = run_workload(openai_client, anthropic_client, mock, openai_errors=openai)
                flush(30.0)
                evaluation = evaluate_one_answer(
                    openai_client, url, admin_key, started.isoformat(), lambda: flush(30.0)
                )
                flush(30.0)
            delivered = stats()
            if delivered.dropped or delivered.spooled:
                work.notes.append(f"{delivered.dropped} records dropped, {delivered.spooled} waiting in the spool")
        finally:
            if added:
                uninstrument(*added)
            reset_runtime()
    return work, evaluation


def _print_run(url: str, admin_key: str, started: datetime, work: Workload, evaluation: str) -> None:
    query = Query(since=started)
    with RemoteSource(url, admin_key) as source:
        by_model = build_report(source, ("provider", "model"), query)
        by_who = build_report(source, ("feature", "user_id"), query)
    render_table(by_model, title="this run, by provider and model (read back from the collector's /v1/usage)")
    render_table(by_who, title="who and what drove the spend")
    total = by_model.total
    console.print(
        f"{total['calls']} calls recorded: {total['errors']} failed, "
        f"{total['unpriced_calls']} unpriced (never $0), {total['cache_read_tokens']:,} input tokens read from cache."
    )
    for line in (*work.errors_seen, evaluation, *work.notes):
        console.print(f"  {line}")


def _login_url(application: FastAPI, port: int) -> str:
    if issue_login_token is None or login_url is None:
        return f"http://{HOST}:{port}/"
    return login_url(HOST, port, issue_login_token(application.state.db))


def _serve_until_interrupted(url: str) -> None:
    console.print(f"Serving {url} until Ctrl-C.")
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        console.print("stopped")
    finally:
        signal.signal(signal.SIGTERM, previous)


__all__ = ["CollectorThread", "bind", "demo"]
