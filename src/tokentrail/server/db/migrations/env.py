"""Alembic environment: migrations run on the connection `tokentrail.server.db.migrate` opens
(already inside its transaction, holding the migration lock); there is no alembic.ini."""

from __future__ import annotations

from alembic import context

from tokentrail.server.db import models

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run tokentrail migrations through `tokentrail db upgrade` (no offline mode)")

context.configure(
    connection=connection,
    target_metadata=models.metadata,
    include_object=models.include_object_for(connection.dialect.name),
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
