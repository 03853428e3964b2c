"""The default SQLite sink: WAL file, schema from core/columns.py, idempotent batches."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from tokentrail.core import Attribution, CostBreakdown, LLMCall, TokenUsage, ValidationError
from tokentrail.core.columns import COLUMN_NAMES, LOCAL_INDEXES, SCHEMA_VERSION, record_to_columns
from tokentrail.core.settings import Settings
from tokentrail.sinks.pipeline import Pipeline
from tokentrail.sinks.sqlite import SQLiteSink


def make_calls(n: int, start: int = 0) -> list[LLMCall]:
    return [
        LLMCall.new(
            provider="openai",
            request_model="gpt-4o-mini",
            token_usage=TokenUsage.build(input_tokens=100 + i, output_tokens=i % 50, cache_read_tokens=i % 100),
            cost_metrics=CostBreakdown(total_cost=Decimal(i) / Decimal(10**7), pricing_status="priced"),
            attribution=Attribution(user_id=f"user-{i % 7}", feature="search", project="demo"),
            metadata={"i": i},
        )
        for i in range(start, start + n)
    ]


def rows(path: Path) -> list[sqlite3.Row]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute("SELECT * FROM calls ORDER BY id").fetchall()
    finally:
        conn.close()


def test_default_file_is_in_tokentrail_home_with_wal_and_schema():
    sink = SQLiteSink(Settings.load())
    expected = Path(os.environ["TOKENTRAIL_HOME"]) / "tokentrail.db"
    assert sink.path == expected and expected.exists()
    sink.write(make_calls(3))
    conn = sqlite3.connect(expected)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        columns = [r[1] for r in conn.execute("PRAGMA table_info(calls)")]
        assert tuple(columns) == COLUMN_NAMES
        pk = [r[1] for r in conn.execute("PRAGMA table_info(calls)") if r[5]]
        assert pk == ["id"]
        indexes = {r[1] for r in conn.execute("PRAGMA index_list(calls)")}
        assert {index.name for index in LOCAL_INDEXES} <= indexes
        meta = dict(conn.execute("SELECT key, value FROM tokentrail_meta"))
        assert meta["schema_version"] == str(SCHEMA_VERSION)
    finally:
        conn.close()
    sink.close()


def test_rows_equal_the_records(tmp_path):
    sink = SQLiteSink(Settings.load(sqlite_path=str(tmp_path / "nested" / "calls.db")))
    calls = make_calls(50)
    sink.write(calls)
    sink.close()
    stored = rows(tmp_path / "nested" / "calls.db")
    by_id = {call.id: call for call in calls}
    assert len(stored) == 50
    for row in stored:
        call = by_id[row["id"]]
        assert LLMCall.from_dict(json.loads(row["record"])) == call
        expected = record_to_columns(call)
        for name in COLUMN_NAMES:
            if name in ("estimated", "streaming"):
                continue
            assert row[name] == expected[name], name


def test_writing_a_record_twice_stores_it_once(tmp_path):
    sink = SQLiteSink(Settings.load(home=str(tmp_path)))
    calls = make_calls(20)
    sink.write(calls[:15])
    sink.write(calls[10:])  # five overlap
    sink.write(calls)  # all again
    assert len(rows(sink.path)) == 20
    assert sink.written == 20 and sink.duplicates == 5 + 20
    # a second sink (another process's view) on the same file is idempotent too
    other = SQLiteSink(Settings.load(home=str(tmp_path)))
    other.write(calls[:5])
    assert other.written == 0 and len(rows(sink.path)) == 20
    sink.close()
    other.close()


def test_reopening_keeps_data_and_adopts_a_newer_schema(tmp_path):
    path = tmp_path / "tokentrail.db"
    sink = SQLiteSink(Settings.load(sqlite_path=str(path)))
    sink.write(make_calls(4))
    sink.close()
    # the server's migrations moved the file on: a newer version, an extra column
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE calls ADD COLUMN cost_bucket TEXT")
    conn.execute("UPDATE tokentrail_meta SET value = '7' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    again = SQLiteSink(Settings.load(sqlite_path=str(path)))
    again.write(make_calls(3, start=100))
    again.close()
    assert len(rows(path)) == 7
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT value FROM tokentrail_meta WHERE key='schema_version'").fetchone()[0] == "7"
    conn.close()


def test_a_reader_does_not_block_the_writer(tmp_path):
    sink = SQLiteSink(Settings.load(home=str(tmp_path)))
    sink.write(make_calls(5))
    reader = sqlite3.connect(sink.path, isolation_level=None, timeout=0.1)
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM calls").fetchone()[0] == 5
    sink.write(make_calls(5, start=5))  # would time out in rollback-journal mode
    assert reader.execute("SELECT count(*) FROM calls").fetchone()[0] == 5  # its snapshot
    reader.execute("COMMIT")
    assert reader.execute("SELECT count(*) FROM calls").fetchone()[0] == 10
    reader.close()
    sink.close()


def test_an_unstorable_record_does_not_cost_its_batch(tmp_path):
    sink = SQLiteSink(Settings.load(home=str(tmp_path)))
    calls = make_calls(3)
    huge = calls[1].replace(cost_metrics=CostBreakdown(total_cost=Decimal("1E+9"), pricing_status="priced"))
    with pytest.raises(ValidationError) as err:
        sink.write([calls[0], huge, calls[2]])
    assert huge.id in str(err.value)
    assert {row["id"] for row in rows(sink.path)} == {calls[0].id, calls[2].id}
    sink.close()


def test_through_the_pipeline(tmp_path):
    sink = SQLiteSink(Settings.load(home=str(tmp_path)))
    pipeline = Pipeline([sink], queue_size=10_000, batch_size=128, flush_interval=0.05)
    calls = make_calls(1000)
    for call in calls:
        assert pipeline.submit(call)
    assert pipeline.flush(timeout=30)
    assert len(rows(sink.path)) == 1000
    assert pipeline.stats().written == 1000 and pipeline.stats().internal_errors == 0
    assert pipeline.shutdown(timeout=10)


_FULL_DISK = textwrap.dedent(
    """
    import json, resource, signal, sqlite3, sys
    sys.path.insert(0, sys.argv[2])
    from test_sqlite import make_calls
    from tokentrail.core.settings import Settings
    from tokentrail.sinks.sqlite import SQLiteSink

    sink = SQLiteSink(Settings.load(sqlite_path=sys.argv[1]))
    sink.write(make_calls(10))
    # the disk fills up: files may not grow past their current size (EFBIG from write(2))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, hard))
    failed = make_calls(2000, start=10)
    errors = []
    try:
        sink.write(failed)
    except sqlite3.Error as exc:
        errors.append(repr(exc))
    # space is back: the same batch goes in whole, and later ones too
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    sink.write(failed)
    sink.write(make_calls(5, start=5000))
    sink.close()
    print(json.dumps({"errors": errors}))
    """
)


def test_full_disk_fails_the_batch_whole_and_recovers(tmp_path):
    path = tmp_path / "tokentrail.db"
    done = subprocess.run(
        [sys.executable, "-c", _FULL_DISK, str(path), str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["errors"], "the write past the file size limit should have failed"
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT count(*) FROM calls").fetchone()[0] == 10 + 2000 + 5
    conn.close()
