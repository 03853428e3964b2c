"""A size-bounded on-disk spool of records the collector has not acknowledged yet.

Layout: append-only segment files `seg-<ns>-<pid>-<n>.jsonl` under the spool directory, one
record JSON per line; names sort by creation time, so delivery is in order. Beside a
segment, `<segment>.ack` holds the byte offset up to which the server has acknowledged it
(written atomically after each acknowledged batch; it only saves resending, since the server
is idempotent on record ids). A segment is deleted only once every line in it was
acknowledged (or set aside as rejected by the caller).

Durability: every append is one `os.write` straight to the kernel, so a process that is
killed (SIGKILL) loses nothing it spooled; segments are fsynced when sealed and on close.
A write that fails (ENOSPC, EFBIG, EACCES) is rolled back to the last whole line, its
records are counted in `dropped` and logged; nothing here raises into the caller.

Bound: when adding a batch would take the spool past `max_bytes`, whole oldest segments are
deleted and their records counted in `dropped`; a batch larger than the bound by itself
keeps only its newest records that fit.

Several processes may share a directory: each appends only to its own segment and holds an
`flock` on it while it lives, a segment is delivered or dropped only under its lock, so the
segments of a process that died (the lock goes with it) are delivered by the next process
that looks, and a live process's segment is left alone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

try:  # POSIX; on Windows the spool works without cross-process locks
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger("tokentrail.sinks.spool")

SEGMENT_PREFIX = "seg-"
SEGMENT_SUFFIX = ".jsonl"
ACK_SUFFIX = ".ack"
_READ_CHUNK = 1 << 20
_LOG_EVERY_S = 60.0


def _lock(fd: int) -> bool:
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _held_elsewhere(path: Path) -> bool:
    """Whether another live process holds the segment's lock (it is appending to it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return not _lock(fd)
    finally:
        os.close(fd)  # drops our test lock


def _count_lines(path: Path, start: int) -> tuple[int, int]:
    """(complete lines after `start`, file size)."""
    count = 0
    with open(path, "rb") as f:
        f.seek(start)
        while chunk := f.read(_READ_CHUNK):
            count += chunk.count(b"\n")
        return count, f.tell()


@dataclass(slots=True)
class _Segment:
    path: Path
    size: int  # bytes on disk
    acked: int  # byte offset acknowledged
    records: int  # complete lines after `acked`
    fd: int | None = None  # held (with its lock) while we append to it or deliver it
    active: bool = False  # we are appending to it
    foreign: bool = False  # locked by another live process: neither ours to deliver nor to count


@dataclass(frozen=True, slots=True)
class SpoolBatch:
    """The oldest unacknowledged records: `lines` are raw record JSON (no newline).

    `count` is how many spool lines the batch covers (blank lines are skipped, not sent)."""

    segment: Path
    start: int
    end: int
    lines: list[bytes]
    count: int


