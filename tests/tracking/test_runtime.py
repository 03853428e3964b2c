from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from tokentrail.core import LLMCall, ValidationError
from tokentrail.sinks.memory import MemorySink
from tokentrail.tracking import configure, flush, log_llm_usage, runtime, shutdown, stats, track_llm_call


def test_default_runtime_writes_to_sqlite_in_tokentrail_home(monkeypatch, tmp_path):
    home = tmp_path / "home"
    monkeypatch.setenv("TOKENTRAIL_HOME", str(home))
    log_llm_usage("openai", "gpt-4o-mini", input_tokens=10, output_tokens=2)
    assert flush(timeout=10)
    db = home / "tokentrail.db"
    assert db.exists()
    assert runtime.current_settings().sinks == ("sqlite",)
    with sqlite3.connect(db) as conn:
        tables = [row[0] for row in conn.execute("select name from sqlite_master where type='table'")]
        assert tables
        assert any(conn.execute(f"select count(*) from {t}").fetchone()[0] == 1 for t in tables)


def test_configure_with_names_objects_and_environment(monkeypatch):
    monkeypatch.setenv("TOKENTRAIL_SERVICE_NAME", "from-env")
    monkeypatch.setenv("TOKENTRAIL_ENVIRONMENT", "staging")
    mine = MemorySink(name="mine")
    settings = configure(sinks=["memory", mine], environment="prod", queue_size=123)
    assert (settings.service_name, settings.environment, settings.queue_size) == ("from-env", "prod", 123)
    pipeline = runtime.get_runtime().pipeline
    assert [s.name for s in pipeline.sinks] == ["memory", "mine"]
    log_llm_usage("openai", "gpt-4o", input_tokens=1, output_tokens=1)
    assert flush(timeout=5)
    assert all(len(s) == 1 for s in pipeline.sinks)
    assert mine.calls[0].attribution.service_name == "from-env"


def test_bad_configuration_fails_loudly():
    with pytest.raises(ValidationError) as err:
        configure(queue_size=0)
    assert err.value.field == "queue_size"
    with pytest.raises(ValidationError):
        configure(sinks=["nonsense"])
    with pytest.raises(ValidationError):
        configure(colour="blue")


def test_reconfigure_drains_the_old_pipeline_first():
    old = MemorySink(name="old")
    configure(sinks=[old], flush_interval=60)
    for _ in range(5):
        log_llm_usage("openai", "gpt-4o", input_tokens=1, output_tokens=1)
    new = MemorySink(name="new")
    configure(sinks=[new])
    assert len(old) == 5 and old.closed
    log_llm_usage("openai", "gpt-4o", input_tokens=1, output_tokens=1)
    assert flush(timeout=5)
    assert len(new) == 1


def test_stats_counts_written_dropped_and_internal_errors():
    class Failing:
        name = "failing"

        def write(self, calls: Sequence[LLMCall]) -> None:
            raise OSError("no space left on device")

    good = MemorySink()
    configure(sinks=[good, Failing()], queue_size=1000)
    for _ in range(3):
        log_llm_usage("openai", "gpt-4o", input_tokens=1, output_tokens=1)
    assert flush(timeout=5)
    s = stats()
    assert (s.queued, s.written, s.dropped, s.spooled) == (0, 3, 0, 0)
    assert s.sink_errors == {"memory": 0, "failing": 3}
    assert s.internal_errors >= 1
    assert shutdown(timeout=5)
    log_llm_usage("openai", "gpt-4o", input_tokens=1, output_tokens=1)
    assert stats().dropped == 1  # after shutdown records are dropped, and counted
    assert set(s.to_dict()) == {"queued", "written", "dropped", "spooled", "internal_errors", "sink_errors"}


def test_queue_full_drops_without_blocking_the_caller():
    release = threading.Event()
    entered = threading.Event()

    class Stuck(MemorySink):
        def write(self, calls: Sequence[LLMCall]) -> None:
            entered.set()
            release.wait(10)
            super().write(calls)

    stuck = Stuck()
    configure(sinks=[stuck], queue_size=3, batch_size=1)
    with track_llm_call(provider="openai", model="gpt-4o"):
        pass
    assert entered.wait(5)
    for _ in range(5):
        with track_llm_call(provider="openai", model="gpt-4o"):
            pass
    assert stats().dropped == 2
    release.set()
    assert flush(timeout=5)
    assert len(stuck) == 4


def test_flush_and_shutdown_without_any_runtime_are_harmless():
    runtime.reset()
    assert flush(timeout=1) is True
    assert shutdown(timeout=1) is True
    assert stats().written == 0


def test_price_overrides_are_installed(tmp_path: Path):
    prices = tmp_path / "prices.toml"
    prices.write_text(
        '[[price]]\nprovider = "openai"\nmodel = "my-finetune"\ninput_mtok = "1"\noutput_mtok = "2"\n',
        encoding="utf-8",
    )
    sink = MemorySink()
    configure(sinks=[sink], prices=str(prices))
    log_llm_usage("openai", "my-finetune", input_tokens=1_000_000, output_tokens=1_000_000)
    assert flush(timeout=5)
    cost = sink.calls[0].cost_metrics
    assert cost.total_cost == 3
    configure(sinks=[sink])  # without prices the override is gone again
    log_llm_usage("openai", "my-finetune", input_tokens=1_000_000, output_tokens=1_000_000)
    assert flush(timeout=5)
    assert sink.calls[1].cost_metrics.total_cost is None
