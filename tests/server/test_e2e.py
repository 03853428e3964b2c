"""End to end over real sockets: the SDK's collector sink into the real server, and a
server killed with SIGKILL mid-ingest losing nothing it acknowledged."""

from __future__ import annotations

import http.client
import json
import threading
import time
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from server_helpers import ADMIN, ADMIN_KEY, T0, ServerProcess, ThreadServer, make_call

import tokentrail
from tokentrail.core import LLMCall, TokenUsage
from tokentrail.core.settings import Settings
from tokentrail.server import create_app
from tokentrail.server.db.engine import Database
from tokentrail.server.db.models import calls as calls_table
from tokentrail.sinks.collector import REJECTED_FILE, CollectorSink


def sink_for(home: Path, url: str, **changes: object) -> CollectorSink:
    settings = Settings.load(
        home=str(home),
        collector_url=url,
        api_key=ADMIN_KEY,
        sinks=["collector"],
        batch_size=100,
        collector_max_retries=2,
        collector_timeout=5.0,
        **changes,
    )
    return CollectorSink(settings, backoff_base=0.01, outage_backoff=0.02, backoff_max=0.5)


def drain(sink: CollectorSink, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while sink.spooled and time.monotonic() < deadline:
        sink.retry_now()
        sink.flush()
        time.sleep(0.02)
    assert sink.spooled == 0


def stored_ids(db_url: str) -> list[str]:
    db = Database(db_url)
    try:
        with db.read() as conn:
            return list(conn.execute(sa.select(calls_table.c.id)).scalars())
    finally:
        db.dispose()


def test_the_sdk_collector_sink_delivers_into_the_real_server(tmp_path, settings):
    app = create_app(settings)
    with ThreadServer(app) as server:
        sink = sink_for(tmp_path, server.url)
        records = [make_call(at=T0 + timedelta(seconds=i), user_id=f"u{i % 3}") for i in range(250)]
        sink.write(records[:130])
        sink.write(records[100:])  # 30 already sent
        assert sink.sent == 250 and sink.duplicates == 30 and sink.rejected == 0
        # a record the server cannot store is isolated by the sink's batch splitting
        odd = make_call(metadata={"note": "nul\x00inside"})
        fine = [make_call(at=T0 + timedelta(minutes=10, seconds=i)) for i in range(5)]
        sink.write([*fine[:2], odd, *fine[2:]])
        assert sink.sent == 255 and sink.rejected == 1
        (line,) = (tmp_path / "spool" / REJECTED_FILE).read_text().splitlines()
        rejected = json.loads(line)
        assert rejected["status"] == 400 and rejected["record"]["id"] == odd.id
        assert rejected["error"]["detail"][0]["field"] == "calls[0].record"
        sink.close()
    ids = stored_ids(settings.database_url)
    assert sorted(ids) == sorted(c.id for c in [*records, *fine])


def test_the_sdk_configured_for_the_collector_records_tracked_calls(tmp_path, settings):
    with ThreadServer(create_app(settings)) as server:
        tokentrail.configure(
            sinks=["collector"], collector_url=server.url, api_key=ADMIN_KEY, home=str(tmp_path), project="web"
        )
        try:
            with (
                tokentrail.attribution(user_id="ann"),
                tokentrail.track_llm_call(provider="openai", model="gpt-4o") as t,
            ):
                t.set_tokens(input_tokens=1200, output_tokens=80, cache_read_tokens=1024)
            assert tokentrail.flush(10)
        finally:
            tokentrail.shutdown()
        conn = http.client.HTTPConnection("127.0.0.1", server.port)
        conn.request("GET", "/v1/usage?group_by=model,user_id", headers=ADMIN)
        rows = json.loads(conn.getresponse().read())["rows"]
        conn.close()
    assert [(r["model"], r["user_id"], r["calls"], r["cache_read_tokens"]) for r in rows] == [
        ("gpt-4o", "ann", 1, 1024)
    ]


def test_sigkill_during_ingest_loses_no_acknowledged_record(tmp_path, db_url):
    server = ServerProcess(db_url).start()
    acked: set[str] = set()
    lock = threading.Lock()

    class WatchedSink(CollectorSink):
        """The real sink; it only notes which records the server acknowledged."""

        def _post(self, lines):  # type: ignore[no-untyped-def]
            status, body = super()._post(lines)
            if 200 <= status < 300:
                with lock:
                    acked.update(json.loads(line)["id"] for line in lines)
            return status, body

    settings = Settings.load(
        home=str(tmp_path), collector_url=server.url, api_key=ADMIN_KEY, sinks=["collector"], batch_size=200
    )
    sink = WatchedSink(settings, backoff_base=0.01, outage_backoff=0.05, backoff_max=0.5)
    records = [
        LLMCall.new(
            provider="openai", request_model="gpt-4o", token_usage=TokenUsage.build(input_tokens=i, output_tokens=1)
        )
        for i in range(6000)
    ]
    stop = threading.Event()

    def produce() -> None:
        for start in range(0, len(records), 200):
            sink.write(records[start : start + 200])
            if stop.is_set():
                time.sleep(0.01)

    producer = threading.Thread(target=produce)
    try:
        producer.start()
        deadline = time.monotonic() + 60
        while len(acked) < 1000:  # mid-stream: some batches acknowledged, more in flight
            assert time.monotonic() < deadline and producer.is_alive(), "no acknowledgements from the server"
            time.sleep(0.005)
        server.kill()
        stop.set()
        with lock:
            acked_at_kill = set(acked)
        present = set(stored_ids(db_url))
        assert acked_at_kill <= present, f"{len(acked_at_kill - present)} acknowledged records lost"
        producer.join(120)
        server.start()  # same port, same database
        drain(sink)
        sink.close()
        ids = stored_ids(db_url)
        assert len(ids) == len(set(ids)) == len(records)
        assert set(ids) == {r.id for r in records}
        # the records stored but never acknowledged before the kill came back as duplicates
        assert sink.sent <= len(records) and len(records) - sink.sent <= sink.duplicates
        assert sink.rejected == 0 and sink.dropped == 0
        status, usage = server.get("/v1/usage", ADMIN)
        assert status == 200 and usage["rows"][0]["calls"] == len(records)
        assert usage["rows"][0]["input_tokens"] == sum(range(6000))
    finally:
        stop.set()
        server.stop()