class Spool:
    def __init__(self, directory: Path, max_bytes: int, *, segment_bytes: int | None = None) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        # ~16 segments over the bound, so dropping the oldest loses a small slice of it.
        self.segment_bytes = segment_bytes or min(max_bytes, max(64 * 1024, max_bytes // 16), 16 * 1024 * 1024)
        self.dropped = 0  # records lost: over the bound, a failed write, a torn last line
        self.write_errors = 0
        self._segments: dict[Path, _Segment] = {}
        self._active: _Segment | None = None
        self._serial = 0
        self._pid = os.getpid()
        self._last_refresh = 0.0
        self._last_log = 0.0
        self._unlogged = 0
        self.refresh(force=True)

    # ---- state ---------------------------------------------------------------------------
    @property
    def spooled(self) -> int:
        """Records in the spool (this process's view) not yet acknowledged."""
        # tuple() snapshots the dict in one step: stats() reads this from other threads
        return sum(seg.records for seg in tuple(self._segments.values()) if not seg.foreign)

    @property
    def size_bytes(self) -> int:
        return sum(seg.size for seg in tuple(self._segments.values()) if not seg.foreign)

    def refresh(self, *, force: bool = False, every: float = 1.0) -> None:
        """Pick up segments left by other processes (e.g. one that was killed)."""
        now = time.monotonic()
        if not force and now - self._last_refresh < every:
            return
        self._last_refresh = now
        try:
            names = sorted(os.listdir(self.directory))
        except FileNotFoundError:
            return
        except OSError as exc:
            self._log_failure(f"cannot list spool directory {self.directory}: {exc}")
            return
        for name in names:
            if name.startswith("." + SEGMENT_PREFIX) and name.endswith(".new"):
                self._remove_stale_new(self.directory / name)
                continue
            if not (name.startswith(SEGMENT_PREFIX) and name.endswith(SEGMENT_SUFFIX)):
                continue
            path = self.directory / name
            known = self._segments.get(path)
            if known is not None and not known.foreign:
                continue
            with contextlib.suppress(OSError):  # vanished, or unreadable: look again next time
                foreign = _held_elsewhere(path)
                acked = self._read_ack(path)
                records, size = _count_lines(path, acked)
                self._segments[path] = _Segment(path, size, min(acked, size), records, foreign=foreign)
        self._segments = dict(sorted(self._segments.items()))

    @staticmethod
    def _remove_stale_new(path: Path) -> None:
        """A segment a process died creating (between create and rename): it holds nothing yet."""
        with contextlib.suppress(OSError):
            if time.time() - path.stat().st_mtime > 60:
                path.unlink()

    # ---- writing -------------------------------------------------------------------------
    def append(self, lines: Sequence[bytes]) -> int:
        """Add records (JSON lines without newline); returns how many were stored."""
        if not lines:
            return 0
        data = b"".join(line + b"\n" for line in lines)
        kept = len(lines)
        self._make_room(len(data))
        if len(data) > self.max_bytes:
            # Alone bigger than the whole spool: keep the newest records that fit.
            size = 0
            start = len(lines)
            while start > 0 and size + len(lines[start - 1]) + 1 <= self.max_bytes:
                start -= 1
                size += len(lines[start]) + 1
            self.dropped += start
            kept = len(lines) - start
            if not kept:
                return 0
            data = b"".join(line + b"\n" for line in lines[start:])
        try:
            seg = self._active_segment()
            self._write_all(seg, data)
        except OSError as exc:
            self.write_errors += 1
            self.dropped += kept
            self._log_failure(f"cannot write {kept} record(s) to the spool in {self.directory}: {exc}")
            return 0
        seg.records += kept
        if seg.size >= self.segment_bytes:
            self._seal(seg)
        return kept

    def _write_all(self, seg: _Segment, data: bytes) -> None:
        assert seg.fd is not None
        view = memoryview(data)
        written = 0
        try:
            while written < len(data):
                written += os.write(seg.fd, view[written:])
        except OSError:
            if written:
                # Roll back the torn part so the file keeps ending on a whole line.
                with contextlib.suppress(OSError):
                    os.ftruncate(seg.fd, seg.size)
            raise
        seg.size += written

    def _active_segment(self) -> _Segment:
        if self._pid != os.getpid():
            # Forked: the parent's segments (and locks) are not ours; look at the directory afresh.
            self._pid = os.getpid()
            self._active = None
            self._segments = {}
            self.refresh(force=True)
        if self._active is not None:
            return self._active
        self.directory.mkdir(parents=True, exist_ok=True)
        self._serial += 1
        name = f"{SEGMENT_PREFIX}{time.time_ns():020d}-{self._pid}-{self._serial}{SEGMENT_SUFFIX}"
        path = self.directory / name
        # Created and locked under a name no reader looks at, then renamed: a segment is
        # never visible unlocked while its writer is alive.
        tmp = self.directory / f".{name}.new"
        fd = os.open(tmp, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            _lock(fd)
            os.rename(tmp, path)
        except OSError:
            os.close(fd)
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        seg = _Segment(path, 0, 0, 0, fd=fd, active=True)
        self._segments[path] = seg
        self._active = seg
        return seg

    def _seal(self, seg: _Segment) -> None:
        """Stop appending to our segment: fsync it and let anyone deliver it."""
        if seg.fd is not None:
            with contextlib.suppress(OSError):
                os.fsync(seg.fd)
            self._release(seg)
        seg.active = False
        if self._active is seg:
            self._active = None
        self._fsync_directory()

    def _make_room(self, incoming: int) -> None:
        while self.size_bytes + incoming > self.max_bytes:
            victim = next((s for s in self._segments.values() if not s.active and not s.foreign), None)
            if victim is None:
                if self._active is not None and self._active.size:
                    self._seal(self._active)
                    continue
                return
            if victim.fd is None and not self._claim(victim):
                continue  # another live process holds it: not ours to drop, nor to count
            self.dropped += victim.records
            self._log_failure(
                f"spool over its bound of {self.max_bytes} bytes: dropped {victim.records} oldest record(s)"
            )
            self._remove(victim)

    # ---- delivering ----------------------------------------------------------------------
    def next_batch(self, max_records: int, max_bytes: int) -> SpoolBatch | None:
        """The oldest unacknowledged records, at most `max_records` (and about `max_bytes`)."""
        for seg in list(self._segments.values()):
            if seg.active:
                if not seg.records:
                    continue
                self._seal(seg)  # deliver what we spooled ourselves: stop appending here first
            if seg.fd is None and not self._claim(seg):
                continue
            batch = self._read_batch(seg, max_records, max_bytes)
            if batch is not None:
                return batch
            # Nothing complete left: a whole segment was delivered (a torn tail is lost).
            if seg.size > seg.acked:
                self.dropped += 1
            self._remove(seg)
        return None

    def ack(self, batch: SpoolBatch) -> None:
        """The server accepted (or the caller set aside) every record of `batch`."""
        seg = self._segments.get(batch.segment)
        if seg is None or batch.end <= seg.acked:
            return
        seg.acked = batch.end
        seg.records = max(0, seg.records - batch.count)
        if seg.acked >= seg.size and not seg.active:
            self._remove(seg)
            return
        self._write_ack(seg)

    def _read_batch(self, seg: _Segment, max_records: int, max_bytes: int) -> SpoolBatch | None:
        assert seg.fd is not None
        # Read about what `max_records` lines take (from the segment's mean line length), not
        # always `max_bytes`: a batch of 512 small records should not cost a 4 MB read.
        mean = (seg.size - seg.acked) // seg.records if seg.records else 1024
        want = max(1, min(max_bytes, mean * max_records + mean // 2 + 4096))
        while True:
            data = os.pread(seg.fd, want, seg.acked)
            cut = data.rfind(b"\n")
            if cut >= 0 or len(data) < want:
                break
            want *= 2  # one record longer than max_bytes: read on to its end
        if cut < 0:
            return None
        raw = data[:cut].split(b"\n", max_records)[:max_records]
        end = seg.acked + sum(len(line) + 1 for line in raw)
        return SpoolBatch(seg.path, seg.acked, end, [line for line in raw if line.strip()], len(raw))

    def _claim(self, seg: _Segment) -> bool:
        """Take a segment we did not write (or no longer append to) for delivery or dropping."""
        try:
            fd = os.open(seg.path, os.O_RDONLY)  # flock needs no write access
        except OSError:
            self._segments.pop(seg.path, None)  # delivered or dropped by someone else
            return False
        if not _lock(fd):
            os.close(fd)
            seg.foreign = True
            return False
        seg.foreign = False
        if not seg.path.exists():  # removed between our open and our lock
            os.close(fd)
            self._segments.pop(seg.path, None)
            return False
        seg.fd = fd
        # Another process may have delivered part of it before it died: take its progress.
        try:
            seg.acked = min(max(seg.acked, self._read_ack(seg.path)), seg.size)
            seg.records, seg.size = _count_lines(seg.path, seg.acked)
        except OSError:
            pass
        return True

    # ---- files ---------------------------------------------------------------------------
    @staticmethod
    def _ack_path(path: Path) -> Path:
        return path.with_name(path.name + ACK_SUFFIX)

    def _read_ack(self, path: Path) -> int:
        try:
            return int(self._ack_path(path).read_text().strip() or 0)
        except (OSError, ValueError):
            return 0

    def _write_ack(self, seg: _Segment) -> None:
        tmp = self._ack_path(seg.path).with_suffix(".tmp")
        try:
            tmp.write_text(str(seg.acked))
            os.replace(tmp, self._ack_path(seg.path))
        except OSError:
            pass  # only an optimisation: redelivery is idempotent server-side

    def _remove(self, seg: _Segment) -> None:
        for path in (seg.path, self._ack_path(seg.path)):
            with contextlib.suppress(OSError):
                path.unlink()
        self._release(seg)
        seg.active = False
        if self._active is seg:
            self._active = None
        self._segments.pop(seg.path, None)

    def _release(self, seg: _Segment) -> None:
        if seg.fd is not None:
            with contextlib.suppress(OSError):
                os.close(seg.fd)  # closing drops the flock
            seg.fd = None

    def _fsync_directory(self) -> None:
        try:
            fd = os.open(self.directory, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)

    def _log_failure(self, message: str) -> None:
        # At most one line a minute, with how many were not logged, so a full disk cannot flood logs.
        now = time.monotonic()
        if now - self._last_log >= _LOG_EVERY_S or not self._last_log:
            suffix = f" ({self._unlogged} similar message(s) suppressed)" if self._unlogged else ""
            logger.warning("tokentrail: %s%s", message, suffix)
            self._last_log = now
            self._unlogged = 0
        else:
            self._unlogged += 1

    def sync(self) -> None:
        """fsync what we appended (on flush)."""
        if self._active is not None and self._active.fd is not None:
            with contextlib.suppress(OSError):
                os.fsync(self._active.fd)

    def close(self) -> None:
        if self._active is not None:
            self._seal(self._active)
        for seg in list(self._segments.values()):
            self._release(seg)


__all__ = ["Spool", "SpoolBatch"]
