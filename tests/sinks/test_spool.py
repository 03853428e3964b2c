"""The on-disk spool: order, acknowledgement, the size bound, torn lines, other processes, full disks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tokentrail.sinks.spool import Spool


def lines(n: int, start: int = 0, pad: int = 0) -> list[bytes]:
    return [json.dumps({"id": f"r{i:06d}", "pad": "x" * pad}).encode() for i in range(start, start + n)]


def drain(spool: Spool, batch: int = 7) -> list[bytes]:
    out: list[bytes] = []
    while (got := spool.next_batch(batch, 1 << 20)) is not None:
        out += got.lines
        spool.ack(got)
    return out


def segments(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("seg-*.jsonl"))


def test_records_come_back_in_order_across_segments_and_files_go_when_acked(tmp_path):
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=300)
    data = lines(40)
    for i in range(0, 40, 5):
        assert spool.append(data[i : i + 5]) == 5
    assert spool.spooled == 40
    assert len(segments(tmp_path)) >= 3
    assert drain(spool) == data
    assert spool.spooled == 0 and spool.dropped == 0
    assert not list(tmp_path.iterdir())  # every segment and ack file deleted


def test_a_segment_stays_until_every_record_in_it_is_acknowledged(tmp_path):
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append(lines(10))
    first = spool.next_batch(4, 1 << 20)
    assert first is not None and len(first.lines) == 4
    spool.ack(first)
    second = spool.next_batch(4, 1 << 20)
    assert second is not None
    # not acknowledged (the server did not answer): the file and its records stay
    spool.close()
    assert len(segments(tmp_path)) == 1
    again = Spool(tmp_path, max_bytes=1 << 20)  # the next process
    assert again.spooled == 6
    assert drain(again) == lines(10)[4:]
    assert not segments(tmp_path)


def test_batches_hold_max_records_and_a_record_longer_than_max_bytes_still_comes_out(tmp_path):
    spool = Spool(tmp_path, max_bytes=1 << 20)
    mixed = [*lines(30, pad=3), *lines(1, start=30, pad=5000), *lines(30, start=31, pad=200)]
    spool.append(mixed)
    sizes = []
    out: list[bytes] = []
    while (batch := spool.next_batch(10, 1000)) is not None:
        sizes.append(len(batch.lines))
        out += batch.lines
        spool.ack(batch)
    assert out == mixed
    assert max(sizes) == 10 and 1 in sizes  # the 5 kB record alone, past max_bytes
    assert spool.spooled == 0


def test_over_the_bound_the_oldest_segments_are_dropped_and_counted(tmp_path):
    spool = Spool(tmp_path, max_bytes=4096, segment_bytes=1024)
    for i in range(0, 200, 10):
        spool.append(lines(10, start=i, pad=20))
    size = sum(p.stat().st_size for p in tmp_path.iterdir())
    assert size <= 4096
    kept = drain(spool)
    assert spool.dropped + len(kept) == 200
    assert spool.dropped > 0
    assert kept == lines(200, pad=20)[-len(kept) :]  # the newest survive, in order


def test_a_batch_bigger_than_the_bound_keeps_its_newest_records(tmp_path):
    spool = Spool(tmp_path, max_bytes=500)
    batch = lines(30, pad=5)
    kept = spool.append(batch)
    assert 0 < kept < 30 and spool.dropped == 30 - kept
    assert drain(spool) == batch[-kept:]


def test_a_torn_last_line_is_skipped_and_counted(tmp_path):
    good = lines(3)
    (tmp_path / "seg-00000000000000000001-999999-1.jsonl").write_bytes(b"\n".join(good) + b'\n{"id": "torn')
    spool = Spool(tmp_path, max_bytes=1 << 20)
    assert spool.spooled == 3
    assert drain(spool) == good
    assert spool.dropped == 1
    assert not segments(tmp_path)


_HOLDER = textwrap.dedent(
    """
    import sys, time
    from tokentrail.sinks.spool import Spool
    spool = Spool(sys.argv[1], max_bytes=1 << 20)
    spool.append([b'{"id": "held-%d"}' % i for i in range(5)])
    print("ready", flush=True)
    sys.stdin.readline()  # live until told
    """
)


def test_another_live_process_keeps_its_segment_until_it_exits(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(tmp_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        spool = Spool(tmp_path, max_bytes=1 << 20)
        spool.append(lines(2))
        assert spool.spooled == 2  # not the other process's records
        assert drain(spool) == lines(2)
        assert len(segments(tmp_path)) == 1  # its segment is untouched
    finally:
        holder.communicate("\n", timeout=30)
    spool.refresh(force=True)  # the process is gone, its lock with it
    assert spool.spooled == 5
    assert [json.loads(line)["id"] for line in drain(spool)] == [f"held-{i}" for i in range(5)]


_FILL = textwrap.dedent(
    """
    import json, resource, signal, sys
    from tokentrail.sinks.spool import Spool
    if sys.argv[2] == "rlimit":
        # files may not grow past 20 kB: write(2) writes what fits, then fails with EFBIG
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, resource.RLIM_INFINITY))
    spool = Spool(sys.argv[1], max_bytes=10 << 20)
    stored = 0
    for i in range(0, 4000, 40):
        stored += spool.append([json.dumps({"id": "r%06d" % j, "pad": "x" * 80}).encode() for j in range(i, i + 40)])
    spool.close()
    print(json.dumps({"stored": stored, "dropped": spool.dropped, "errors": spool.write_errors}))
    """
)


def _check_filled_spool(directory: Path, result: dict) -> None:
    assert result["errors"] > 0, result
    assert result["stored"] > 0 and result["stored"] + result["dropped"] == 4000
    # what was stored is whole lines only, and comes back in order
    spool = Spool(directory, max_bytes=10 << 20)
    assert spool.spooled == result["stored"]
    got = [json.loads(line)["id"] for line in drain(spool, batch=100)]
    assert got == [f"r{j:06d}" for j in range(result["stored"])]
    assert spool.dropped == 0  # no torn line was left behind


def test_file_size_limit_write_errors_are_counted_never_raised(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", _FILL, str(tmp_path), "rlimit"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    _check_filled_spool(tmp_path, json.loads(done.stdout))


@pytest.mark.skipif(not shutil.which("unshare") or sys.platform != "linux", reason="needs unshare(1)")
def test_a_full_filesystem_enospc_is_counted_never_raised(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    out = tmp_path / "result.json"
    # a private mount namespace with a 64 kB tmpfs: real ENOSPC, gone when the process exits;
    # the spool's files are copied out before it ends
    script = (
        f"mount -t tmpfs -o size=64k tmpfs {mount} || exit 77; "
        f'{sys.executable} -c "$FILL" {mount}/spool enospc > {out} && cp -r {mount}/spool {tmp_path}/kept'
    )
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "FILL": _FILL},
    )
    if done.returncode == 77 or "unshare failed" in done.stderr or "Operation not permitted" in done.stderr:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    assert not list(mount.iterdir())  # the tmpfs never touched the real directory
    _check_filled_spool(tmp_path / "kept", json.loads(out.read_text()))
