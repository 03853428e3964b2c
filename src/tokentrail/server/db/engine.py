"""`Database`: the engine plus the two kinds of transaction the server uses.

`write()` is one write transaction (on SQLite it takes the write lock at BEGIN); `read()` is
one consistent snapshot (PostgreSQL REPEATABLE READ, read-only; SQLite WAL snapshot).
Nothing else is kept in process, so any number of instances can share one PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Connection, Engine, make_url

from tokentrail.server.db import dialect


class Database:
    def __init__(self, url: str, *, sqlite_synchronous: str = "FULL", pool_size: int = 5) -> None:
        self.url = url
        self.engine: Engine = dialect.create_engine(url, sqlite_synchronous=sqlite_synchronous, pool_size=pool_size)

    @property
    def dialect_name(self) -> str:
        return self.engine.dialect.name

    @property
    def display_url(self) -> str:
        """The URL with any password masked, for logs."""
        return make_url(self.url).render_as_string(hide_password=True)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            conn.execution_options(**{dialect.WRITE_OPTION: True})
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            options = dialect.read_options(conn)
            if options:
                conn.execution_options(**options)
            with conn.begin():
                yield conn

    def dispose(self) -> None:
        self.engine.dispose()


__all__ = ["Database"]
