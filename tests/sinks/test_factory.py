"""Sink names to sink objects."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from tokentrail.core import MissingExtraError, ValidationError
from tokentrail.core.settings import Settings
from tokentrail.sinks.base import Sink
from tokentrail.sinks.collector import CollectorSink
from tokentrail.sinks.factory import SINK_NAMES, create_sink, create_sinks
from tokentrail.sinks.log import LogSink
from tokentrail.sinks.memory import MemorySink
from tokentrail.sinks.sqlite import SQLiteSink

HAS_OTEL = importlib.util.find_spec("opentelemetry.sdk") is not None


def test_every_name_builds_its_sink(tmp_path):
    settings = Settings.load(home=str(tmp_path), collector_url="http://127.0.0.1:1")
    built = {
        "sqlite": SQLiteSink,
        "log": LogSink,
        "collector": CollectorSink,
        "memory": MemorySink,
    }
    for name, cls in built.items():
        sink = create_sink(name, settings)
        assert isinstance(sink, cls) and isinstance(sink, Sink)
        assert sink.name == name
        sink.close()
    assert set(SINK_NAMES) == {*built, "otel"}
    assert isinstance(create_sink("  SQLite ", settings), SQLiteSink)


@pytest.mark.skipif(not HAS_OTEL, reason="the otel extra is not installed")
def test_otel_is_built_by_name(tmp_path):
    sink = create_sink("otel", Settings.load(home=str(tmp_path)))
    assert type(sink).__name__ == "OTelSink" and sink.name == "otel"


def test_otel_without_the_extra_names_it(tmp_path, monkeypatch):
    # hide OpenTelemetry the way an environment without the extra would
    for module in [m for m in sys.modules if m == "opentelemetry" or m.startswith("opentelemetry.")]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    with pytest.raises(MissingExtraError) as err:
        create_sink("otel", Settings.load(home=str(tmp_path)))
    assert err.value.extra == "otel"


def test_unknown_names_are_refused_with_the_choices():
    with pytest.raises(ValidationError) as err:
        create_sink("x", Settings.load())
    assert err.value.field == "sinks"
    assert "unknown sink 'x'" in err.value.reason
    for name in SINK_NAMES:
        assert name in err.value.reason


def test_sink_objects_pass_through_and_others_are_refused():
    mine = MemorySink()
    assert create_sink(mine, Settings.load()) is mine
    with pytest.raises(ValidationError):
        create_sink(42, Settings.load())  # type: ignore[arg-type]


def test_create_sinks_follows_the_settings(tmp_path):
    mine = MemorySink("mine")
    sinks = create_sinks(Settings.load(home=str(tmp_path), sinks=["sqlite", mine, "log"]))
    assert [type(s) for s in sinks] == [SQLiteSink, MemorySink, LogSink]
    assert sinks[1] is mine
    sinks[0].close()
